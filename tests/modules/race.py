"""Two work items on two CPUs finish their busy-wait at the same instant.

Which one logs first is a tie between CPUs: on sim the seed decides.
"""

from bottomhalf.linux import *

works = [work_struct(), work_struct()]


def racer(work):
    mdelay(1)
    pr_info("race: CPU %d done\n", smp_processor_id())


def race_init():
    for cpu, w in enumerate(works):
        INIT_WORK(w, racer)
        queue_work_on(cpu, system_wq, w)
    return 0


def race_exit():
    for w in works:
        cancel_work_sync(w)


module_init(race_init)
module_exit(race_exit)
MODULE_LICENSE("GPL")
