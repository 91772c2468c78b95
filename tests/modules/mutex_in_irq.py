"""A hard-IRQ handler (line 42) that takes a mutex."""

from bottomhalf.linux import *

my_mutex = DEFINE_MUTEX()
handled = atomic_t()


def mutex_irq_handler(irq, dev_id):
    mutex_lock(my_mutex)
    atomic_inc(handled)
    mutex_unlock(my_mutex)
    return IRQ_HANDLED


def mutex_in_irq_init():
    return request_irq(42, mutex_irq_handler, 0, "mutex_in_irq", my_mutex)


def mutex_in_irq_exit():
    free_irq(42, my_mutex)


module_init(mutex_in_irq_init)
module_exit(mutex_in_irq_exit)
MODULE_LICENSE("GPL")
