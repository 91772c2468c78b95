"""jiffies, the timer wheel, the tick and the local timer interrupt.

Mirrors kernel/time/timer.c, include/linux/jiffies.h and the tick part of
kernel/time/tick-sched.c (reference §7).

* ``jiffies`` counts ticks of 1/HZ s from ``INITIAL_JIFFIES``; jiffy ``j``
  begins at ``(j - INITIAL_JIFFIES) * TICK_NSEC`` ns after boot.
* Each CPU has three timer bases, expired in this order by TIMER_SOFTIRQ:
  ``BASE_LOCAL`` (``TIMER_PINNED`` timers, ``add_timer_on``), ``BASE_GLOBAL``
  (the others) and ``BASE_DEF`` (``TIMER_DEFERRABLE``).  ``mod_timer`` files a
  timer on the base of the CPU that calls it, unless its callback is running
  right now on its old base, where it then stays.
* ``calc_wheel_index`` picks the level from the distance to ``base.clk`` and
  rounds the expiry *up* to the level's granularity plus one unit, so a timer
  never fires early: a level-0 timer due at jiffy E runs at the tick that
  makes jiffies E + 1; longer timeouts run at the next multiple of 8, 64, ...
  jiffies after their expiry (up to ~12.5 % late).
* ``__run_timers`` expires one bucket jiffy at a time (``base.clk`` jumps to
  the next expiry, then is one ahead of it while the callbacks run): higher
  levels first, and within a bucket the most recently queued timer first.
  Callbacks run in softirq context on the base's CPU, with interrupts off for
  ``TIMER_IRQSAFE`` timers.
* The tick is an hrtimer of its CPU (see hrtimer.py) programmed only for
  the jiffies where a timer is due, as NO_HZ does on an idle CPU: it is
  re-evaluated when the local timer interrupt exits, not re-armed by its
  handler.  Linux also ticks every jiffy while a CPU is busy; here those
  ticks are left out, which changes LOC (fewer interrupts on a busy CPU) and
  lets a ``usleep_range`` on a busy CPU last until its maximum.
* Linux 6.9+ lets another CPU expire an idle CPU's global timers (timer
  migration); here every timer runs on its own base's CPU.

Guards: ``TimerBase.lock`` (a raw lock) protects a base's buckets, ``clk`` and
``running_timer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .hrtimer import HrTimers, hrtimer
from .softirq import TIMER_SOFTIRQ
from .task import Task

if TYPE_CHECKING:
    from .kernel import Kernel

HZ = 250
TICK_NSEC = 1_000_000_000 // HZ
MSEC_PER_SEC = 1000
USEC_PER_SEC = 1_000_000
INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF
MAX_JIFFY_OFFSET = ((1 << 63) - 1) // 2 - 1  # ((LONG_MAX >> 1) - 1)
NEXT_TIMER_MAX_DELTA = (1 << 30) - 1

# Wheel geometry (HZ > 100: 9 levels of 64 buckets, 8x coarser each level).
LVL_CLK_SHIFT = 3
LVL_CLK_MASK = (1 << LVL_CLK_SHIFT) - 1
LVL_BITS = 6
LVL_SIZE = 1 << LVL_BITS
LVL_MASK = LVL_SIZE - 1
LVL_DEPTH = 9


def LVL_SHIFT(n: int) -> int:  # noqa: N802
    return n * LVL_CLK_SHIFT


def LVL_GRAN(n: int) -> int:  # noqa: N802
    return 1 << LVL_SHIFT(n)


def LVL_START(n: int) -> int:  # noqa: N802
    return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)


def LVL_OFFS(n: int) -> int:  # noqa: N802
    return n * LVL_SIZE


WHEEL_TIMEOUT_CUTOFF = LVL_START(LVL_DEPTH)
WHEEL_TIMEOUT_MAX = WHEEL_TIMEOUT_CUTOFF - LVL_GRAN(LVL_DEPTH - 1)

TIMER_DEFERRABLE = 0x00080000
TIMER_PINNED = 0x00100000
TIMER_IRQSAFE = 0x00200000

BASE_LOCAL = 0
BASE_GLOBAL = 1
BASE_DEF = 2
NR_BASES = 3


def msecs_to_jiffies(m: int) -> int:
    """Rounds up: 1 ms -> 1, 4 -> 1, 5 -> 2, 10 -> 3 at HZ=250."""
    if m < 0:
        return MAX_JIFFY_OFFSET
    per = MSEC_PER_SEC // HZ
    return (m + per - 1) // per


def jiffies_to_msecs(j: int) -> int:
    return (MSEC_PER_SEC // HZ) * j


def usecs_to_jiffies(u: int) -> int:
    """Rounds up: 1 us -> 1, 4000 -> 1, 4001 -> 2 at HZ=250."""
    if u < 0:
        return MAX_JIFFY_OFFSET
    per = USEC_PER_SEC // HZ
    return (u + per - 1) // per


def jiffies_to_usecs(j: int) -> int:
    return (USEC_PER_SEC // HZ) * j


def calc_index(expires: int, lvl: int) -> tuple[int, int]:
    """(wheel index, bucket expiry): the expiry rounded up past its level's granule."""
    expires = (expires >> LVL_SHIFT(lvl)) + 1
    return LVL_OFFS(lvl) + (expires & LVL_MASK), expires << LVL_SHIFT(lvl)


