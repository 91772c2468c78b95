"""A non-GPL module that uses GPL-only symbols: the loader cannot link it."""

from bottomhalf.linux import *

my_wq = None
my_work = work_struct()


def work_func(work):
    pass


def proprietary_gpl_only_init():
    global my_wq
    my_wq = alloc_workqueue("gplonly", 0, 0)
    INIT_WORK(my_work, work_func)
    queue_work(my_wq, my_work)
    flush_work(my_work)
    return 0


def proprietary_gpl_only_exit():
    destroy_workqueue(my_wq)


module_init(proprietary_gpl_only_init)
module_exit(proprietary_gpl_only_exit)
MODULE_LICENSE("Proprietary")
