"""wait_for_completion() with bottom halves disabled (already completed: no sleep)."""

from bottomhalf.linux import *

done = DECLARE_COMPLETION()


def wait_bh_off_init():
    complete(done)
    local_bh_disable()
    wait_for_completion(done)
    local_bh_enable()
    return 0


def wait_bh_off_exit():
    pass


module_init(wait_bh_off_init)
module_exit(wait_bh_off_exit)
MODULE_LICENSE("GPL")
