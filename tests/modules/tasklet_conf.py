"""A module with a static tasklet, for the tasklet conformance tests.

Parameters: ``disable_first=1`` makes init disable the tasklet before
scheduling it, so that module_exit's tasklet_kill() can never finish.
"""

from bottomhalf.linux import *

disable_first = 0
module_param("disable_first", "int", 0o444)

conf_tasklet = tasklet_struct()
runs = []


def conf_tasklet_fn(t):
    runs.append(smp_processor_id())
    pr_info("conf_tasklet ran on CPU%d\n", smp_processor_id())


def tasklet_conf_init():
    tasklet_setup(conf_tasklet, conf_tasklet_fn)
    if disable_first:
        tasklet_disable(conf_tasklet)
    tasklet_schedule(conf_tasklet)
    return 0


def tasklet_conf_exit():
    tasklet_kill(conf_tasklet)
    pr_info("tasklet_conf: killed\n")


module_init(tasklet_conf_init)
module_exit(tasklet_conf_exit)
MODULE_LICENSE("GPL")
MODULE_DESCRIPTION("tasklet conformance helper")
