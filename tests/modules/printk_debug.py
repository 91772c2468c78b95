"""pr_debug with DEBUG defined (as #define DEBUG before the includes)."""

from bottomhalf.linux import *

DEBUG = True


def printk_debug_init():
    pr_debug("debugging %s\n", "on")
    return 0


def printk_debug_exit():
    pass


module_init(printk_debug_init)
module_exit(printk_debug_exit)
MODULE_LICENSE("GPL")
