"""kmalloc(GFP_KERNEL) under a spinlock, from init and on demand."""

from bottomhalf.linux import *

my_lock = DEFINE_SPINLOCK()
buffers = []


def alloc_locked(flags):
    spin_lock(my_lock)
    buffers.append(kmalloc(64, flags))
    spin_unlock(my_lock)


def kmalloc_locked_init():
    alloc_locked(GFP_KERNEL)
    alloc_locked(GFP_KERNEL)
    pr_info("kmalloc_locked: loaded\n")
    return 0


def kmalloc_locked_exit():
    for b in buffers:
        kfree(b)


module_init(kmalloc_locked_init)
module_exit(kmalloc_locked_exit)
MODULE_LICENSE("GPL")
