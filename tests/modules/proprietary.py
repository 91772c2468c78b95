"""A module with a non-GPL licence: loads and taints the kernel."""

from bottomhalf.linux import *


def proprietary_init():
    pr_info("proprietary: loaded\n")
    return 0


def proprietary_exit():
    pass


module_init(proprietary_init)
module_exit(proprietary_exit)
MODULE_LICENSE("Proprietary")
