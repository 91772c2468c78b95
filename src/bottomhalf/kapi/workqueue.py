"""Workqueues (include/linux/workqueue.h)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..context import ExecCtx, _local
from ..context import current_ctx as _ctx
from ..timer import TIMER_DEFERRABLE
from ..workqueue import (
    __WQ_LEGACY,
    __WQ_ORDERED,
    WORK_CPU_UNBOUND,
    WORKER_DESC_LEN,
    WQ_FREEZABLE,
    WQ_MEM_RECLAIM,
    WQ_UNBOUND,
    delayed_work,
    work_struct,
    workqueue_struct,
)
from ._base import (
    _need,
    _need_fn,
)


class _SystemWq:
    """A system workqueue: resolves to the running kernel's object on use."""

    __slots__ = ("var",)

    def __init__(self, var: str) -> None:
        self.var = var

    def resolve(self) -> workqueue_struct:
        return _ctx().kernel.wq.system[self.var]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"<{self.var}>"


system_wq = _SystemWq("system_wq")
system_percpu_wq = _SystemWq("system_percpu_wq")
system_highpri_wq = _SystemWq("system_highpri_wq")
system_long_wq = _SystemWq("system_long_wq")
system_unbound_wq = _SystemWq("system_unbound_wq")
system_dfl_wq = _SystemWq("system_dfl_wq")
system_freezable_wq = _SystemWq("system_freezable_wq")
system_power_efficient_wq = _SystemWq("system_power_efficient_wq")
system_freezable_power_efficient_wq = _SystemWq("system_freezable_power_efficient_wq")
system_bh_wq = _SystemWq("system_bh_wq")
system_bh_highpri_wq = _SystemWq("system_bh_highpri_wq")


AnyWq = workqueue_struct | _SystemWq


def _wq(wq: Any, fn: str, ctx: ExecCtx) -> workqueue_struct:
    if isinstance(wq, _SystemWq):
        return ctx.kernel.wq.system[wq.var]
    if wq is None:
        raise TypeError(f"{fn}(): the workqueue is None (did alloc_workqueue() fail?)")
    _need(wq, workqueue_struct, fn, "wq")
    return wq


def _work(w: Any, fn: str) -> work_struct:
    if isinstance(w, delayed_work):
        raise TypeError(f"{fn}(): pass a work_struct; for a delayed_work use the *_delayed_work "
                        "functions or dwork.work")
    _need(w, work_struct, fn, "work")
    return w


def _cpu(cpu: int, fn: str, ctx: ExecCtx) -> int:
    if cpu == WORK_CPU_UNBOUND:
        return cpu
    if not isinstance(cpu, int) or not 0 <= cpu < ctx.kernel.ncpus:
        raise ValueError(f"{fn}(): CPU {cpu!r} is not online")
    return cpu


def INIT_WORK(work: work_struct, func: Callable[[work_struct], None]) -> None:  # noqa: N802
    _work(work, "INIT_WORK")
    _need_fn(func, "INIT_WORK", "func")
    work.init(func)


def _init_delayed_work(dwork: delayed_work, func: Callable[[work_struct], None], timer_flags: int,
                       fn: str) -> None:
    _need(dwork, delayed_work, fn, "dwork")
    _need_fn(func, fn, "func")
    t = dwork.timer
    if t.entry is not None:  # re-initialised while armed: take the timer off its wheel
        ctx = _ctx()
        ctx.kernel.timers.del_timer(ctx, t)
    dwork.init(func, timer_flags)


def INIT_DELAYED_WORK(dwork: delayed_work, func: Callable[[work_struct], None]) -> None:  # noqa: N802
    _init_delayed_work(dwork, func, 0, "INIT_DELAYED_WORK")


def INIT_DEFERRABLE_WORK(dwork: delayed_work, func: Callable[[work_struct], None]) -> None:  # noqa: N802
    """A delayed work whose timer is TIMER_DEFERRABLE: it does not wake an idle CPU."""
    _init_delayed_work(dwork, func, TIMER_DEFERRABLE, "INIT_DEFERRABLE_WORK")


def DECLARE_WORK(func: Callable[[work_struct], None]) -> work_struct:  # noqa: N802
    w = work_struct()
    INIT_WORK(w, func)
    return w


def DECLARE_DELAYED_WORK(func: Callable[[work_struct], None]) -> delayed_work:  # noqa: N802
    dw = delayed_work()
    INIT_DELAYED_WORK(dw, func)
    return dw


def DECLARE_DEFERRABLE_WORK(func: Callable[[work_struct], None]) -> delayed_work:  # noqa: N802
    dw = delayed_work()
    INIT_DEFERRABLE_WORK(dw, func)
    return dw


