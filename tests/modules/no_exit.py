"""An init but no exit: Linux will not unload it."""

from bottomhalf.linux import *


def no_exit_init():
    return 0


module_init(no_exit_init)
MODULE_LICENSE("Dual BSD/GPL")
