"""The tutorial's tasklet module as written, in Python: its init is named
tasklet_init, the kernel function it calls (C: conflicting types)."""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()


def my_tasklet_func(data):
    printk(KERN_INFO + "Tasklet executed with data: %lu\n", data)


def tasklet_init():
    tasklet_init(my_tasklet, my_tasklet_func, 1234)
    tasklet_schedule(my_tasklet)
    printk(KERN_INFO + "Tasklet scheduled\n")
    return 0


def tasklet_exit():
    tasklet_kill(my_tasklet)
    printk(KERN_INFO + "Tasklet removed\n")


module_init(tasklet_init)
module_exit(tasklet_exit)

MODULE_LICENSE("GPL")
MODULE_AUTHOR("Your Name")
MODULE_DESCRIPTION("Tasklet Example")
