"""Registers one of everything, then returns ``fail`` (a module parameter).

IRQ 44, a tasklet scheduled while disabled, an armed timer, a workqueue with
a delayed item, a delayed item on system_wq and a kernel thread: a failed
init must leave none of them behind.
"""

from bottomhalf.linux import *

fail = -ENOMEM
module_param("fail", "int", 0o444)

ran = []
my_tasklet = tasklet_struct()
my_timer = timer_list()
my_dwork = delayed_work()
sys_dwork = delayed_work()
my_wq = None
my_thread = None


def failing_irq(irq, dev_id):
    ran.append("irq")
    return IRQ_HANDLED


def failing_tasklet(data):
    ran.append("tasklet")


def failing_timer(t):
    ran.append("timer")


def failing_work(work):
    ran.append("work")


def failing_thread(data):
    while True:
        set_current_state(TASK_INTERRUPTIBLE)
        if kthread_should_stop():
            break
        schedule()
    set_current_state(TASK_RUNNING)
    return 0


def failing_init_init():
    global my_wq, my_thread
    ret = request_irq(44, failing_irq, 0, "failing_init", ran)
    if ret:
        return ret
    tasklet_init(my_tasklet, failing_tasklet, 0)
    tasklet_disable(my_tasklet)
    tasklet_schedule(my_tasklet)
    timer_setup(my_timer, failing_timer, 0)
    mod_timer(my_timer, jiffies() + msecs_to_jiffies(50))
    my_wq = alloc_workqueue("failing_wq", 0, 0)
    INIT_DELAYED_WORK(my_dwork, failing_work)
    queue_delayed_work(my_wq, my_dwork, msecs_to_jiffies(50))
    INIT_DELAYED_WORK(sys_dwork, failing_work)
    schedule_delayed_work(sys_dwork, msecs_to_jiffies(50))
    my_thread = kthread_run(failing_thread, None, "failing_thread")
    pr_info("failing_init: returning %d\n", fail)
    return fail


def failing_init_exit():
    kthread_stop(my_thread)
    cancel_delayed_work_sync(sys_dwork)
    cancel_delayed_work_sync(my_dwork)  # destroy_workqueue does not disarm its timer
    destroy_workqueue(my_wq)
    del_timer_sync(my_timer)
    tasklet_enable(my_tasklet)
    tasklet_kill(my_tasklet)
    free_irq(44, ran)


module_init(failing_init_init)
module_exit(failing_init_exit)
MODULE_LICENSE("GPL")
