"""The tutorial's workqueue module as written, in Python: its init is named
workqueue_init, a kernel boot function declared in workqueue.h."""

from bottomhalf.linux import *

my_workqueue = None
my_work = work_struct()


def my_work_func(work):
    printk(KERN_INFO + "Workqueue executed in process context\n")


def workqueue_init():
    global my_workqueue
    my_workqueue = create_workqueue("my_workqueue")
    INIT_WORK(my_work, my_work_func)
    queue_work(my_workqueue, my_work)
    printk(KERN_INFO + "Workqueue scheduled\n")
    return 0


def workqueue_exit():
    flush_workqueue(my_workqueue)
    destroy_workqueue(my_workqueue)
    printk(KERN_INFO + "Workqueue removed\n")


module_init(workqueue_init)
module_exit(workqueue_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Workqueue Example")
