"""jiffies, the timer wheel and the tick.

Mirrors kernel/time/timer.c and include/linux/jiffies.h (reference §7).

* ``jiffies`` counts ticks of 1/HZ s from ``INITIAL_JIFFIES`` (which wraps
  the 32-bit value five minutes after boot, as Linux does to catch bugs).
* A timer_list is filed in a wheel bucket by ``calc_wheel_index``: the expiry
  is rounded *up* to the level's granularity and one more unit, so a timer
  never fires early (a level-0 timer due at jiffy E runs at the tick that
  makes jiffies E + 1; longer timeouts land in coarser levels and may run up
  to ~12.5 % late).
* Timers run from TIMER_SOFTIRQ on the CPU whose wheel holds them, raised by
  that CPU's tick.  The tick is an hrtimer programmed only for the jiffies
  where something expires (NO_HZ), so an idle kernel costs nothing.

Within one tick, timers run as Linux's ``__run_timers`` runs them: higher
wheel levels first, and within a bucket the most recently added first.

Guards: ``TimerBase.lock`` (a raw lock) protects a CPU's wheel and
``running_timer``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .engines.base import HrTimer
from .softirq import TIMER_SOFTIRQ
from .task import TASK_UNINTERRUPTIBLE, Task

if TYPE_CHECKING:
    from .kernel import Kernel

HZ = 250
TICK_NSEC = 1_000_000_000 // HZ
MSEC_PER_SEC = 1000
USEC_PER_SEC = 1_000_000
INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF
MAX_JIFFY_OFFSET = ((1 << 63) - 1) // 2 - 1  # ((LONG_MAX >> 1) - 1)

# Wheel geometry (HZ > 100: 9 levels of 64 buckets, 8x coarser each level).
LVL_CLK_SHIFT = 3
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS
LVL_DEPTH = 9


def LVL_SHIFT(n: int) -> int:  # noqa: N802
    return n * LVL_CLK_SHIFT


def LVL_GRAN(n: int) -> int:  # noqa: N802
    return 1 << LVL_SHIFT(n)


def LVL_START(n: int) -> int:  # noqa: N802
    return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)


WHEEL_TIMEOUT_CUTOFF = LVL_START(LVL_DEPTH)
WHEEL_TIMEOUT_MAX = WHEEL_TIMEOUT_CUTOFF - LVL_GRAN(LVL_DEPTH - 1)

TIMER_DEFERRABLE = 0x00080000
TIMER_PINNED = 0x00100000
TIMER_IRQSAFE = 0x00200000


def msecs_to_jiffies(m: int) -> int:
    """Rounds up: 1 ms -> 1, 4 -> 1, 5 -> 2, 10 -> 3 at HZ=250."""
    if m < 0:
        return MAX_JIFFY_OFFSET
    per = MSEC_PER_SEC // HZ
    return (m + per - 1) // per


def jiffies_to_msecs(j: int) -> int:
    return (MSEC_PER_SEC // HZ) * j


def usecs_to_jiffies(u: int) -> int:
    if u < 0:
        return MAX_JIFFY_OFFSET
    per = USEC_PER_SEC // HZ
    return (u + per - 1) // per


def jiffies_to_usecs(j: int) -> int:
    return (USEC_PER_SEC // HZ) * j


def calc_wheel_index(expires: int, clk: int) -> tuple[int, int]:
    """(level, bucket_expiry) for a timer due at ``expires`` (calc_wheel_index)."""
    delta = expires - clk
    if delta < 0:
        return 0, clk
    if delta >= WHEEL_TIMEOUT_CUTOFF:
        expires = clk + WHEEL_TIMEOUT_MAX
        delta = expires - clk
    lvl = 0
    while lvl < LVL_DEPTH - 1 and delta >= LVL_START(lvl + 1):
        lvl += 1
    bucket = ((expires >> LVL_SHIFT(lvl)) + 1) << LVL_SHIFT(lvl)
    return lvl, bucket


class timer_list:  # noqa: N801 - the kernel's name
    """struct timer_list.  Construct empty, then timer_setup()."""

    __slots__ = ("function", "expires", "flags", "base_cpu", "bucket", "level", "seq",
                 "housekeeping", "__weakref__", "_bh_container")
    _bh_container: Any  # the struct embedding this timer (container_of)

    def __init__(self) -> None:
        self.function: Callable[[timer_list], Any] | None = None
        self.expires = 0
        self.flags = 0
        self.base_cpu = -1  # -1: not pending
        self.bucket = 0
        self.level = 0
        self.seq = 0
        self.housekeeping = False  # kernel bookkeeping: does not keep the kernel busy

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", None)
        return f"<timer_list {name} expires={self.expires} pending={self.base_cpu >= 0}>"


class TimerBase:
    """struct timer_base of one CPU."""

    def __init__(self, cpu: int, lock: Any) -> None:
        self.cpu = cpu
        self.lock = lock
        self.buckets: dict[int, list[timer_list]] = {}
        self.expiries: list[int] = []  # heap of bucket jiffies (may hold stale ones)
        self.clk = INITIAL_JIFFIES
        self.running_timer: timer_list | None = None
        self.running_waiters: list[Task] = []
        self.tick: HrTimer | None = None
        self.tick_at = -1  # jiffy the tick is programmed for
        self.user_pending = 0

    def next_expiry(self) -> int | None:
        exp = self.expiries
        while exp and exp[0] not in self.buckets:
            heapq.heappop(exp)
        return exp[0] if exp else None


class Timers:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.bases = [TimerBase(c, kernel.engine.new_raw_lock()) for c in range(kernel.ncpus)]
        self._seq = 0
        # Other users of the periodic tick (e.g. the workqueue CPU-hog check):
        # fn(ctx) runs in hard-IRQ context at every tick of a CPU while
        # tick_wanted(cpu) says so.
        self.tick_hooks: list[Callable[[ExecCtx], None]] = []
        self.tick_wanted: list[Callable[[int], bool]] = []
        for base in self.bases:
            base.tick = HrTimer(self._tick_handler, base.cpu, "tick_sched_timer")
        kernel.softirq.open_softirq(TIMER_SOFTIRQ, self.run_timer_softirq)

    # ------------------------------------------------------------------
    def jiffies(self) -> int:
        return INITIAL_JIFFIES + self.kernel.engine.now_ns() // TICK_NSEC

    @staticmethod
    def msecs_to_jiffies(m: int) -> int:
        return msecs_to_jiffies(m)

    def timeout_ns(self, ctx: ExecCtx, timeout: int) -> int:
        """How long from now a timer armed for ``jiffies + timeout`` takes to fire."""
        base = self.bases[ctx.cpu]
        now_j = self.jiffies()
        clk = max(base.clk, now_j)
        _, bucket = calc_wheel_index(now_j + timeout, clk)
        if bucket <= now_j:
            bucket = now_j + 1
        return max(0, self.jiffy_ns(bucket) - self.kernel.engine.now_ns())

    def jiffy_ns(self, j: int) -> int:
        """Nanoseconds since boot at which jiffies becomes ``j``."""
        return (j - INITIAL_JIFFIES) * TICK_NSEC

    # ------------------------------------------------------------------
    def mod_timer(self, ctx: ExecCtx, t: timer_list, expires: int, cpu: int | None = None,
                  only_if_pending: bool = False) -> int:
        """Arm (or re-arm) ``t``; returns 1 if it was pending."""
        if t.function is None:
            self.kernel.warn(ctx, "mod_timer() on a timer that was never set up (timer_setup)")
            return 0
        was = self.detach(ctx, t)
        if only_if_pending and not was:
            return 0
        target = ctx.cpu if cpu is None else cpu
        base = self.bases[target]
        base.lock.acquire(ctx)
        now_j = self.jiffies()
        # forward_timer_base(): an idle base catches up with jiffies
        if base.clk < now_j:
            base.clk = now_j
        lvl, bucket = calc_wheel_index(expires, base.clk)
        t.expires = expires
        t.level = lvl
        t.bucket = bucket
        self._seq += 1
        t.seq = self._seq
        t.base_cpu = target
        lst = base.buckets.get(bucket)
        if lst is None:
            base.buckets[bucket] = [t]
            heapq.heappush(base.expiries, bucket)
        else:
            lst.append(t)
        if not t.housekeeping:
            base.user_pending += 1
        base.lock.release(ctx)
        self.program_tick(target)
        return 1 if was else 0

    def detach(self, ctx: ExecCtx, t: timer_list) -> bool:
        cpu = t.base_cpu
        if cpu < 0:
            return False
        base = self.bases[cpu]
        base.lock.acquire(ctx)
        try:
            if t.base_cpu != cpu:
                return False
            lst = base.buckets.get(t.bucket)
            if lst is not None:
                try:
                    lst.remove(t)
                except ValueError:
                    pass
                if not lst:
                    del base.buckets[t.bucket]
            t.base_cpu = -1
            if not t.housekeeping:
                base.user_pending -= 1
            return True
        finally:
            base.lock.release(ctx)

    def del_timer(self, ctx: ExecCtx, t: timer_list) -> int:
        return 1 if self.detach(ctx, t) else 0

    def del_timer_sync(self, ctx: ExecCtx, t: timer_list, internal: bool = False) -> int:
        """Deactivate and wait for a running callback to finish (timer_delete_sync)."""
        k = self.kernel
        if ctx.in_hardirq() and not t.flags & TIMER_IRQSAFE and not internal:
            k.warn(ctx, "del_timer_sync() from hard-IRQ context on a timer that is not IRQSAFE")
        ret = self.del_timer(ctx, t)
        for base in self.bases:
            if base.running_timer is t:
                if base.cpu == ctx.cpu and ctx.in_serving_softirq():
                    k.warn(ctx, "del_timer_sync() called from the timer's own callback")
                    break
                self._wait_not_running(ctx, base, t)
        return ret

    def _wait_not_running(self, ctx: ExecCtx, base: TimerBase, t: timer_list) -> None:
        task = ctx.task

        def done() -> bool:
            if base.running_timer is not t:
                return True
            if task not in base.running_waiters:
                base.running_waiters.append(task)
            return False

        self.kernel.sched.sleep_until(ctx, done, TASK_UNINTERRUPTIBLE,
                                      "del_timer_sync() until the callback returns")

    def pending(self, t: timer_list) -> bool:
        return t.base_cpu >= 0

    # ------------------------------------------------------------------
    # the tick
    def program_tick(self, cpu: int) -> None:
        """Program the tick of ``cpu`` for the next jiffy where work is due."""
        base = self.bases[cpu]
        nxt = base.next_expiry()
        now_j = self.jiffies()
        want_periodic = any(w(cpu) for w in self.tick_wanted)
        if want_periodic:
            nxt = now_j + 1 if nxt is None else min(nxt, now_j + 1)
        if nxt is None:
            if base.tick_at >= 0:
                self.kernel.engine.hrtimer_cancel(base.tick)  # type: ignore[arg-type]
                base.tick_at = -1
            return
        if nxt <= now_j:
            nxt = now_j + 1
        if base.tick_at == nxt and base.tick is not None and base.tick.active:
            return
        base.tick_at = nxt
        self.kernel.engine.hrtimer_start(base.tick, self.jiffy_ns(nxt))  # type: ignore[arg-type]

    def _tick_handler(self, ctx: ExecCtx, hrt: HrTimer) -> None:
        """tick_sched_timer -> update_process_times -> run_local_timers."""
        k = self.kernel
        cpu = ctx.cpu
        k.irq.loc[cpu] += 1
        base = self.bases[cpu]
        base.tick_at = -1
        for hook in self.tick_hooks:
            hook(ctx)
        nxt = base.next_expiry()
        if nxt is not None and nxt <= self.jiffies():
            k.softirq.raise_softirq_irqoff(ctx, TIMER_SOFTIRQ)
        else:
            self.program_tick(cpu)

    def run_timer_softirq(self, ctx: ExecCtx) -> bool:
        """__run_timers(): expire every bucket up to jiffies, in wheel order."""
        k = self.kernel
        cpu = ctx.cpu
        base = self.bases[cpu]
        now_j = self.jiffies()
        lock = base.lock
        while True:
            lock.acquire(ctx)
            nxt = base.next_expiry()
            if nxt is None or nxt > now_j:
                base.clk = now_j + 1
                lock.release(ctx)
                break
            base.clk = nxt
            lst = base.buckets.pop(nxt)
            # Higher levels first; within a level the most recent first.
            lst.sort(key=lambda t: (-t.level, -t.seq))
            for t in lst:
                t.base_cpu = -1
                if not t.housekeeping:
                    base.user_pending -= 1
            lock.release(ctx)
            for t in lst:
                if t.base_cpu >= 0:
                    continue  # re-armed by an earlier callback of this batch
                base.running_timer = t
                fn = t.function
                k.call_handler(ctx, fn, (t,), "timer")  # type: ignore[arg-type]
                base.running_timer = None
                if base.running_waiters:
                    waiters, base.running_waiters = base.running_waiters, []
                    for w in waiters:
                        k.sched.wake_up_process(w)
        self.program_tick(cpu)
        return True

    # ------------------------------------------------------------------
    def process_timer(self, task: Task) -> timer_list:
        """The on-stack timer of schedule_timeout(): wakes ``task``."""
        t = timer_list()
        sched = self.kernel.sched

        def process_timeout(_t: timer_list) -> None:
            sched.wake_up_process(task)

        t.function = process_timeout
        return t

    def user_timers_pending(self) -> int:
        return sum(b.user_pending for b in self.bases)

    def all_pending(self) -> list[timer_list]:
        out: list[timer_list] = []
        for b in self.bases:
            for lst in b.buckets.values():
                out.extend(lst)
        return out

    def remove_owned(self, ctx: ExecCtx, owns: Callable[[Any], bool]) -> list[timer_list]:
        removed = [t for t in self.all_pending() if owns(t.function)]
        for t in removed:
            self.detach(ctx, t)
        return removed
