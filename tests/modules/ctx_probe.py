"""Records the execution context seen from each kind of kernel code.

Every probe appends (where, comm, preempt_count, in_interrupt, in_hardirq,
in_irq, in_softirq, in_serving_softirq, in_task, in_atomic, irqs_disabled,
smp_processor_id) to ``seen``.  IRQ line 40 runs ``probe_irq``; line 41
runs ``probe_irq_bh``, which also schedules the tasklet (so it runs at
irq_exit).
"""

from bottomhalf.linux import *

seen = []
lock = DEFINE_SPINLOCK()
my_tasklet = tasklet_struct()
my_work = work_struct()
done = DECLARE_COMPLETION()


def snap(where):
    seen.append((where, current.comm, preempt_count(), in_interrupt(), in_hardirq(),
                 in_irq(), in_softirq(), in_serving_softirq(), in_task(), in_atomic(),
                 irqs_disabled(), smp_processor_id()))


def probe_tasklet(data):
    snap("tasklet")


def probe_work(work):
    snap("work")
    complete(done)


def probe_irq(irq, dev_id):
    snap("hardirq")
    return IRQ_HANDLED


def probe_irq_bh(irq, dev_id):
    snap("hardirq")
    tasklet_schedule(my_tasklet)
    return IRQ_HANDLED


def ctx_probe_init():
    snap("init")
    local_bh_disable()
    snap("bh_disabled")
    local_bh_enable()
    spin_lock(lock)
    snap("spin_lock")
    spin_unlock(lock)
    spin_lock_bh(lock)
    snap("spin_lock_bh")
    spin_unlock_bh(lock)
    flags = spin_lock_irqsave(lock)
    snap("spin_lock_irqsave")
    spin_unlock_irqrestore(lock, flags)
    snap("unlocked")
    tasklet_init(my_tasklet, probe_tasklet, 0)
    INIT_WORK(my_work, probe_work)
    ret = request_irq(40, probe_irq, 0, "ctx_probe", my_work)
    if ret:
        return ret
    return request_irq(41, probe_irq_bh, 0, "ctx_probe_bh", my_tasklet)


def ctx_probe_exit():
    snap("exit")
    free_irq(40, my_work)
    free_irq(41, my_tasklet)
    tasklet_kill(my_tasklet)
    cancel_work_sync(my_work)


module_init(ctx_probe_init)
module_exit(ctx_probe_exit)
MODULE_LICENSE("GPL")
