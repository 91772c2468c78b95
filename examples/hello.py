"""The smallest module: one KERN_INFO line when loaded, one when removed.

``bh lesson`` uses it to show what ``echo 1 > /proc/sys/kernel/printk``
really does: with console_loglevel 1 these lines no longer reach the console,
yet ``dmesg`` still has them.

    bh run examples/hello.py
"""

from bottomhalf.linux import *


def hello_init():
    pr_info("hello: loaded, printing at KERN_INFO\n")
    return 0


def hello_exit():
    pr_info("hello: removed, printing at KERN_INFO\n")


module_init(hello_init)
module_exit(hello_exit)
MODULE_LICENSE("GPL")
MODULE_DESCRIPTION("One KERN_INFO line at load and one at removal")
