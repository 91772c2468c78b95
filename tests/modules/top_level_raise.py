"""Its top level raises while the file executes."""

from bottomhalf.linux import *

SETTINGS = {"size": 4}
BUFFER_SIZE = SETTINGS["sizes"]


def top_level_raise_init():
    return 0


module_init(top_level_raise_init)
MODULE_LICENSE("GPL")