def calc_wheel_index(expires: int, clk: int) -> tuple[int, int, int]:
    """(level, wheel index, bucket expiry) of a timer due at ``expires``."""
    delta = expires - clk
    if delta < 0:
        return 0, clk & LVL_MASK, clk
    lvl = 0
    while lvl < LVL_DEPTH - 1 and delta >= LVL_START(lvl + 1):
        lvl += 1
    if lvl == LVL_DEPTH - 1 and delta >= WHEEL_TIMEOUT_CUTOFF:
        expires = clk + WHEEL_TIMEOUT_MAX
    idx, bucket_expiry = calc_index(expires, lvl)
    return lvl, idx, bucket_expiry


class timer_list:  # noqa: N801 - the kernel's name
    """struct timer_list.  Construct empty, then timer_setup()."""

    __slots__ = ("function", "expires", "flags", "entry", "base", "idx", "level",
                 "housekeeping", "shutdown", "__weakref__", "_bh_container")
    _bh_container: Any  # the struct embedding this timer (container_of)

    def __init__(self) -> None:
        self.function: Callable[[timer_list], Any] | None = None
        self.expires = 0
        self.flags = 0
        self.entry: list[timer_list] | None = None  # the bucket list it is on: pending
        self.base: TimerBase | None = None  # the base it was last queued on
        self.idx = -1
        self.level = 0
        self.housekeeping = False  # kernel bookkeeping: does not keep the kernel busy
        self.shutdown = False  # timer_shutdown_sync(): later arming is ignored

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", None)
        return f"<timer_list {name} expires={self.expires} pending={self.entry is not None}>"


class TimerBase:
    """struct timer_base: one of the three wheels of a CPU."""

    def __init__(self, cpu: int, index: int, lock: Any) -> None:
        self.cpu = cpu
        self.index = index
        self.lock = lock
        self.vectors: dict[int, list[timer_list]] = {}  # idx -> bucket, head first
        self.bucket_expiry: dict[int, int] = {}
        self.clk = INITIAL_JIFFIES
        self.running_timer: timer_list | None = None
        self.spinners: list[Task] = []  # del_timer_sync() waiting for running_timer
        self.user_pending = 0

    def next_expiry(self) -> int:
        """__next_timer_interrupt(): the earliest bucket expiry."""
        if not self.bucket_expiry:
            return self.clk + NEXT_TIMER_MAX_DELTA
        return min(self.bucket_expiry.values())


