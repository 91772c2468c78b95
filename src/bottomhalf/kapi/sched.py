"""Kernel threads, schedule() and sleeping (include/linux/kthread.h, sched.h)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import current_ctx as _ctx
from ..task import TASK_INTERRUPTIBLE, TASK_NEW, TASK_RUNNING, TASK_UNINTERRUPTIBLE, Task
from ._base import (
    _need,
    _need_fn,
)


def kthread_create(threadfn: Callable[[Any], int], data: Any, namefmt: str, *args: Any) -> Task:
    """Create a stopped kernel thread; start it with wake_up_process()."""
    _need_fn(threadfn, "kthread_create", "threadfn")
    ctx = _ctx()
    from ..printk import vsprintf

    name = vsprintf(namefmt, args) if args else namefmt
    k = ctx.kernel

    def kthread_fn() -> Any:
        return threadfn(data)

    kthread_fn.__wrapped__ = threadfn  # type: ignore[attr-defined]  # whose code it runs
    task = k.sched.new_task(kthread_fn, name, None)
    task.cpu = ctx.cpu
    task.ctx.cpu = ctx.cpu
    return task


def kthread_run(threadfn: Callable[[Any], int], data: Any, namefmt: str, *args: Any) -> Task:
    task = kthread_create(threadfn, data, namefmt, *args)
    _ctx().kernel.engine.start_task(task)
    return task


def kthread_should_stop() -> bool:
    return _ctx().task.should_stop


def kthread_stop(task: Task) -> Any:
    _need(task, Task, "kthread_stop", "task")
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "kthread_stop")
    if task.state == TASK_NEW:  # never woken: start it so it can see should_stop
        task.should_stop = True
        ctx.kernel.engine.start_task(task)
    return ctx.kernel.kthread_stop(ctx, task)


def wake_up_process(task: Task) -> int:
    _need(task, Task, "wake_up_process", "task")
    ctx = _ctx()
    if task.state == TASK_NEW:  # created by kthread_create(), never started
        ctx.kernel.engine.start_task(task)
        return 1
    return 1 if ctx.kernel.sched.wake_up_process(task) else 0


def set_current_state(state: int) -> None:
    _ctx().task.state = state


__set_current_state = set_current_state


def schedule() -> None:
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "schedule")
    ctx.kernel.sched.schedule(ctx)
    ctx.task.state = TASK_RUNNING


def schedule_timeout(timeout: int) -> int:
    """Sleep ``timeout`` jiffies in the state set by set_current_state()."""
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "schedule_timeout")
    state = ctx.task.state
    if state == TASK_RUNNING:
        return timeout
    return k.sched.schedule_timeout(ctx, timeout, state)


def schedule_timeout_interruptible(timeout: int) -> int:
    set_current_state(TASK_INTERRUPTIBLE)
    return schedule_timeout(timeout)


def schedule_timeout_uninterruptible(timeout: int) -> int:
    set_current_state(TASK_UNINTERRUPTIBLE)
    return schedule_timeout(timeout)


def cond_resched() -> int:
    ctx = _ctx()
    ctx.kernel.engine.yield_cpu(ctx)
    return 0
