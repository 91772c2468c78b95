"""An init that arms a timer and then raises."""

from bottomhalf.linux import *

my_timer = timer_list()


def raising_timer(t):
    pr_info("raising_init: timer must never run\n")


def raising_init_init():
    timer_setup(my_timer, raising_timer, 0)
    mod_timer(my_timer, jiffies() + 5)
    table = {}
    return table["missing"]


def raising_init_exit():
    del_timer_sync(my_timer)


module_init(raising_init_init)
module_exit(raising_init_exit)
MODULE_LICENSE("GPL")
