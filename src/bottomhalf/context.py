"""Execution contexts: preempt_count, the in_*() predicates, and might_sleep.

Mirrors include/linux/preempt.h and the CONFIG_DEBUG_ATOMIC_SLEEP part of
kernel/sched/core.c.  Every piece of kernel code runs in an :class:`ExecCtx`:
the task it runs on behalf of (``current``), the CPU, the preempt count and
the CPU's interrupt-enable flag.  Hard IRQs and softirqs do not get contexts
of their own: as in Linux they run on top of whatever they interrupted, by
adding ``HARDIRQ_OFFSET`` or ``SOFTIRQ_OFFSET`` to the interrupted context's
count and taking it away again on exit.

The engines keep ``_local.ctx`` pointing at the context that is executing in
this OS thread; the API in :mod:`bottomhalf.linux` finds the kernel, the CPU
and the task through it.  In ``sim`` every task owns one context (interrupts
nest on it); in ``real`` every OS thread does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import NotInKernelError

if TYPE_CHECKING:
    from .kernel import Kernel
    from .task import Task

# include/linux/preempt.h
PREEMPT_MASK = 0x000000FF
SOFTIRQ_MASK = 0x0000FF00
HARDIRQ_MASK = 0x000F0000
NMI_MASK = 0x00F00000
PREEMPT_OFFSET = 0x1
SOFTIRQ_OFFSET = 0x100
SOFTIRQ_DISABLE_OFFSET = 2 * SOFTIRQ_OFFSET
SOFTIRQ_LOCK_OFFSET = SOFTIRQ_DISABLE_OFFSET + PREEMPT_OFFSET
HARDIRQ_OFFSET = 0x10000
NMI_OFFSET = 0x100000
IRQ_COUNT_MASK = NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK


class ExecCtx:
    """Where a piece of kernel code is running.

    Fields are written only by the code running in this context (or by the
    engine while the context is parked), so they need no lock.
    """

    __slots__ = ("kernel", "task", "cpu", "preempt_count", "irqs_off", "bh_owned", "detached")

    def __init__(self, kernel: Kernel, task: Task, cpu: int, preempt_count: int = 0) -> None:
        self.kernel = kernel
        self.task = task
        self.cpu = cpu
        self.preempt_count = preempt_count
        self.irqs_off = False
        # real engine: how many BH-disable levels of this context hold the CPU's
        # softirq lock (see softirq.local_bh_disable).
        self.bh_owned = 0
        # real engine: set when the kernel that adopted a plain Python thread
        # halts, so that the thread's next API call looks for a running
        # kernel instead of acting on the halted one.
        self.detached = False

    # include/linux/preempt.h predicates ---------------------------------
    def in_hardirq(self) -> bool:
        return bool(self.preempt_count & HARDIRQ_MASK)

    def in_serving_softirq(self) -> bool:
        return bool(self.preempt_count & SOFTIRQ_OFFSET)

    def in_softirq(self) -> bool:
        return bool(self.preempt_count & SOFTIRQ_MASK)

    def in_interrupt(self) -> bool:
        return bool(self.preempt_count & IRQ_COUNT_MASK)

    def in_task(self) -> bool:
        return not (self.preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET))

    def in_atomic(self) -> bool:
        return self.preempt_count != 0

    def bh_disabled(self) -> bool:
        """True if local_bh_disable() (not softirq serving) is in effect."""
        return bool((self.preempt_count & SOFTIRQ_MASK) >> 9)

    def describe(self) -> str:
        """Human words for the context, for error messages."""
        if self.in_hardirq():
            return "hard-IRQ context"
        if self.in_serving_softirq():
            return "softirq context"
        if self.bh_disabled():
            return "BH-disabled context"
        if self.irqs_off:
            return "IRQs-disabled context"
        if self.preempt_count & PREEMPT_MASK:
            return "atomic context"
        return "process context"

    def __repr__(self) -> str:
        return (
            f"<ExecCtx {self.task.comm}/{self.task.pid} cpu={self.cpu} "
            f"pc={self.preempt_count:#x} irqs_off={self.irqs_off}>"
        )


class _Local(threading.local):
    ctx: ExecCtx | None = None


_local = _Local()


def current_ctx() -> ExecCtx:
    """The context executing in this thread; raises if none."""
    ctx = _local.ctx
    if ctx is None or ctx.detached:
        ctx = _adopt_foreign_thread()
    return ctx


# Running real kernels that adopt plain threads calling the API.
_adopters: list[Callable[[], ExecCtx | None]] = []
_adopters_lock = threading.Lock()


def add_foreign_adopter(fn: Callable[[], ExecCtx | None]) -> None:
    """A real kernel booted: plain Python threads may call the API in it."""
    with _adopters_lock:
        _adopters.append(fn)


def remove_foreign_adopter(fn: Callable[[], ExecCtx | None]) -> None:
    with _adopters_lock:
        if fn in _adopters:
            _adopters.remove(fn)


def _adopt_foreign_thread() -> ExecCtx:
    _local.ctx = None  # whatever it was (a halted kernel's adoption) is over
    with _adopters_lock:
        adopters = list(_adopters)
    if len(adopters) > 1:
        raise NotInKernelError(
            "this kernel API was called from a plain thread while several real kernels are "
            "running, so it is not clear which one is meant: call it from module code or "
            "through Kernel.call(fn, ...)")
    if adopters:
        ctx = adopters[0]()
        if ctx is not None:
            return ctx
    raise NotInKernelError(
        "this kernel API was called from a thread that is not running in a bottomhalf "
        "kernel: call it from module code (init, a handler, a work function), or wrap it "
        "with Kernel.call(fn, ...)"
    )
