"""Worker pools, workers and concurrency management (the engine room of cmwq).

Mirrors the pool half of kernel/workqueue.c (reference §5.8, §5.9, §5.13):

* Every CPU has two BH pools (run from HI/TASKLET softirq, one pseudo worker
  each) and two standard pools (normal, and highpri with nice -20); unbound
  pools are shared by workqueues with equal attributes.
* A per-CPU pool is *concurrency managed*: a worker running a work item
  counts in ``nr_running``; a new item is started only when ``nr_running``
  is 0 (``need_more_worker``); when a counted worker blocks, the scheduler
  hook ``worker_sleeping`` drops the count and wakes an idle worker at that
  instant; ``worker_running`` counts it again when it wakes; a worker keeps
  going with the next item only while ``nr_running <= 1`` (``keep_working``).
* Unbound workers never count, so every item gets a worker at once.
* Idle workers sit on a LIFO list; the most recently idled is woken first.
  A woken worker that finds no other idle one becomes the manager and
  creates one, so the pool always keeps a spare.

Guards: ``pool.lock`` (a raw lock) protects the worklist, the idle list,
``nr_running``, ``busy`` and each worker's ``scheduled`` list and
``current_*`` fields, as Linux's ``pool->lock`` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .task import PF_WQ_WORKER, TASK_INTERRUPTIBLE, TASK_RUNNING, Task

if TYPE_CHECKING:
    from .kernel import Kernel
    from .workqueue import Workqueues, pool_workqueue, work_struct

# worker flags (kernel/workqueue.c)
WORKER_DIE = 1 << 1
WORKER_IDLE = 1 << 2
WORKER_PREP = 1 << 3
WORKER_CPU_INTENSIVE = 1 << 6
WORKER_UNBOUND = 1 << 7
WORKER_REBOUND = 1 << 8
WORKER_NOT_RUNNING = WORKER_PREP | WORKER_CPU_INTENSIVE | WORKER_UNBOUND | WORKER_REBOUND

# pool flags
POOL_BH = 1 << 0
POOL_MANAGER_ACTIVE = 1 << 1
POOL_DISASSOCIATED = 1 << 2

IDLE_WORKER_TIMEOUT_NS = 300 * 1_000_000_000
BH_WORKER_RESTARTS = 10


class Worker:
    """struct worker: a kworker thread (or a BH pool's pseudo worker)."""

    __slots__ = ("pool", "id", "task", "flags", "current_work", "current_func",
                 "current_pwq", "current_seq", "scheduled", "sleeping", "last_active_ns",
                 "desc", "last_wq_name", "current_at")

    def __init__(self, pool: WorkerPool, wid: int) -> None:
        self.pool = pool
        self.id = wid
        self.task: Task | None = None
        self.flags = WORKER_PREP
        self.current_work: work_struct | None = None
        self.current_func: Callable[..., Any] | None = None
        self.current_pwq: pool_workqueue | None = None
        self.current_seq = 0
        self.scheduled: deque[work_struct] = deque()
        self.sleeping = False
        self.last_active_ns = 0
        self.desc = ""
        self.last_wq_name = ""
        self.current_at = 0

    def name(self) -> str:
        """format_worker_id(): kworker/0:1, kworker/0:0H, kworker/u8:2."""
        pool = self.pool
        if pool.cpu >= 0:
            return f"kworker/{pool.cpu}:{self.id}{'H' if pool.nice < 0 else ''}"
        return f"kworker/u{pool.id}:{self.id}"

    def __repr__(self) -> str:
        return f"<Worker {self.name()} flags={self.flags:#x}>"


class WorkerPool:
    """struct worker_pool."""

    def __init__(self, wqs: Workqueues, pid: int, cpu: int, nice: int, bh: bool) -> None:
        self.wqs = wqs
        self.kernel: Kernel = wqs.kernel
        self.id = pid
        self.cpu = cpu  # -1 for unbound
        self.nice = nice
        self.flags = POOL_BH if bh else 0
        self.lock = self.kernel.engine.new_raw_lock()
        self.worklist: deque[work_struct] = deque()
        self.workers: list[Worker] = []
        self.idle_list: list[Worker] = []  # index 0 = most recently idled
        self.busy: dict[int, Worker] = {}  # id(work) -> worker executing it
        self.nr_running = 0
        self.nr_workers = 0
        self.nr_idle = 0
        self.watchdog_ts = 0
        self.cpu_stall = False
        self._ids: set[int] = set()
        self.manager_active = False
        self.refcnt = 1
        self.bh_worker: Worker | None = None
        if bh:
            self.bh_worker = Worker(self, 0)
            self.bh_worker.flags = 0

    @property
    def is_bh(self) -> bool:
        return bool(self.flags & POOL_BH)

    @property
    def unbound(self) -> bool:
        return self.cpu < 0

    def describe(self) -> str:
        if self.cpu >= 0:
            what = f"cpus={self.cpu}"
            if self.is_bh:
                what += " bh-hi" if self.nice < 0 else " bh"
            return what
        return f"cpus={self.wqs.cpumask_str()}"

    # ------------------------------------------------------------------
    # predicates (kernel/workqueue.c)
    def need_more_worker(self) -> bool:
        return bool(self.worklist) and self.nr_running == 0

    def may_start_working(self) -> bool:
        return self.nr_idle > 0

    def keep_working(self) -> bool:
        return bool(self.worklist) and self.nr_running <= 1

    def too_many_workers(self) -> bool:
        nr_idle = self.nr_idle + (1 if self.manager_active else 0)
        nr_busy = self.nr_workers - nr_idle
        return nr_idle > 2 and (nr_idle - 2) * 4 >= nr_busy

    # ------------------------------------------------------------------
    # flags that change nr_running
    def worker_set_flags(self, w: Worker, flags: int) -> None:
        if flags & WORKER_NOT_RUNNING and not w.flags & WORKER_NOT_RUNNING:
            self.nr_running -= 1
        w.flags |= flags

    def worker_clr_flags(self, w: Worker, flags: int) -> None:
        oflags = w.flags
        w.flags &= ~flags
        if flags & WORKER_NOT_RUNNING and oflags & WORKER_NOT_RUNNING:
            if not w.flags & WORKER_NOT_RUNNING:
                self.nr_running += 1

    # ------------------------------------------------------------------
    def kick_pool(self, ctx: ExecCtx) -> bool:
        """Wake the most recently idled worker if the pool needs one."""
        if not self.need_more_worker():
            return False
        if self.is_bh:
            self.wqs.kick_bh_pool(ctx, self)
            return True
        if not self.idle_list:
            return False
        w = self.idle_list[0]
        assert w.task is not None
        self.kernel.sched.wake_up_process(w.task)
        return True

    def worker_enter_idle(self, w: Worker) -> None:
        self.worker_set_flags(w, WORKER_IDLE)
        self.nr_idle += 1
        w.last_active_ns = self.kernel.now_ns
        self.idle_list.insert(0, w)

    def worker_leave_idle(self, w: Worker) -> None:
        if not w.flags & WORKER_IDLE:
            return
        self.worker_clr_flags(w, WORKER_IDLE)
        self.nr_idle -= 1
        self.idle_list.remove(w)

    # ------------------------------------------------------------------
    # creating workers
    def create_worker(self, ctx: ExecCtx | None) -> Worker | None:
        wqs = self.wqs
        if wqs.worker_creation_fails():
            return None
        wid = 0
        while wid in self._ids:
            wid += 1
        self._ids.add(wid)
        w = Worker(self, wid)
        if self.unbound:
            w.flags |= WORKER_UNBOUND
        self.workers.append(w)
        self.nr_workers += 1
        k = self.kernel
        task = k.sched.new_task(lambda: self.worker_thread(w), w.name(),
                                None if self.unbound else self.cpu, flags=PF_WQ_WORKER | 0x00200000)
        if self.unbound:
            task.cpu = ctx.cpu if ctx is not None else 0
            task.ctx.cpu = task.cpu
            task.bound = False
        task.worker = w
        w.task = task
        # New workers start idle (worker_enter_idle) and are woken to run.
        self.worker_enter_idle(w)
        k.engine.start_task(task)
        return w

    def maybe_create_worker(self, ctx: ExecCtx) -> None:
        """manage_workers(): this worker creates a spare (see wqrescue)."""
        from .wqrescue import maybe_create_worker

        self.manager_active = True
        try:
            maybe_create_worker(self, ctx)
        finally:
            self.manager_active = False

    # ------------------------------------------------------------------
    # the scheduler hooks (wq_worker_sleeping / wq_worker_running)
    def worker_sleeping(self, ctx: ExecCtx, w: Worker) -> None:
        if w.flags & WORKER_NOT_RUNNING or w.sleeping:
            return
        w.sleeping = True
        self.lock.acquire(ctx)
        if not w.flags & WORKER_NOT_RUNNING:
            self.nr_running -= 1
            if self.kick_pool(ctx) and w.current_pwq is not None:
                w.current_pwq.stats[4] += 1  # PWQ_STAT_CM_WAKEUP
        self.lock.release(ctx)

    def worker_running(self, ctx: ExecCtx, w: Worker) -> None:
        if not w.sleeping:
            return
        if not w.flags & WORKER_NOT_RUNNING:
            self.nr_running += 1
        w.current_at = ctx.task.kernel.sched.runtime(ctx.task)
        w.sleeping = False

    # ------------------------------------------------------------------
    # the worker thread
    def worker_thread(self, w: Worker) -> None:
        k = self.kernel
        task = w.task
        assert task is not None
        ctx = task.ctx
        sched = k.sched
        lock = self.lock
        wqs = self.wqs
        while True:
            lock.acquire(ctx)
            if w.flags & WORKER_DIE:
                lock.release(ctx)
                return
            self.worker_leave_idle(w)
            while True:  # recheck
                if not self.need_more_worker():
                    break
                if not self.may_start_working() and not self.manager_active:
                    lock.release(ctx)
                    self.maybe_create_worker(ctx)
                    lock.acquire(ctx)
                    continue
                self.worker_clr_flags(w, WORKER_PREP | WORKER_REBOUND)
                while True:
                    work = self.worklist[0]
                    if wqs.assign_work(ctx, self, work, w):
                        wqs.process_scheduled_works(ctx, self, w)
                    if not self.keep_working():
                        break
                self.worker_set_flags(w, WORKER_PREP)
                break
            self.worker_enter_idle(w)
            if self.too_many_workers():
                wqs.arm_idle_timer(ctx, self)
            task.state = TASK_INTERRUPTIBLE
            task.wait_desc = "worker_thread: idle"
            lock.release(ctx)
            sched.schedule(ctx)
            task.state = TASK_RUNNING

    def destroy_worker(self, ctx: ExecCtx, w: Worker) -> None:
        """Called with the lock held on an idle worker."""
        self.worker_leave_idle(w)
        self.workers.remove(w)
        self.nr_workers -= 1
        self._ids.discard(w.id)
        w.flags |= WORKER_DIE
        if w.task is not None:
            self.kernel.sched.wake_up_process(w.task)

    def __repr__(self) -> str:
        return f"<WorkerPool {self.id} cpu={self.cpu} nice={self.nice} bh={self.is_bh}>"
