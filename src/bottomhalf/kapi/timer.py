"""timer_list (include/linux/timer.h)."""

from __future__ import annotations

from collections.abc import Callable

from ..context import current_ctx as _ctx
from ..timer import (
    timer_list,
)
from ._base import (
    _need,
    _need_fn,
)


def timer_setup(timer: timer_list, callback: Callable[[timer_list], None], flags: int) -> None:
    _need(timer, timer_list, "timer_setup", "timer")
    _need_fn(callback, "timer_setup", "callback")
    ctx = _ctx()
    ctx.kernel.timers.detach(ctx, timer)
    timer.function = callback
    timer.flags = flags
    timer.shutdown = False


def DEFINE_TIMER(callback: Callable[[timer_list], None]) -> timer_list:  # noqa: N802
    t = timer_list()
    t.function = callback
    return t


def add_timer(timer: timer_list) -> None:
    """Arm an inactive timer for ``timer.expires`` (WARN_ON_ONCE if it is pending)."""
    _need(timer, timer_list, "add_timer", "timer")
    ctx = _ctx()
    ctx.kernel.timers.add_timer(ctx, timer)


def add_timer_on(timer: timer_list, cpu: int) -> None:
    _need(timer, timer_list, "add_timer_on", "timer")
    ctx = _ctx()
    if not isinstance(cpu, int) or not 0 <= cpu < ctx.kernel.ncpus:
        raise ValueError(f"add_timer_on(): CPU {cpu!r} does not exist")
    ctx.kernel.timers.add_timer_on(ctx, timer, cpu)


def mod_timer(timer: timer_list, expires: int) -> int:
    """Arm or re-arm; returns 1 if the timer was pending."""
    _need(timer, timer_list, "mod_timer", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.mod_timer(ctx, timer, int(expires))


def mod_timer_pending(timer: timer_list, expires: int) -> int:
    ctx = _ctx()
    return ctx.kernel.timers.mod_timer(ctx, timer, int(expires), only_if_pending=True)


def del_timer(timer: timer_list) -> int:
    _need(timer, timer_list, "del_timer", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer(ctx, timer)


timer_delete = del_timer


def del_timer_sync(timer: timer_list) -> int:
    """Deactivate and wait for a running callback (do not call it from the callback)."""
    _need(timer, timer_list, "del_timer_sync", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer_sync(ctx, timer)


timer_delete_sync = del_timer_sync


def timer_shutdown_sync(timer: timer_list) -> int:
    """del_timer_sync(), and any later arming of the timer is silently ignored."""
    _need(timer, timer_list, "timer_shutdown_sync", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer_sync(ctx, timer, shutdown=True)


def timer_pending(timer: timer_list) -> bool:
    _need(timer, timer_list, "timer_pending", "timer")
    return timer.entry is not None
