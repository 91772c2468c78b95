"""A tasklet that sleeps: msleep() in softirq context."""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()


def sleepy_tasklet(data):
    msleep(10)
    pr_info("sleepy_tasklet: still running\n")


def sleep_in_tasklet_init():
    tasklet_init(my_tasklet, sleepy_tasklet, 0)
    tasklet_schedule(my_tasklet)
    return 0


def sleep_in_tasklet_exit():
    tasklet_kill(my_tasklet)


module_init(sleep_in_tasklet_init)
module_exit(sleep_in_tasklet_exit)
MODULE_LICENSE("GPL")