def to_delayed_work(work: work_struct) -> delayed_work:
    dw = work.dwork
    if dw is None:
        raise TypeError("to_delayed_work(): this work_struct is not part of a delayed_work")
    return dw


def alloc_workqueue(fmt: str, flags: int, max_active: int, *args: Any) -> workqueue_struct | None:
    """Create a workqueue named ``fmt % args``; None on failure."""
    ctx = _ctx()
    k = ctx.kernel
    from ..printk import vsprintf

    name = vsprintf(fmt, args) if args or "%" in fmt else fmt
    owner = None
    f = sys._getframe(1)
    while f is not None and owner is None:
        owner = k.modules.name_for_globals(f.f_globals)
        f = f.f_back  # type: ignore[assignment]
    return k.wq.alloc_workqueue(ctx, name, int(flags), int(max_active), owner=owner)


def alloc_ordered_workqueue(fmt: str, flags: int, *args: Any) -> workqueue_struct | None:
    return alloc_workqueue(fmt, WQ_UNBOUND | __WQ_ORDERED | flags, 1, *args)


def create_workqueue(name: str) -> workqueue_struct | None:
    return alloc_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, 1, name)


def create_freezable_workqueue(name: str) -> workqueue_struct | None:
    return alloc_workqueue("%s", __WQ_LEGACY | WQ_FREEZABLE | WQ_UNBOUND | WQ_MEM_RECLAIM, 1,
                           name)


def create_singlethread_workqueue(name: str) -> workqueue_struct | None:
    return alloc_ordered_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, name)


def destroy_workqueue(wq: AnyWq) -> None:
    ctx = _ctx()
    ctx.kernel.wq.destroy_workqueue(ctx, _wq(wq, "destroy_workqueue", ctx))


def queue_work_on(cpu: int, wq: AnyWq, work: work_struct) -> bool:
    """Queue on ``cpu``; False if the item was already pending (or disabled)."""
    if type(work) is work_struct:
        if work.state:
            return False  # already pending: test_and_set_bit() fails, nothing changes
    else:
        _work(work, "queue_work_on")
    ctx = _local.ctx
    if ctx is None or ctx.detached:
        ctx = _ctx()
    if type(wq) is not workqueue_struct:
        wq = _wq(wq, "queue_work_on", ctx)
    if type(cpu) is not int or not 0 <= cpu < ctx.kernel.ncpus:
        cpu = _cpu(cpu, "queue_work_on", ctx)
    return ctx.kernel.wq.queue_work_on(ctx, cpu, wq, work)


def queue_work(wq: AnyWq, work: work_struct) -> bool:
    """Queue on the current CPU (or pod); False if the item was already pending."""
    if type(work) is work_struct:
        if work.state:
            return False  # already pending: test_and_set_bit() fails, nothing changes
    else:
        _work(work, "queue_work")
    ctx = _local.ctx
    if ctx is None or ctx.detached:
        ctx = _ctx()
    if type(wq) is not workqueue_struct:
        wq = _wq(wq, "queue_work", ctx)
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND, wq, work)


def schedule_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND,
                                       ctx.kernel.wq.system["system_percpu_wq"],
                                       _work(work, "schedule_work"))


