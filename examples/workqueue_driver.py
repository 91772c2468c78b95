"""The lesson's workqueue module, in Python.

The tutorial's ``static int __init workqueue_init(void)`` clashes with the
kernel's own ``workqueue_init()`` and does not compile; the functions here
carry the module's name instead.
"""

from bottomhalf.linux import *

my_workqueue = None
my_work = work_struct()


# Work function: runs in process context (a kworker), so it may sleep.
def my_work_func(work):
    printk(KERN_INFO + "Workqueue executed in process context\n")


def workqueue_driver_init():
    global my_workqueue
    my_workqueue = create_singlethread_workqueue("my_wq")
    if not my_workqueue:
        return -ENOMEM

    INIT_WORK(my_work, my_work_func)
    queue_work(my_workqueue, my_work)
    printk(KERN_INFO + "Workqueue scheduled\n")
    return 0


def workqueue_driver_exit():
    flush_workqueue(my_workqueue)
    destroy_workqueue(my_workqueue)
    printk(KERN_INFO + "Workqueue removed\n")


module_init(workqueue_driver_init)
module_exit(workqueue_driver_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Workqueue Example")
