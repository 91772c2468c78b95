"""Contexts: in_*(), current, preemption, BH and IRQ disabling
(include/linux/preempt.h, irqflags.h, bottom_half.h, smp.h)."""

from __future__ import annotations

from ..context import current_ctx as _ctx
from ..locking import local_irq_restore as _local_irq_restore
from ..locking import local_irq_save as _local_irq_save
from ..locking import preempt_count_sub_ok as _preempt_count_sub_ok
from ..task import Task


def in_interrupt() -> bool:
    return _ctx().in_interrupt()


def in_hardirq() -> bool:
    return _ctx().in_hardirq()


in_irq = in_hardirq


def in_softirq() -> bool:
    return _ctx().in_softirq()


def in_serving_softirq() -> bool:
    return _ctx().in_serving_softirq()


def in_task() -> bool:
    return _ctx().in_task()


def in_atomic() -> bool:
    return _ctx().in_atomic()


def in_nmi() -> bool:
    return False


def preempt_count() -> int:
    return _ctx().preempt_count


def irqs_disabled() -> bool:
    return _ctx().irqs_off


def smp_processor_id() -> int:
    return _ctx().cpu


raw_smp_processor_id = smp_processor_id


def num_online_cpus() -> int:
    return _ctx().kernel.ncpus


num_possible_cpus = num_online_cpus


def cpu_online(cpu: int) -> bool:
    return 0 <= cpu < _ctx().kernel.ncpus


class _Current:
    """``current``: the task the calling code runs for (.comm, .pid)."""

    @property
    def comm(self) -> str:
        return _ctx().task.comm

    @property
    def pid(self) -> int:
        return _ctx().task.pid

    @property
    def state(self) -> int:
        return _ctx().task.state

    @property
    def task(self) -> Task:
        return _ctx().task

    def __repr__(self) -> str:
        t = _ctx().task
        return f"<current {t.comm}/{t.pid}>"


current = _Current()


def get_current() -> Task:
    return _ctx().task


def might_sleep() -> None:
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "might_sleep")


def preempt_disable() -> None:
    _ctx().preempt_count += 1


def preempt_enable() -> None:
    ctx = _ctx()
    if _preempt_count_sub_ok(ctx, 1, "preempt_count_sub"):
        ctx.preempt_count -= 1


def local_bh_disable() -> None:
    ctx = _ctx()
    ctx.kernel.softirq.local_bh_disable(ctx)


def local_bh_enable() -> None:
    ctx = _ctx()
    ctx.kernel.softirq.local_bh_enable(ctx)


def local_irq_save() -> int:
    """Disable local interrupts; returns the flags for local_irq_restore."""
    return _local_irq_save(_ctx())


def local_irq_restore(flags: int) -> None:
    _local_irq_restore(_ctx(), flags)


def local_irq_disable() -> None:
    ctx = _ctx()
    ctx.kernel.engine.local_irq_disable(ctx)


def local_irq_enable() -> None:
    ctx = _ctx()
    if ctx.in_hardirq():
        # Linux would enable them, and warn "irq N handler ... enabled
        # interrupts" when the handler returns; the engines cannot nest there.
        ctx.kernel.warn(ctx, "bottomhalf: local_irq_enable() in hard-IRQ context ignored: "
                             "a handler must return with interrupts disabled")
        return
    ctx.kernel.engine.local_irq_enable(ctx)


def cpu_relax() -> None:
    """A spin-loop hint.  In sim it takes 100 ns so that spinning lets time pass."""
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, 100)


def barrier() -> None:
    pass


smp_mb = smp_rmb = smp_wmb = barrier
