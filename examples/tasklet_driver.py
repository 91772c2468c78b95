"""The lesson's tasklet module, in Python.

The tutorial names its init function ``tasklet_init``, which is the name of
the kernel function it calls: in C that does not compile ("conflicting types
for 'tasklet_init'").  Here the init and exit functions carry the module's
name instead, as kernel style recommends.
"""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()


# Tasklet function: runs in softirq context, so it must not sleep.
def my_tasklet_func(data):
    printk(KERN_INFO + "Tasklet executed with data: %lu\n", data)


def tasklet_driver_init():
    tasklet_init(my_tasklet, my_tasklet_func, 1234)
    tasklet_schedule(my_tasklet)
    printk(KERN_INFO + "Tasklet scheduled\n")
    return 0


def tasklet_driver_exit():
    tasklet_kill(my_tasklet)
    printk(KERN_INFO + "Tasklet removed\n")


module_init(tasklet_driver_init)
module_exit(tasklet_driver_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Tasklet Example")
