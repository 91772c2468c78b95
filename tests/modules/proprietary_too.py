"""A second non-GPL module: the taint messages are not repeated."""

from bottomhalf.linux import *


def proprietary_too_init():
    return 0


def proprietary_too_exit():
    pass


module_init(proprietary_too_init)
module_exit(proprietary_too_exit)
MODULE_LICENSE("MIT")
