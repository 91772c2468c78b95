"""A tasklet scheduled with bottom halves disabled runs at local_bh_enable()."""

from bottomhalf.linux import *

order = []
my_tasklet = tasklet_struct()


def bh_order_tasklet(data):
    order.append(("tasklet", current.comm, in_serving_softirq()))


def bh_order_init():
    tasklet_init(my_tasklet, bh_order_tasklet, 0)
    local_bh_disable()
    tasklet_schedule(my_tasklet)
    order.append(("scheduled", current.comm, in_serving_softirq()))
    local_bh_enable()
    order.append(("enabled", current.comm, in_serving_softirq()))
    return 0


def bh_order_exit():
    tasklet_kill(my_tasklet)


module_init(bh_order_init)
module_exit(bh_order_exit)
MODULE_LICENSE("GPL")
