"""A pre-5.9 driver: DECLARE_TASKLET(name, func, data) with a func(data)."""

from bottomhalf.linux import *


def old_func(data):
    pr_info("old tasklet data %lu\n", data)


old_tasklet = DECLARE_TASKLET(old_func, 1234)


def old_declare_tasklet_init():
    tasklet_schedule(old_tasklet)
    return 0


module_init(old_declare_tasklet_init)
MODULE_LICENSE("GPL")