def schedule_work_on(cpu: int, work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_work_on(ctx, _cpu(cpu, "schedule_work_on", ctx),
                                       ctx.kernel.wq.system["system_percpu_wq"],
                                       _work(work, "schedule_work_on"))


def _dwork(dw: Any, fn: str) -> delayed_work:
    _need(dw, delayed_work, fn, "dwork")
    if dw.work.func is None:
        raise ValueError(f"{fn}(): the delayed_work was never initialised (INIT_DELAYED_WORK)")
    return dw


def queue_delayed_work_on(cpu: int, wq: AnyWq, dwork: delayed_work,
                          delay: int) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_delayed_work_on(
        ctx, _cpu(cpu, "queue_delayed_work_on", ctx), _wq(wq, "queue_delayed_work_on", ctx),
        _dwork(dwork, "queue_delayed_work_on"), int(delay))


def queue_delayed_work(wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    """Queue after ``delay`` jiffies; False if already pending (delay unchanged)."""
    return queue_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay)


def mod_delayed_work_on(cpu: int, wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.mod_delayed_work_on(
        ctx, _cpu(cpu, "mod_delayed_work_on", ctx), _wq(wq, "mod_delayed_work_on", ctx),
        _dwork(dwork, "mod_delayed_work_on"), int(delay))


def mod_delayed_work(wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    """Re-arm; True if it was pending and was modified."""
    return mod_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay)


def schedule_delayed_work(dwork: delayed_work, delay: int) -> bool:
    return queue_delayed_work(system_percpu_wq, dwork, delay)


def schedule_delayed_work_on(cpu: int, dwork: delayed_work, delay: int) -> bool:
    return queue_delayed_work_on(cpu, system_percpu_wq, dwork, delay)


def flush_work(work: work_struct) -> bool:
    """Wait for the last queued instance to finish; True if it waited."""
    ctx = _ctx()
    return ctx.kernel.wq.flush_work(ctx, _work(work, "flush_work"))


def flush_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.flush_delayed_work(ctx, _dwork(dwork, "flush_delayed_work"))


def flush_workqueue(wq: AnyWq) -> None:
    """Wait for every item queued before the call."""
    ctx = _ctx()
    ctx.kernel.wq.flush_workqueue(ctx, _wq(wq, "flush_workqueue", ctx))


def drain_workqueue(wq: AnyWq) -> None:
    ctx = _ctx()
    ctx.kernel.wq.drain_workqueue(ctx, _wq(wq, "drain_workqueue", ctx))


def cancel_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _work(work, "cancel_work"))


def cancel_work_sync(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _work(work, "cancel_work_sync"))


def cancel_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _dwork(dwork, "cancel_delayed_work").work,
                                     is_dwork=True)


def cancel_delayed_work_sync(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _dwork(dwork, "cancel_delayed_work_sync").work,
                                          is_dwork=True, what="cancel_delayed_work_sync")


def disable_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _work(work, "disable_work"), disable=True)


def disable_work_sync(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _work(work, "disable_work_sync"), disable=True,
                                          what="disable_work_sync")


def enable_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.enable_work(ctx, _work(work, "enable_work"))


def disable_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _dwork(dwork, "disable_delayed_work").work,
                                     is_dwork=True, disable=True)


def disable_delayed_work_sync(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _dwork(dwork, "disable_delayed_work_sync").work,
                                          is_dwork=True, disable=True,
                                          what="disable_delayed_work_sync")


def enable_delayed_work(dwork: delayed_work) -> bool:
    return enable_work(_dwork(dwork, "enable_delayed_work").work)


def enable_and_queue_work(wq: AnyWq, work: work_struct) -> bool:
    if enable_work(work):
        queue_work(wq, work)
        return True
    return False


def work_pending(work: work_struct) -> bool:
    return _work(work, "work_pending").pending


def delayed_work_pending(dwork: delayed_work) -> bool:
    _need(dwork, delayed_work, "delayed_work_pending", "dwork")
    return dwork.work.pending


def work_busy(work: work_struct) -> int:
    ctx = _ctx()
    return ctx.kernel.wq.work_busy(_work(work, "work_busy"))


def current_work() -> work_struct | None:
    ctx = _ctx()
    return ctx.kernel.wq.current_work(ctx)


def workqueue_congested(cpu: int, wq: AnyWq) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.workqueue_congested(ctx, _cpu(cpu, "workqueue_congested", ctx),
                                             _wq(wq, "workqueue_congested", ctx))


def queue_work_node(node: int, wq: AnyWq, work: work_struct) -> bool:
    """Queue on a CPU of NUMA ``node`` (one node here); meant for unbound queues (WARN otherwise)."""
    ctx = _ctx()
    q = _wq(wq, "queue_work_node", ctx)
    if not q.unbound:
        ctx.kernel.wq._warn_once(ctx, "queue_work_node", None, "queue_work_node")
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND, q, _work(work, "queue_work_node"))


def current_is_workqueue_rescuer() -> bool:
    ctx = _ctx()
    w = ctx.kernel.wq.current_worker(ctx)
    return w is not None and w.rescue_wq is not None


def set_worker_desc(fmt: str, *args: Any) -> None:
    """Describe what the running work item does: shown after the kworker name (``-desc``)."""
    ctx = _ctx()
    w = ctx.kernel.wq.current_worker(ctx)
    if w is not None:
        from ..printk import vsprintf

        w.desc = (vsprintf(fmt, args) if args or "%" in fmt else fmt)[:WORKER_DESC_LEN - 1]


def workqueue_set_max_active(wq: AnyWq, max_active: int) -> None:
    ctx = _ctx()
    if ctx.in_hardirq():
        ctx.kernel.warn(ctx, "workqueue_set_max_active() from hard-IRQ context")
    ctx.kernel.wq.set_max_active(ctx, _wq(wq, "workqueue_set_max_active", ctx), int(max_active))
