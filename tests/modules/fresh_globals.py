"""Counts its loads in a module global: every insmod starts from 0 again."""

from bottomhalf.linux import *

loads = 0


def fresh_globals_init():
    global loads
    loads += 1
    pr_info("fresh_globals: loads=%d\n", loads)
    return 0


def fresh_globals_exit():
    pr_info("fresh_globals: bye\n")


module_init(fresh_globals_init)
module_exit(fresh_globals_exit)
MODULE_LICENSE("GPL v2")
MODULE_AUTHOR("A. Author")
MODULE_AUTHOR("B. Author")
MODULE_DESCRIPTION("Fresh globals on every load")
MODULE_VERSION("1.2")
