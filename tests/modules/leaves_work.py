"""Its exit leaves deferred work behind: a (disabled) scheduled tasklet, an
armed timer and a delayed work item on system_wq."""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()
my_timer = timer_list()
my_dwork = delayed_work()


def leftover_tasklet(data):
    pr_info("leaves_work: tasklet ran\n")


def leftover_timer(t):
    pr_info("leaves_work: timer ran\n")


def leftover_work(work):
    pr_info("leaves_work: work ran\n")


def leaves_work_init():
    tasklet_init(my_tasklet, leftover_tasklet, 0)
    timer_setup(my_timer, leftover_timer, 0)
    INIT_DELAYED_WORK(my_dwork, leftover_work)
    return 0


def leaves_work_exit():
    tasklet_disable(my_tasklet)
    tasklet_schedule(my_tasklet)
    mod_timer(my_timer, jiffies() + msecs_to_jiffies(100))
    schedule_delayed_work(my_dwork, msecs_to_jiffies(200))
    pr_info("leaves_work: exit forgot to clean up\n")


module_init(leaves_work_init)
module_exit(leaves_work_exit)
MODULE_LICENSE("GPL")
