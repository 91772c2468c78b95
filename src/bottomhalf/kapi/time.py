"""jiffies, ktime, sleeps and busy-waits (include/linux/jiffies.h, delay.h, timekeeping.h)."""

from __future__ import annotations

from ..context import _local
from ..context import current_ctx as _ctx


def jiffies() -> int:
    """The current tick count (a function: Python has no volatile globals)."""
    return _ctx().kernel.timers.jiffies()


def get_jiffies_64() -> int:
    return jiffies()


def time_after(a: int, b: int) -> bool:
    return _signed64(b - a) < 0


def time_before(a: int, b: int) -> bool:
    return time_after(b, a)


def time_after_eq(a: int, b: int) -> bool:
    return _signed64(a - b) >= 0


def time_before_eq(a: int, b: int) -> bool:
    return time_after_eq(b, a)


def _signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def ktime_get_ns() -> int:
    return _ctx().kernel.now_ns


ktime_get = ktime_get_ns
ktime_get_boottime_ns = ktime_get_ns


def msleep(msecs: int) -> None:
    """Sleep at least ``msecs`` ms: msecs_to_jiffies(msecs) + 1 ticks on the timer wheel."""
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "msleep")
    k.sched.msleep(ctx, int(msecs))


def msleep_interruptible(msecs: int) -> int:
    msleep(msecs)
    return 0


def ssleep(seconds: int) -> None:
    msleep(int(seconds) * 1000)


def usleep_range(min_us: int, max_us: int) -> None:
    """Sleep on an hrtimer; with nothing else to wake it, it fires at ``max_us``."""
    if max_us < min_us:
        raise ValueError(f"usleep_range({min_us}, {max_us}): max is below min")
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "usleep_range")
    k.sched.hrtimer_sleep(ctx, int(max_us) * 1000, f"usleep_range({min_us}, {max_us})",
                          min_ns=int(min_us) * 1000)


def fsleep(usecs: int) -> None:
    usleep_range(usecs, usecs)


def ndelay(nsecs: int) -> None:
    """Busy-wait: occupy the CPU for ``nsecs`` (in sim, virtual time)."""
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(nsecs))


def udelay(usecs: int) -> None:
    ctx = _local.ctx
    if ctx is None or ctx.detached:
        ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(usecs) * 1000)


def mdelay(msecs: int) -> None:
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(msecs) * 1_000_000)
