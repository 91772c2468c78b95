"""Tasklets (include/linux/interrupt.h)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import ExecCtx, _local
from ..context import current_ctx as _ctx
from ..tasklet import tasklet_struct
from ._base import (
    _need,
    _need_fn,
)


def tasklet_init(t: tasklet_struct, func: Callable[[Any], None], data: Any) -> None:
    """Legacy initialiser: ``func(data)`` will run in softirq context."""
    _need(t, tasklet_struct, "tasklet_init", "t")
    _need_fn(func, "tasklet_init", "func")
    t.state = 0
    t.count = 0
    t.use_callback = False
    t.func = func
    t.callback = None
    t.data = data


def tasklet_setup(t: tasklet_struct, callback: Callable[[tasklet_struct], None]) -> None:
    """Since 5.9: ``callback(t)`` will run in softirq context."""
    _need(t, tasklet_struct, "tasklet_setup", "t")
    _need_fn(callback, "tasklet_setup", "callback")
    t.state = 0
    t.count = 0
    t.use_callback = True
    t.callback = callback
    t.func = None
    t.data = 0


def DECLARE_TASKLET(callback: Callable[[tasklet_struct], None], *old: Any) -> tasklet_struct:  # noqa: N802
    if old:
        raise TypeError("DECLARE_TASKLET(callback) takes a callback(t) since Linux 5.9; "
                        "for the old func(data) form use DECLARE_TASKLET_OLD(func)")
    t = tasklet_struct()
    tasklet_setup(t, callback)
    return t


def DECLARE_TASKLET_DISABLED(callback: Callable[[tasklet_struct], None]) -> tasklet_struct:  # noqa: N802
    t = DECLARE_TASKLET(callback)
    t.count = 1
    return t


def DECLARE_TASKLET_OLD(func: Callable[[Any], None]) -> tasklet_struct:  # noqa: N802
    t = tasklet_struct()
    tasklet_init(t, func, 0)
    return t


def DECLARE_TASKLET_DISABLED_OLD(func: Callable[[Any], None]) -> tasklet_struct:  # noqa: N802
    t = DECLARE_TASKLET_OLD(func)
    t.count = 1
    return t


def _tasklet_ready(t: Any, fn: str) -> ExecCtx:
    _need(t, tasklet_struct, fn, "t")
    if t.handler is None:
        raise ValueError(f"{fn}(): the tasklet was never initialised (tasklet_setup)")
    return _ctx()


def tasklet_schedule(t: tasklet_struct) -> None:
    if type(t) is tasklet_struct and (t.func is not None or t.callback is not None):
        ctx = _local.ctx  # the fast path of the checks below
        if ctx is None or ctx.detached:
            ctx = _ctx()
    else:
        ctx = _tasklet_ready(t, "tasklet_schedule")
    ctx.kernel.tasklets.schedule(ctx, t)


def tasklet_hi_schedule(t: tasklet_struct) -> None:
    ctx = _tasklet_ready(t, "tasklet_hi_schedule")
    ctx.kernel.tasklets.schedule(ctx, t, hi=True)


def tasklet_kill(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_kill", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.kill(ctx, t)


def tasklet_disable_nosync(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable_nosync", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable_nosync(ctx, t)


def tasklet_disable(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable(ctx, t)


def tasklet_disable_in_atomic(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable_in_atomic", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable_in_atomic(ctx, t)


def tasklet_enable(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_enable", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.enable(ctx, t)


def tasklet_unlock_wait(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_unlock_wait", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.unlock_wait(ctx, t)
