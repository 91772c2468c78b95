"""module_param of several types."""

from bottomhalf.linux import *

count = 1
name = "default"
verbose = False
mask = 0
module_param("count", "int", 0o644)
module_param("name", "charp", 0o444)
module_param("verbose", "bool", 0o644)
module_param("mask", "ulong", 0o644)
MODULE_PARM_DESC("count", "How many")


def params_mod_init():
    pr_info("params_mod: count=%d name=%s verbose=%d mask=%#lx\n", count, name, verbose, mask)
    return 0


def params_mod_exit():
    pass


module_init(params_mod_init)
module_exit(params_mod_exit)
MODULE_LICENSE("GPL")
