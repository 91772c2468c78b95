"""hrtimers and the local timer interrupt of each CPU.

Mirrors the expiry side of kernel/time/hrtimer.c (``hrtimer_interrupt``,
``__hrtimer_run_queues``) with the clock event device of each CPU (the local
APIC timer, ``LOC`` in /proc/interrupts).  The hrtimers of a CPU - its tick
and the sleepers of ``usleep_range`` - wait in one queue ordered by their
hard expiry (ties: the first armed first).  The CPU's clock event is
programmed for the earliest hard expiry; when it fires it counts one LOC
interrupt and, in hard-IRQ context, runs queued hrtimers in order while their
soft expiry has passed, stopping at the first one that is not due.  So a
``usleep_range(min, max)`` sleeper wakes at ``max``, or at an earlier local
timer interrupt of its CPU that comes after ``min``.

Simplified: one clock (CLOCK_MONOTONIC), no soft-interrupt hrtimers, and a
cancelled first timer always reprograms the clock event (Linux skips that
for a remote CPU, which then takes one spurious interrupt).

Guards: ``HrTimers.locks[cpu]`` (a raw lock) protects that CPU's queue and
the ``active``/expiry fields of the hrtimers on it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

from .context import ExecCtx
from .engines.base import HrTimer

if TYPE_CHECKING:
    from .kernel import Kernel


class hrtimer:  # noqa: N801 - the kernel's name
    """struct hrtimer: ``function(ctx, timer)`` runs in hard-IRQ context on
    ``cpu`` at the first local timer interrupt after ``softexpires``; that
    interrupt comes at ``expires`` at the latest."""

    __slots__ = ("function", "cpu", "softexpires", "expires", "seq", "active", "name",
                 "housekeeping")

    def __init__(self, function: Callable[[ExecCtx, hrtimer], None], cpu: int, name: str,
                 housekeeping: bool = False) -> None:
        self.function = function
        self.cpu = cpu
        self.softexpires = 0
        self.expires = 0
        self.seq = 0
        self.active = False
        self.name = name
        self.housekeeping = housekeeping  # kernel bookkeeping: does not keep it busy

    def key(self) -> tuple[int, int]:
        return self.expires, self.seq


class HrTimers:
    """The hrtimer queues and clock events of all CPUs.

    ``on_exit(ctx, cpu)`` runs after each local timer interrupt has expired
    its hrtimers (the NO_HZ tick is re-evaluated there).
    """

    def __init__(self, kernel: Kernel, on_exit: Callable[[ExecCtx, int], None]) -> None:
        self.kernel = kernel
        engine = kernel.engine
        n = kernel.ncpus
        self.queues: list[list[hrtimer]] = [[] for _ in range(n)]
        self.locks = [engine.new_raw_lock() for _ in range(n)]
        self.clockevents = [HrTimer(self._interrupt, c, "local_timer") for c in range(n)]
        self.on_exit = on_exit
        self._seq = 0

    def init(self, fn: Callable[[ExecCtx, hrtimer], None], cpu: int, name: str) -> hrtimer:
        return hrtimer(fn, cpu, name)

    def start_range_ns(self, ctx: ExecCtx, t: hrtimer, soft_ns: int, hard_ns: int) -> None:
        """Arm ``t`` to fire between ``soft_ns`` and ``hard_ns`` (ns since boot)."""
        cpu = t.cpu
        lock = self.locks[cpu]
        lock.acquire(ctx)
        q = self.queues[cpu]
        if t.active:
            q.remove(t)
        self._seq += 1
        t.seq = self._seq
        t.softexpires = soft_ns
        t.expires = max(soft_ns, hard_ns)
        t.active = True
        bisect.insort(q, t, key=hrtimer.key)
        first = q[0] is t
        lock.release(ctx)
        if first:
            self._program(ctx, cpu)

    def cancel(self, ctx: ExecCtx, t: hrtimer) -> bool:
        """Dequeue ``t``; True if it was armed."""
        cpu = t.cpu
        lock = self.locks[cpu]
        lock.acquire(ctx)
        was = t.active
        first = False
        if was:
            q = self.queues[cpu]
            first = q[0] is t
            q.remove(t)
            t.active = False
        lock.release(ctx)
        if first:
            self._program(ctx, cpu)
        return was

    def pending(self) -> int:
        """Armed hrtimers that are not kernel bookkeeping (sleepers)."""
        return sum(1 for q in self.queues for t in q if not t.housekeeping)

    def _program(self, ctx: ExecCtx, cpu: int) -> None:
        """Program the CPU's clock event for its earliest hard expiry."""
        lock = self.locks[cpu]
        lock.acquire(ctx)
        q = self.queues[cpu]
        when = q[0].expires if q else None
        lock.release(ctx)
        engine = self.kernel.engine
        ce = self.clockevents[cpu]
        if when is None:
            engine.hrtimer_cancel(ce)
        elif not ce.active or ce.expires_ns != when:
            engine.hrtimer_start(ce, when)

    def _interrupt(self, ctx: ExecCtx, _ce: HrTimer) -> None:
        """hrtimer_interrupt(): one LOC interrupt runs every hrtimer that is due."""
        k = self.kernel
        cpu = ctx.cpu
        k.irq.loc[cpu] += 1
        lock = self.locks[cpu]
        q = self.queues[cpu]
        while True:
            now = k.engine.now_ns()
            lock.acquire(ctx)
            if not q or q[0].softexpires > now:
                lock.release(ctx)
                break
            t = q.pop(0)
            t.active = False
            lock.release(ctx)
            t.function(ctx, t)
        self.on_exit(ctx, cpu)
        self._program(ctx, cpu)
