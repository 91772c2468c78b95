"""Forward progress: worker creation under memory pressure, mayday and rescuers.

Mirrors maybe_create_worker(), pool_mayday_timeout(), send_mayday() and
rescuer_thread() of kernel/workqueue.c (reference §5.10).  When a pool needs
a worker and cannot create one, its manager retries every CREATE_COOLDOWN
(1 s); after MAYDAY_INITIAL_TIMEOUT (10 ms, at least 2 jiffies) and then every
MAYDAY_INTERVAL (100 ms) a timer asks the rescuer of every WQ_MEM_RECLAIM
queue with items waiting in the pool for help.  The rescuer
(``kworker/R-<name>``) executes that queue's items in the starving pool.

Worker creation fails only when the kernel is told to (the memory-pressure
knob ``/sys/kernel/debug/bottomhalf/fail_worker_creation``, or
``Kernel.wq.fail_worker_creation``); Linux fails it when kthread creation
cannot allocate memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import ExecCtx
from .task import TASK_INTERRUPTIBLE, TASK_RUNNING
from .timer import HZ, timer_list
from .wqpool import Worker, WorkerPool

if TYPE_CHECKING:
    from .workqueue import Workqueues, pool_workqueue, workqueue_struct

MAYDAY_INITIAL_TIMEOUT = max(HZ // 100, 2)
MAYDAY_INTERVAL = HZ // 10
CREATE_COOLDOWN = HZ

PWQ_STAT_MAYDAY = 6
PWQ_STAT_RESCUED = 7


def maybe_create_worker(pool: WorkerPool, ctx: ExecCtx) -> None:
    """The manager's loop: create a worker, or keep asking for help."""
    k = pool.kernel
    timers = k.timers
    mayday = _mayday_timer(pool)
    timers.mod_timer(ctx, mayday, timers.jiffies() + MAYDAY_INITIAL_TIMEOUT)
    try:
        while True:
            if pool.create_worker(ctx) is not None or not need_to_create_worker(pool):
                break
            k.sched.schedule_timeout(ctx, CREATE_COOLDOWN, TASK_INTERRUPTIBLE,
                                     why="maybe_create_worker: worker creation failed, cooling down")
            if not need_to_create_worker(pool):
                break
    finally:
        timers.del_timer_sync(ctx, mayday, internal=True)


def need_to_create_worker(pool: WorkerPool) -> bool:
    return pool.need_more_worker() and not pool.may_start_working()


def _mayday_timer(pool: WorkerPool) -> timer_list:
    t = getattr(pool, "mayday_timer", None)
    if t is None:
        t = timer_list()
        t.housekeeping = True
        t.function = lambda _t: pool_mayday_timeout(pool)
        pool.mayday_timer = t  # type: ignore[attr-defined]
    return t


def pool_mayday_timeout(pool: WorkerPool) -> None:
    k = pool.kernel
    ctx = k.current_ctx()
    pool.lock.acquire(ctx)
    if need_to_create_worker(pool):
        for work in list(pool.worklist):
            if work.pwq is not None:
                send_mayday(pool.wqs, ctx, work.pwq)
    pool.lock.release(ctx)
    k.timers.mod_timer(ctx, _mayday_timer(pool), k.timers.jiffies() + MAYDAY_INTERVAL)


def send_mayday(wqs: Workqueues, ctx: ExecCtx, pwq: pool_workqueue) -> None:
    wq = pwq.wq
    if wq.rescuer is None:
        return
    if pwq not in wq.maydays:
        wq.maydays.append(pwq)
        pwq.stats[PWQ_STAT_MAYDAY] += 1
        wqs.kernel.sched.wake_up_process(wq.rescuer)


def rescuer_thread(wqs: Workqueues, wq: workqueue_struct) -> None:
    k = wqs.kernel
    task = k.current_task()
    ctx = task.ctx
    rescuer = Worker(wqs.pools[0], 0)
    rescuer.task = task
    rescuer.flags = 0
    while True:
        task.state = TASK_INTERRUPTIBLE
        should_stop = task.should_stop
        while wq.maydays:
            task.state = TASK_RUNNING
            pwq = wq.maydays.pop(0)
            pool = pwq.pool
            rescuer.pool = pool
            pool.lock.acquire(ctx)
            for work in list(pool.worklist):
                if work.pwq is pwq and work in pool.worklist:
                    if wqs.assign_work(ctx, pool, work, rescuer):
                        pwq.stats[PWQ_STAT_RESCUED] += 1
            if rescuer.scheduled:
                wqs.process_scheduled_works(ctx, pool, rescuer)
                if pwq.nr_active and need_to_create_worker(pool) and pwq not in wq.maydays:
                    wq.maydays.append(pwq)
            pool.kick_pool(ctx)
            pool.lock.release(ctx)
        if should_stop:
            task.state = TASK_RUNNING
            return
        task.wait_desc = "rescuer_thread: idle"
        k.sched.schedule(ctx)
