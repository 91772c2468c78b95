"""Forgets MODULE_LICENSE: modpost refuses it."""

from bottomhalf.linux import *


def no_licence_init():
    pr_info("no_licence: must never run\n")
    return 0


module_init(no_licence_init)
