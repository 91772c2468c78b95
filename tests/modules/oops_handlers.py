"""Handlers that raise, each followed by one that must still run.

IRQ line 43 raises on its first interrupt only.  ``schedule_both()``,
``arm_timers()`` and ``queue_works()`` queue a bad item, then a good one.
"""

from bottomhalf.linux import *

ran = []
irq_calls = atomic_t()
bad_tasklet = tasklet_struct()
good_tasklet = tasklet_struct()
bad_timer = timer_list()
good_timer = timer_list()
bad_work = work_struct()
good_work = work_struct()
ordered_wq = None


def oops_irq(irq, dev_id):
    if atomic_inc_return(irq_calls) == 1:
        raise RuntimeError("handler bug on the first interrupt")
    ran.append("irq")
    return IRQ_HANDLED


def bad_tasklet_func(data):
    raise ValueError(f"bad tasklet {data}")


def good_tasklet_func(data):
    ran.append("tasklet")


def bad_timer_func(t):
    raise KeyError("bad timer")


def good_timer_func(t):
    ran.append("timer")


def bad_work_func(work):
    raise ZeroDivisionError("bad work")


def good_work_func(work):
    ran.append("work")


def schedule_both():
    tasklet_schedule(bad_tasklet)
    tasklet_schedule(good_tasklet)


def arm_timers():
    mod_timer(bad_timer, jiffies() + 2)
    mod_timer(good_timer, jiffies() + 3)


def queue_works():
    queue_work(ordered_wq, bad_work)
    queue_work(ordered_wq, good_work)


def oops_handlers_init():
    global ordered_wq
    tasklet_init(bad_tasklet, bad_tasklet_func, 7)
    tasklet_init(good_tasklet, good_tasklet_func, 0)
    timer_setup(bad_timer, bad_timer_func, 0)
    timer_setup(good_timer, good_timer_func, 0)
    INIT_WORK(bad_work, bad_work_func)
    INIT_WORK(good_work, good_work_func)
    ordered_wq = alloc_ordered_workqueue("oops_wq", 0)
    if not ordered_wq:
        return -ENOMEM
    return request_irq(43, oops_irq, 0, "oops_handlers", ran)


def oops_handlers_exit():
    free_irq(43, ran)
    tasklet_kill(bad_tasklet)
    tasklet_kill(good_tasklet)
    del_timer_sync(bad_timer)
    del_timer_sync(good_timer)
    destroy_workqueue(ordered_wq)


module_init(oops_handlers_init)
module_exit(oops_handlers_exit)
MODULE_LICENSE("GPL")