def detach_if_pending(base: TimerBase, t: timer_list) -> int:
    """Unlink ``t`` from its bucket (or from a batch collected for expiry); 1 if it was there.

    The caller holds ``base.lock`` (or owns the timer outright, as an initialiser does).
    """
    lst = t.entry
    if lst is None:
        return 0
    lst.remove(t)
    if not lst and base.vectors.get(t.idx) is lst:
        del base.vectors[t.idx]
        del base.bucket_expiry[t.idx]
    t.entry = None
    if not t.housekeeping:
        base.user_pending -= 1
    return 1


class Timers:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        engine = kernel.engine
        n = kernel.ncpus
        self.bases = [[TimerBase(c, i, engine.new_raw_lock()) for i in range(NR_BASES)]
                      for c in range(n)]
        # The local timer interrupt re-evaluates the (stopped) tick on its way out.
        self.hr = HrTimers(kernel, self.program_tick)
        self.ticks = [hrtimer(self._tick_sched_timer, c, "tick_sched_timer", housekeeping=True)
                      for c in range(n)]
        # Per CPU: run_timer_softirq() is expiring timers there and will
        # program the tick once it is done, so a timer armed meanwhile on that
        # CPU need not (a callback re-arming itself is the common case).
        self.expiring = [False] * n
        self._warned_leak = False
        self._warned_add = False
        # Other users of the periodic tick (e.g. the workqueue CPU-hog check):
        # fn(ctx) runs in hard-IRQ context at every tick of a CPU while
        # tick_due(cpu) asks for one (the jiffy by which it needs a tick, or None).
        self.tick_hooks: list[Callable[[ExecCtx], None]] = []
        self.tick_due: list[Callable[[int], int | None]] = []
        kernel.softirq.open_softirq(TIMER_SOFTIRQ, self.run_timer_softirq)

    # ------------------------------------------------------------------
    # jiffies
    def jiffies(self) -> int:
        return INITIAL_JIFFIES + self.kernel.engine.now_ns() // TICK_NSEC

    @staticmethod
    def msecs_to_jiffies(m: int) -> int:
        return msecs_to_jiffies(m)

    def jiffy_ns(self, j: int) -> int:
        """Nanoseconds since boot at which jiffies becomes ``j``."""
        return (j - INITIAL_JIFFIES) * TICK_NSEC

    def timeout_ns(self, ctx: ExecCtx, timeout: int) -> int:
        """How long from now a timer armed here for ``jiffies + timeout`` takes to run."""
        base = self.bases[ctx.cpu][BASE_GLOBAL]
        now_j = self.jiffies()
        clk = base.clk
        if now_j > clk:
            nxt = base.next_expiry()
            clk = now_j if nxt > now_j else nxt
        _, _, bucket = calc_wheel_index(now_j + timeout, clk)
        return max(0, self.jiffy_ns(max(bucket, now_j + 1)) - self.kernel.engine.now_ns())

    # ------------------------------------------------------------------
    # queueing (__mod_timer and friends)
    def _base_for(self, cpu: int, flags: int) -> TimerBase:
        if flags & TIMER_DEFERRABLE:
            return self.bases[cpu][BASE_DEF]
        return self.bases[cpu][BASE_LOCAL if flags & TIMER_PINNED else BASE_GLOBAL]

    def _forward(self, base: TimerBase) -> None:
        """forward_timer_base(): an idle base catches up with jiffies."""
        jnow = self.jiffies()
        if jnow <= base.clk:
            return
        nxt = base.next_expiry()
        if nxt > jnow:
            base.clk = jnow
        elif nxt >= base.clk:
            base.clk = nxt

    def _enqueue(self, base: TimerBase, t: timer_list, lvl: int, idx: int, bucket: int) -> None:
        """enqueue_timer(): at the head of its bucket."""
        lst = base.vectors.get(idx)
        if lst is None:
            lst = base.vectors[idx] = []
            base.bucket_expiry[idx] = bucket
        lst.insert(0, t)
        t.entry = lst
        t.base = base
        t.idx = idx
        t.level = lvl
        if not t.housekeeping:
            base.user_pending += 1

    def _lock_timer_base(self, ctx: ExecCtx, t: timer_list) -> TimerBase:
        while True:
            base = t.base or self._base_for(ctx.cpu, t.flags)
            base.lock.acquire(ctx)
            if (t.base or base) is base:
                return base
            base.lock.release(ctx)

    def _usable(self, ctx: ExecCtx, t: timer_list, what: str) -> bool:
        if t.function is not None:
            return True
        if not t.shutdown:
            # Linux silently ignores a timer without a function; say why here.
            self.kernel.warn(ctx, f"bottomhalf: {what}() on a timer_list that was never set "
                                  "up (timer_setup): ignored")
        return False

    def mod_timer(self, ctx: ExecCtx, t: timer_list, expires: int, cpu: int | None = None,
                  only_if_pending: bool = False) -> int:
        """__mod_timer(): (re)arm ``t`` for ``expires``; 1 if it was pending.

        ``cpu`` given: detach, then add_timer_on(t, cpu) (pinned to that CPU).
        """
        if cpu is not None:
            ret = self.del_timer(ctx, t)
            t.expires = expires
            self.add_timer_on(ctx, t, cpu)
            return ret
        if not self._usable(ctx, t, "mod_timer"):
            return 0
        idx = -1
        clk = bucket = lvl = 0
        if t.entry is not None:
            if t.expires == expires:
                return 1
            base = self._lock_timer_base(ctx, t)
            self._forward(base)
            clk = base.clk
            lvl, idx, bucket = calc_wheel_index(expires, clk)
            if t.entry is not None and idx == t.idx:
                t.expires = expires  # same bucket: keeps its place
                base.lock.release(ctx)
                return 1
        else:
            base = self._lock_timer_base(ctx, t)
            self._forward(base)
        ret = detach_if_pending(base, t)
        if not ret and only_if_pending:
            base.lock.release(ctx)
            return 0
        new_base = self._base_for(ctx.cpu, t.flags)
        if base is not new_base and base.running_timer is not t:
            # A running timer stays where it runs, so timer_delete_sync() sees it.
            base.lock.release(ctx)
            base = new_base
            base.lock.acquire(ctx)
            self._forward(base)
        t.expires = expires
        if idx < 0 or clk != base.clk:
            lvl, idx, bucket = calc_wheel_index(expires, base.clk)
        self._enqueue(base, t, lvl, idx, bucket)
        base.lock.release(ctx)
        if not self.expiring[base.cpu]:
            self.program_tick(ctx, base.cpu)
        return ret

    def add_timer(self, ctx: ExecCtx, t: timer_list) -> None:
        """add_timer(): arm an inactive timer (WARN_ON_ONCE and ignore if pending)."""
        if t.entry is not None:
            self._warn_once_pending(ctx, "add_timer")
            return
        self.mod_timer(ctx, t, t.expires)

    def add_timer_on(self, ctx: ExecCtx, t: timer_list, cpu: int) -> None:
        """add_timer_on(): arm an inactive timer on ``cpu``, setting TIMER_PINNED."""
        if t.entry is not None:
            self._warn_once_pending(ctx, "add_timer_on")
            return
        t.flags |= TIMER_PINNED
        if not self._usable(ctx, t, "add_timer_on"):
            return
        new_base = self._base_for(cpu, t.flags)
        base = self._lock_timer_base(ctx, t)
        if base is not new_base:
            base.lock.release(ctx)
            base = new_base
            base.lock.acquire(ctx)
        self._forward(base)
        lvl, idx, bucket = calc_wheel_index(t.expires, base.clk)
        self._enqueue(base, t, lvl, idx, bucket)
        base.lock.release(ctx)
        if not self.expiring[base.cpu]:
            self.program_tick(ctx, base.cpu)

    def _warn_once_pending(self, ctx: ExecCtx, where: str) -> None:
        if not self._warned_add:
            self._warned_add = True
            self.kernel.warn(ctx, None, where=where)

    def detach(self, ctx: ExecCtx, t: timer_list) -> bool:
        return bool(self.del_timer(ctx, t))

    def del_timer(self, ctx: ExecCtx, t: timer_list) -> int:
        """timer_delete(): 1 if the timer was pending (it does not wait)."""
        if t.entry is None:
            return 0
        base = self._lock_timer_base(ctx, t)
        ret = detach_if_pending(base, t)
        base.lock.release(ctx)
        return ret

    def del_timer_sync(self, ctx: ExecCtx, t: timer_list, internal: bool = False,
                       shutdown: bool = False) -> int:
        """timer_delete_sync(): deactivate, then spin until a callback running on
        another CPU has returned.  ``shutdown``: timer_shutdown_sync()."""
        k = self.kernel
        if ctx.in_hardirq() and not t.flags & TIMER_IRQSAFE and not internal:
            k.warn(ctx, None, where="__timer_delete_sync")
        while True:
            base = self._lock_timer_base(ctx, t)
            if base.running_timer is not t:
                ret = detach_if_pending(base, t)
                if shutdown:
                    t.function = None
                    t.shutdown = True
                base.lock.release(ctx)
                return ret
            if base.cpu == ctx.cpu and ctx.in_serving_softirq():
                # Called from the callback itself (or an interrupt on top of
                # it): Linux spins here forever.  Say so and go on.
                base.lock.release(ctx)
                k.warn(ctx, f"bottomhalf: timer_delete_sync({k.symbols.symbol(t.function)}) "
                            f"called from that timer's callback on CPU{ctx.cpu}: Linux would "
                            "spin forever; returning without waiting")
                return 0
            if ctx.task not in base.spinners:
                base.spinners.append(ctx.task)
            base.lock.release(ctx)
            k.engine.spin_park(ctx, f"timer_delete_sync({k.symbols.symbol(t.function)}) "
                                    f"until its callback returns on CPU{base.cpu}")

    def pending(self, t: timer_list) -> bool:
        return t.entry is not None

    # ------------------------------------------------------------------
    # expiry
    def run_timer_softirq(self, ctx: ExecCtx) -> bool:
        """run_timer_softirq(): the pinned timers, then the global, then the deferrable."""
        cpu = ctx.cpu
        self.expiring[cpu] = True  # timers re-armed meanwhile wait for the program_tick below
        try:
            for base in self.bases[cpu]:
                self._run_timers(ctx, base)
        finally:
            self.expiring[cpu] = False
        self.program_tick(ctx, cpu)
        return True

    def _run_timers(self, ctx: ExecCtx, base: TimerBase) -> None:
        """__run_timers(): one bucket jiffy at a time, while jiffies has reached it."""
        if self.jiffies() < base.next_expiry():
            return
        base.lock.acquire(ctx)
        while True:
            jnow = self.jiffies()
            nxt = base.next_expiry()
            if jnow < base.clk or jnow < nxt:
                break
            heads = self._collect_expired_timers(base, nxt)
            base.clk += 1
            for head in reversed(heads):  # the highest level first
                self._expire_timers(ctx, base, head)
        base.lock.release(ctx)

    @staticmethod
    def _collect_expired_timers(base: TimerBase, nxt: int) -> list[list[timer_list]]:
        """The buckets due at jiffy ``nxt``, level 0 upwards."""
        clk = base.clk = nxt
        heads: list[list[timer_list]] = []
        for lvl in range(LVL_DEPTH):
            idx = (clk & LVL_MASK) + LVL_OFFS(lvl)
            lst = base.vectors.pop(idx, None)
            if lst is not None:
                del base.bucket_expiry[idx]
                heads.append(lst)
            if clk & LVL_CLK_MASK:
                break
            clk >>= LVL_CLK_SHIFT
        return heads

    def _expire_timers(self, ctx: ExecCtx, base: TimerBase, head: list[timer_list]) -> None:
        """expire_timers(): base.lock held; dropped around each callback."""
        k = self.kernel
        engine = k.engine
        while head:
            t = head[0]
            base.running_timer = t
            detach_if_pending(base, t)
            fn = t.function
            base.lock.release(ctx)
            if fn is None:
                k.warn(ctx, None, where="expire_timers")
            else:
                irqsafe = bool(t.flags & TIMER_IRQSAFE) and not ctx.irqs_off
                if irqsafe:
                    engine.local_irq_disable(ctx)
                self._call_timer_fn(ctx, t, fn)
                if irqsafe and ctx.irqs_off:
                    engine.local_irq_enable(ctx)
            base.lock.acquire(ctx)
            base.running_timer = None
            if base.spinners:
                spinners, base.spinners = base.spinners, []
                for task in spinners:
                    engine.unpark(task)

    def _call_timer_fn(self, ctx: ExecCtx, t: timer_list, fn: Callable[..., Any]) -> None:
        k = self.kernel
        count = ctx.preempt_count
        k.call_handler(ctx, fn, (t,), "timer")
        if ctx.preempt_count != count:
            if not self._warned_leak:
                self._warned_leak = True
                k.warn(ctx, f"timer: {k.symbols.symbol(fn, True)} preempt leak: "
                            f"{count:08x} -> {ctx.preempt_count:08x}")
            ctx.preempt_count = count

    # ------------------------------------------------------------------
    # the tick
    def ensure_tick(self, ctx: ExecCtx, cpu: int, jiffy: int) -> None:
        """Make sure the tick of ``cpu`` comes at ``jiffy`` at the latest."""
        tick = self.ticks[cpu]
        if tick.active and tick.expires <= self.jiffy_ns(jiffy):
            return
        self.program_tick(ctx, cpu)

    def program_tick(self, ctx: ExecCtx, cpu: int) -> None:
        """Program the tick of ``cpu`` for the next jiffy where a timer is due."""
        due = [b.next_expiry() for b in self.bases[cpu] if b.bucket_expiry]
        now_j = self.jiffies()
        for hook in self.tick_due:
            j = hook(cpu)
            if j is not None:
                due.append(j)
        tick = self.ticks[cpu]
        if not due:
            self.hr.cancel(ctx, tick)
            return
        when = self.jiffy_ns(max(min(due), now_j + 1))
        if tick.active and tick.expires == when:
            return
        self.hr.start_range_ns(ctx, tick, when, when)

    def _tick_sched_timer(self, ctx: ExecCtx, _t: hrtimer) -> None:
        """tick_sched_timer -> update_process_times -> run_local_timers."""
        cpu = ctx.cpu
        for hook in self.tick_hooks:
            hook(ctx)
        jnow = self.jiffies()
        if any(jnow >= b.next_expiry() for b in self.bases[cpu]):
            self.kernel.softirq.raise_softirq_irqoff(ctx, TIMER_SOFTIRQ)

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
        return sum(b.user_pending for bases in self.bases for b in bases) + self.hr.pending()

    def all_pending(self) -> list[timer_list]:
        out: list[timer_list] = []
        for bases in self.bases:
            for b in bases:
                for lst in b.vectors.values():
                    out.extend(lst)
        return out

    def remove_owned(self, ctx: ExecCtx, owns: Callable[[Any], bool]) -> list[timer_list]:
        removed = [t for t in self.all_pending() if owns(t.function)]
        for t in removed:
            self.del_timer(ctx, t)
        return removed
