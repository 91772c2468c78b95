"""The tutorial's workqueue module, translated line for line.  It does not load.

Its init function is named ``workqueue_init``, which include/linux/workqueue.h
already declares as ``void __init workqueue_init(void)`` (the kernel's own boot
step).  In C, gcc stops with "conflicting types for 'workqueue_init'" and
"'init_module' aliased to external symbol 'workqueue_init'" (reference §12);
bottomhalf's loader refuses the file for the same reason.  The corrected
module is ``examples/workqueue_driver.py``; ``bh lesson`` loads both.
"""

from bottomhalf.linux import *

my_workqueue = None
my_work = work_struct()


# Workqueue Function
def my_work_func(work):
    printk(KERN_INFO + "Workqueue executed in process context\n")


# Module Init: Initialize Workqueue
def workqueue_init():
    global my_workqueue
    my_workqueue = create_singlethread_workqueue("my_wq")
    if not my_workqueue:
        return -ENOMEM

    INIT_WORK(my_work, my_work_func)
    queue_work(my_workqueue, my_work)
    printk(KERN_INFO + "Workqueue scheduled\n")
    return 0


# Module Exit: Cleanup Workqueue
def workqueue_exit():
    flush_workqueue(my_workqueue)
    destroy_workqueue(my_workqueue)
    printk(KERN_INFO + "Workqueue removed\n")


module_init(workqueue_init)
module_exit(workqueue_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Workqueue Example")
