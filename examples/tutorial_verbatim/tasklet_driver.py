"""The tutorial's tasklet module, translated line for line.  It does not load.

Its init function is named ``tasklet_init``, the name of the kernel function
it calls.  In C, gcc stops with "conflicting types for 'tasklet_init'" and,
at the call, "too many arguments to function 'tasklet_init'" (reference §12).
In Python the call would reach the module's own ``tasklet_init()`` instead of
the kernel's, so bottomhalf's loader refuses the file and names the line.
The corrected module is ``examples/tasklet_driver.py``; ``bh lesson`` loads
both.
"""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()


# Tasklet Function
def my_tasklet_func(data):
    printk(KERN_INFO + "Tasklet executed with data: %lu\n", data)


# Module Init: Initialize Tasklet
def tasklet_init():
    tasklet_init(my_tasklet, my_tasklet_func, 1234)
    tasklet_schedule(my_tasklet)
    printk(KERN_INFO + "Tasklet scheduled\n")
    return 0


# Module Exit: Cleanup Tasklet
def tasklet_exit():
    tasklet_kill(my_tasklet)
    printk(KERN_INFO + "Tasklet removed\n")


module_init(tasklet_init)
module_exit(tasklet_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Tasklet Example")
