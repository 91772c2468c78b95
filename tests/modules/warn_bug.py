"""WARN_ON, WARN_ON_ONCE, WARN, BUG_ON and dump_stack, called on demand."""

from bottomhalf.linux import *


def do_warn_on(cond):
    return WARN_ON(cond)


def do_warn_on_once():
    return WARN_ON_ONCE(True)


def do_warn(value):
    return WARN(value > 2, "value %d is above 2\n", value)


def do_bug_on(cond):
    BUG_ON(cond)
    return "survived"


def do_dump_stack():
    dump_stack()


def warn_bug_init():
    return 0


def warn_bug_exit():
    pass


module_init(warn_bug_init)
module_exit(warn_bug_exit)
MODULE_LICENSE("GPL")
