"""A classic mistake: sleeping in a tasklet.

A tasklet runs in softirq context, which must not sleep.  ``msleep()`` here
makes a debug kernel (CONFIG_DEBUG_ATOMIC_SLEEP) print "BUG: sleeping
function called from invalid context" with this file and line, then "BUG:
scheduling while atomic", and taint the kernel.  The fix is to move the
sleep into a work item (see examples/irq_driver.py) or use mdelay() if a
short busy-wait is really what is wanted.

    bh run examples/sleepy_tasklet.py
"""

from bottomhalf.linux import *

my_tasklet = tasklet_struct()


def sleepy_tasklet_func(data):
    pr_info("sleepy_tasklet: about to sleep in softirq context\n")
    msleep(10)  # wrong: may sleep, and a tasklet must not
    pr_info("sleepy_tasklet: woke up (the kernel survived, this time)\n")


def sleepy_tasklet_init():
    tasklet_init(my_tasklet, sleepy_tasklet_func, 0)
    tasklet_schedule(my_tasklet)
    return 0


def sleepy_tasklet_exit():
    tasklet_kill(my_tasklet)


module_init(sleepy_tasklet_init)
module_exit(sleepy_tasklet_exit)
MODULE_LICENSE("GPL")
MODULE_DESCRIPTION("Sleeping in a tasklet: what the kernel reports")
