"""Forward progress: worker creation, mayday and rescuers, idle culling.

Mirrors manage_workers(), maybe_create_worker(), pool_mayday_timeout(),
send_mayday(), rescuer_thread(), idle_worker_timeout() and idle_cull_fn()
of kernel/workqueue.c (6.12; reference §5.8 rules 6-7, §5.10).

* When a pool needs a worker and has no idle one, the worker that noticed
  becomes the manager and creates one.  If creation fails it retries every
  CREATE_COOLDOWN (1 s).  MAYDAY_INITIAL_TIMEOUT (10 ms, at least 2 jiffies)
  after it started, and then every MAYDAY_INTERVAL (100 ms), the mayday timer
  asks the rescuer of every WQ_MEM_RECLAIM queue with items waiting in the
  pool for help (stat ``mayday``).  The rescuer (``kworker/R-<name>``)
  attaches to the starving pool and executes that queue's items there (stat
  ``rescued``).
* Worker creation fails only when the kernel is told to: the memory-pressure
  knob ``/sys/kernel/debug/bottomhalf/fail_worker_creation`` (or
  ``Kernel.wq.fail_worker_creation``).  Linux fails it when kthread creation
  cannot allocate memory.  The knob is bottomhalf's own; Linux has no such file.
* A pool with too many idle workers (more than 2, and a quarter of the busy
  ones) arms its idle timer; workers idle for IDLE_WORKER_TIMEOUT (300 s)
  are culled, the one idle the longest first.  Linux culls from a work item
  (``idle_cull_fn``) queued by the timer; here the timer culls directly.

Locking legend: L: ``pool.lock``.  M: ``Workqueues.mayday_lock`` (Linux's
``wq_mayday_lock``, one raw lock for all queues) - every ``wq.maydays`` list
and a rescuer's leaving (``wq.rescuer`` set to None).  send_mayday() is
called with L and M held, as Linux nests them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import ExecCtx
from .task import PF_KTHREAD, PF_WQ_WORKER, TASK_INTERRUPTIBLE, TASK_RUNNING
from .timer import HZ, TICK_NSEC
from .wqdefs import PWQ_STAT_MAYDAY, PWQ_STAT_RESCUED
from .wqpool import POOL_MANAGER_ACTIVE, WORKER_PREP, Worker, WorkerPool

if TYPE_CHECKING:
    from .engines.base import RawLock
    from .kernel import Kernel
    from .workqueue import pool_workqueue, workqueue_struct

MAYDAY_INITIAL_TIMEOUT = max(HZ // 100, 2)
MAYDAY_INTERVAL = HZ // 10
CREATE_COOLDOWN = HZ
IDLE_WORKER_TIMEOUT = 300 * HZ


class Forward:
    """The forward-progress half of Workqueues (a mixin)."""

    kernel: Kernel
    mayday_lock: RawLock

    # ------------------------------------------------------------------
    # the manager
    def manage_workers(self, ctx: ExecCtx, pool: WorkerPool, worker: Worker) -> None:
        """Called with pool.lock held; drops it while creating a worker."""
        pool.flags |= POOL_MANAGER_ACTIVE
        pool.manager = worker
        try:
            while True:
                pool.lock.release(ctx)
                self.maybe_create_worker(ctx, pool)
                pool.lock.acquire(ctx)
                if not pool.need_to_create_worker():
                    break
        finally:
            pool.manager = None
            pool.flags &= ~POOL_MANAGER_ACTIVE

    def maybe_create_worker(self, ctx: ExecCtx, pool: WorkerPool) -> None:
        k = self.kernel
        timers = k.timers
        mayday = pool.mayday_timer
        timers.mod_timer(ctx, mayday, timers.jiffies() + MAYDAY_INITIAL_TIMEOUT)
        try:
            while True:
                if pool.create_worker(ctx) is not None or not pool.need_to_create_worker():
                    break
                k.sched.schedule_timeout(ctx, CREATE_COOLDOWN, TASK_INTERRUPTIBLE,
                                         why="maybe_create_worker: cooling down after a "
                                             "failed worker creation")
                if not pool.need_to_create_worker():
                    break
        finally:
            timers.del_timer_sync(ctx, mayday, internal=True)

    def pool_mayday_timeout(self, pool: WorkerPool) -> None:
        """The pool's mayday_timer (pool.lock is taken here)."""
        k = self.kernel
        ctx = k.current_ctx()
        pool.lock.acquire(ctx)
        self.mayday_lock.acquire(ctx)
        if pool.need_to_create_worker():
            # We might be hitting an allocation deadlock: call the rescuers.
            for work in list(pool.worklist):
                if work.pwq is not None:
                    self.send_mayday(ctx, work.pwq)
        self.mayday_lock.release(ctx)
        pool.lock.release(ctx)
        k.timers.mod_timer(ctx, pool.mayday_timer, k.timers.jiffies() + MAYDAY_INTERVAL)

    def send_mayday(self, ctx: ExecCtx, pwq: pool_workqueue) -> None:
        """Put ``pwq`` on its queue's maydays and wake the rescuer (L and M held)."""
        wq = pwq.wq
        if wq.rescuer is None:
            return
        if pwq not in wq.maydays:
            wq.maydays.append(pwq)
            pwq.stats[PWQ_STAT_MAYDAY] += 1
            assert wq.rescuer.task is not None
            self.kernel.sched.wake_up_process(wq.rescuer.task)

    # ------------------------------------------------------------------
    # rescuers
    def init_rescuer(self, ctx: ExecCtx | None, wq: workqueue_struct) -> None:
        """Each WQ_MEM_RECLAIM queue gets a rescuer thread, kworker/R-<name>."""
        rescuer = Worker(wq.pwqs[0].pool, 0)
        rescuer.rescue_wq = wq
        rescuer.flags = WORKER_PREP  # never cleared: a rescuer is not concurrency managed
        task = self.kernel.sched.new_task(lambda: self.rescuer_thread(rescuer, wq),
                                          rescuer.name(), flags=PF_WQ_WORKER | PF_KTHREAD)
        task.worker = rescuer
        rescuer.task = task
        wq.rescuer = rescuer
        self.kernel.engine.start_task(task)

    def rescuer_thread(self, rescuer: Worker, wq: workqueue_struct) -> None:
        k = self.kernel
        task = rescuer.task
        assert task is not None
        ctx = task.ctx
        wqs = wq.wqs
        mayday_lock = self.mayday_lock
        while True:
            task.state = TASK_INTERRUPTIBLE
            should_stop = task.should_stop
            while True:
                mayday_lock.acquire(ctx)
                if not wq.maydays:
                    mayday_lock.release(ctx)
                    break
                pwq = wq.maydays.pop(0)
                mayday_lock.release(ctx)
                task.state = TASK_RUNNING
                pool = pwq.pool
                rescuer.pool = pool  # worker_attach_to_pool()
                pool.lock.acquire(ctx)
                for work in list(pool.worklist):
                    if work.pwq is pwq and work in pool.worklist:
                        if wqs.assign_work(ctx, pool, work, rescuer):
                            pwq.stats[PWQ_STAT_RESCUED] += 1
                if rescuer.scheduled:
                    wqs.process_scheduled_works(ctx, pool, rescuer)
                    # More may have become ready (activation, chained queueing):
                    # come back without waiting for the next mayday.
                    if pwq.nr_active and pool.need_to_create_worker():
                        mayday_lock.acquire(ctx)
                        if wq.rescuer is not None and pwq not in wq.maydays:
                            wq.maydays.append(pwq)
                        mayday_lock.release(ctx)
                # Leave the pool; make sure its own workers carry on.
                pool.kick_pool(ctx)
                pool.lock.release(ctx)
            if should_stop:
                task.state = TASK_RUNNING
                return
            task.wait_desc = "rescuer_thread: idle"
            k.sched.schedule(ctx)

    # ------------------------------------------------------------------
    # idle culling
    def arm_idle_timer(self, ctx: ExecCtx | None, pool: WorkerPool) -> None:
        t = pool.idle_timer
        if t.entry is None:  # not pending
            k = self.kernel
            c = ctx if ctx is not None else k.current_ctx()
            k.timers.mod_timer(c, t, k.timers.jiffies() + IDLE_WORKER_TIMEOUT)

    def idle_worker_timeout(self, pool: WorkerPool) -> None:
        k = self.kernel
        ctx = k.current_ctx()
        pool.lock.acquire(ctx)
        now = k.now_ns
        while pool.too_many_workers() and pool.idle_list:
            w = pool.idle_list[-1]  # idle the longest
            expires = w.last_active_ns + IDLE_WORKER_TIMEOUT * TICK_NSEC
            if now < expires:
                left = -(-(expires - now) // TICK_NSEC)  # round up
                k.timers.mod_timer(ctx, pool.idle_timer, k.timers.jiffies() + left)
                break
            pool.destroy_worker(ctx, w)
        pool.lock.release(ctx)
