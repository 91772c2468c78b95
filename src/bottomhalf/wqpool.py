"""Worker pools, workers and concurrency management (the engine room of cmwq).

Mirrors the pool half of kernel/workqueue.c (6.12; reference §5.8, §5.9,
§5.13):

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
* At every scheduler tick of a CPU, ``wq_worker_tick`` charges the running
  work item's queue with a tick of CPU time and, if a concurrency-managed
  item has run ``workqueue.cpu_intensive_thresh_us`` without sleeping, marks
  it CPU_INTENSIVE (it leaves ``nr_running``, so the pool starts the next
  item) and reports the function as CONFIG_WQ_CPU_INTENSIVE_REPORT does.
  The tick runs only while a worker executes an item on that CPU.

Locking legend: L: ``pool.lock`` (a raw lock) protects the worklist, the idle
list, ``nr_running``, ``busy`` and each worker's ``scheduled`` list and
``current_*`` fields, as Linux's ``pool->lock`` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .engines.base import HrTimer
from .softirq import HI_SOFTIRQ, TASKLET_SOFTIRQ
from .task import PF_KTHREAD, PF_WQ_WORKER, TASK_INTERRUPTIBLE, TASK_RUNNING, Task
from .timer import TICK_NSEC, timer_list
from .wqdefs import PWQ_STAT_CM_WAKEUP, PWQ_STAT_CPU_INTENSIVE, PWQ_STAT_CPU_TIME

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

BH_WORKER_RESTARTS = 10


class Worker:
    """struct worker: a kworker thread, a BH pool's pseudo worker or a rescuer."""

    __slots__ = ("pool", "id", "task", "flags", "current_work", "current_func",
                 "current_pwq", "current_color", "scheduled", "sleeping", "last_active_ns",
                 "desc", "current_at", "rescue_wq", "tick_jiffy")

    def __init__(self, pool: WorkerPool, wid: int) -> None:
        self.pool = pool  # I (a rescuer attaches to the pool it helps)
        self.id = wid
        self.task: Task | None = None
        self.flags = WORKER_PREP  # L
        self.current_work: work_struct | None = None  # L
        self.current_func: Callable[..., Any] | None = None  # L
        self.current_pwq: pool_workqueue | None = None  # L
        self.current_color = 0
        self.scheduled: deque[work_struct] = deque()  # L
        self.sleeping = False
        self.last_active_ns = 0
        self.desc = ""  # the last workqueue served (set_worker_desc)
        self.current_at = 0  # runtime when the item started or the worker last woke
        self.tick_jiffy = 0  # no tick is needed for the CPU-hog check before this jiffy
        self.rescue_wq: Any = None

    def name(self) -> str:
        """format_worker_id(): kworker/0:1, kworker/0:0H, kworker/u8:2, kworker/R-name."""
        if self.rescue_wq is not None:
            return f"kworker/R-{self.rescue_wq.name}"
        pool = self.pool
        if pool.cpu >= 0:
            return f"kworker/{pool.cpu}:{self.id}{'H' if pool.nice < 0 else ''}"
        return f"kworker/u{pool.id}:{self.id}"

    def comm(self) -> str:
        """wq_worker_comm(): the name ps shows, with +desc while running, -desc after."""
        if not self.desc:
            return self.name()
        return f"{self.name()}{'+' if self.current_work is not None else '-'}{self.desc}"

    def __repr__(self) -> str:
        return f"<Worker {self.name()} flags={self.flags:#x}>"


def _housekeeping_timer(fn: Callable[[timer_list], Any]) -> timer_list:
    t = timer_list()
    t.housekeeping = True  # kernel bookkeeping: does not keep a sim run going
    t.function = fn
    return t


class WorkerPool:
    """struct worker_pool."""

    def __init__(self, wqs: Workqueues, pid: int, cpu: int, nice: int, bh: bool) -> None:
        self.wqs = wqs
        self.kernel: Kernel = wqs.kernel
        self.id = pid
        self.cpu = cpu  # -1 for unbound
        self.nice = nice
        # BH pools and unbound pools stay DISASSOCIATED (init_worker_pool); per-CPU
        # pools are associated with their CPU by workqueue_init().
        self.flags = POOL_BH | POOL_DISASSOCIATED if bh else POOL_DISASSOCIATED if cpu < 0 else 0
        self.is_bh = bh  # flags & POOL_BH, which never changes
        self.lock = self.kernel.engine.new_raw_lock()
        self.worklist: deque[work_struct] = deque()  # L
        self.workers: list[Worker] = []
        self.idle_list: list[Worker] = []  # L: index 0 = most recently idled
        self.busy: dict[int, Worker] = {}  # L: id(work) -> worker executing it
        self.nr_running = 0  # L
        self.nr_workers = 0
        self.nr_idle = 0
        self.watchdog_ts = 0  # L: ns of the last forward progress
        self.cpu_stall = False
        self._ids: set[int] = set()
        self.manager: Worker | None = None
        self.refcnt = 1
        self.bh_worker: Worker | None = None
        self.irq_work: HrTimer | None = None  # bh_pool_irq_works: kicks from other CPUs
        # init_worker_pool(): the idle-cull and mayday timers (wqrescue).
        self.idle_timer = _housekeeping_timer(lambda _t: wqs.idle_worker_timeout(self))
        self.mayday_timer = _housekeeping_timer(lambda _t: wqs.pool_mayday_timeout(self))
        if bh:
            self.bh_worker = Worker(self, 0)
            self.bh_worker.flags = WORKER_PREP | WORKER_UNBOUND
            self.nr_workers = 1


    @property
    def unbound(self) -> bool:
        return self.cpu < 0

    @property
    def manager_active(self) -> bool:
        return bool(self.flags & POOL_MANAGER_ACTIVE)

    def all_workers(self) -> list[Worker]:
        return [self.bh_worker] if self.bh_worker is not None else self.workers

    def describe(self) -> str:
        """pr_cont_pool_info() without the leading space."""
        cpus = str(self.cpu) if self.cpu >= 0 else self.wqs.cpumask_str()
        what = f"cpus={cpus} node=0 flags=0x{self.flags:x}"
        if self.is_bh:
            return what + (" bh-hi" if self.nice < 0 else " bh")
        return what + f" nice={self.nice}"

    # ------------------------------------------------------------------
    # predicates (kernel/workqueue.c)
    def need_more_worker(self) -> bool:
        return bool(self.worklist) and self.nr_running == 0

    def may_start_working(self) -> bool:
        return self.nr_idle > 0

    def keep_working(self) -> bool:
        return bool(self.worklist) and self.nr_running <= 1

    def need_to_create_worker(self) -> bool:
        return self.need_more_worker() and not self.may_start_working()

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
        """Wake the most recently idled worker if the pool needs one (L held)."""
        if not self.worklist or self.nr_running:
            return False
        if self.is_bh:
            bw = self.bh_worker
            if bw is None or not bw.flags & WORKER_PREP:
                return False  # the BH worker is running: it will look again
            self.wqs.kick_bh_pool(ctx, self)
            return True
        if not self.idle_list:
            return False
        w = self.idle_list[0]
        head = self.worklist[0]
        if head.dispatch_ns < 0:
            head.dispatch_ns = self.kernel.now_ns
        assert w.task is not None
        self.kernel.engine.wake_up(w.task)  # sched.wake_up_process(), one call less
        return True

    def worker_enter_idle(self, w: Worker) -> None:
        w.flags |= WORKER_IDLE
        self.nr_idle += 1
        w.last_active_ns = self.kernel.now_ns
        self.idle_list.insert(0, w)
        if self.too_many_workers():
            self.wqs.arm_idle_timer(None, self)

    def worker_leave_idle(self, w: Worker) -> None:
        if not w.flags & WORKER_IDLE:
            return
        self.worker_clr_flags(w, WORKER_IDLE)
        self.nr_idle -= 1
        self.idle_list.remove(w)

    # ------------------------------------------------------------------
    # creating and destroying workers
    def create_worker(self, ctx: ExecCtx | None) -> Worker | None:
        wqs = self.wqs
        k = self.kernel
        if wqs.fail_worker_creation:
            if k.log.once("workqueue:create_worker"):  # pr_err_once
                k.log_line(3, "workqueue: Failed to create a worker thread: -ENOMEM")
            return None
        wid = 0
        while wid in self._ids:
            wid += 1
        self._ids.add(wid)
        w = Worker(self, wid)
        if self.unbound:
            w.flags |= WORKER_UNBOUND
        task = k.sched.new_task(lambda: self.worker_thread(w), w.name(),
                                None if self.unbound else self.cpu,
                                flags=PF_WQ_WORKER | PF_KTHREAD)
        if self.unbound:
            task.cpu = ctx.cpu if ctx is not None else 0
            task.ctx.cpu = task.cpu
            task.bound = False
        task.worker = w
        w.task = task
        self.lock.acquire(task.ctx if ctx is None else ctx)
        self.workers.append(w)
        self.nr_workers += 1
        self.worker_enter_idle(w)
        self.lock.release(task.ctx if ctx is None else ctx)
        k.engine.start_task(task)
        return w

    def destroy_worker(self, ctx: ExecCtx, w: Worker) -> None:
        """set_worker_dying(): called with the lock held on an idle worker."""
        self.worker_leave_idle(w)
        self.workers.remove(w)
        self.nr_workers -= 1
        self._ids.discard(w.id)
        w.flags |= WORKER_DIE
        if w.task is not None:
            self.kernel.sched.wake_up_process(w.task)

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
                w.current_pwq.stats[PWQ_STAT_CM_WAKEUP] += 1
        self.lock.release(ctx)

    def worker_running(self, ctx: ExecCtx, w: Worker) -> None:
        k = self.kernel
        if w.current_work is not None and w.task is not None:
            w.current_at = k.sched.runtime(w.task)
            if k.params["workqueue.cpu_intensive_thresh_us"]:
                w.tick_jiffy = self.wqs.first_tick_jiffy()
                k.timers.ensure_tick(ctx, ctx.cpu, w.tick_jiffy)  # the hog check needs a tick
        if not w.sleeping:
            return
        if not w.flags & WORKER_NOT_RUNNING:
            self.nr_running += 1
        w.sleeping = False

    # ------------------------------------------------------------------
    # the worker thread
    def worker_thread(self, w: Worker) -> None:
        task = w.task
        assert task is not None
        ctx = task.ctx
        sched = self.kernel.sched
        lock = self.lock
        wqs = self.wqs
        worklist = self.worklist
        while True:
            lock.acquire(ctx)
            if w.flags & WORKER_DIE:
                lock.release(ctx)
                return
            if w.flags & WORKER_IDLE:
                self.worker_leave_idle(w)
            # recheck: need_more_worker(), inlined (this is the hot loop)
            while worklist and not self.nr_running:
                if not self.nr_idle and not self.manager_active:  # !may_start_working()
                    wqs.manage_workers(ctx, self, w)  # drops and retakes the lock
                    continue
                self.worker_clr_flags(w, WORKER_PREP | WORKER_REBOUND)
                while True:
                    if wqs.assign_work(ctx, self, worklist[0], w):
                        wqs.process_scheduled_works(ctx, self, w)
                    if not worklist or self.nr_running > 1:  # !keep_working()
                        break
                self.worker_set_flags(w, WORKER_PREP)
                break
            self.worker_enter_idle(w)
            task.state = TASK_INTERRUPTIBLE
            task.wait_desc = "worker_thread: idle"
            lock.release(ctx)
            sched.schedule(ctx)
            task.state = TASK_RUNNING

    def __repr__(self) -> str:
        return f"<WorkerPool {self.id} cpu={self.cpu} nice={self.nice} bh={self.is_bh}>"


class HogCheck:
    """wq_worker_tick() and wq_cpu_intensive_report(), mixed into Workqueues."""

    kernel: Kernel
    sim: bool
    busy_workers: dict[Worker, None]
    hog_counts: dict[Any, int]

    def hog_thresh_us(self) -> int:
        return int(self.kernel.params["workqueue.cpu_intensive_thresh_us"])

    def first_tick_jiffy(self) -> int:
        """The first jiffy at which an item starting now needs a tick.

        sim ticks every jiffy while a worker runs, as Linux does: each tick
        samples CPUtime and checks for a hog.  real cannot afford waking its
        timer thread for every item, so its first tick comes when the item
        could first have hogged the CPU (``cpu_intensive_thresh_us`` from now),
        and CPUtime is measured instead of sampled.
        """
        timers = self.kernel.timers
        now_j = timers.jiffies()
        if self.sim:
            return now_j + 1
        thresh_j = -(-self.hog_thresh_us() * 1000 // TICK_NSEC)  # round up
        return now_j + max(1, thresh_j)

    def tick_due(self, cpu: int) -> int | None:
        """The jiffy by which ``cpu`` needs a tick for a worker running there."""
        due = None
        now_j = self.kernel.timers.jiffies()
        for w in self.busy_workers:
            t = w.task
            if t is not None and t.cpu == cpu and t.state == TASK_RUNNING:
                j = max(w.tick_jiffy, now_j + 1)
                if due is None or j < due:
                    due = j
        return due

    def wq_worker_tick(self, ctx: ExecCtx) -> None:
        """A scheduler tick on ``ctx.cpu`` (hard-IRQ context)."""
        if not self.busy_workers:
            return
        task = ctx.task
        if task.flags & PF_WQ_WORKER:
            worker = task.worker
        elif self.kernel.engine.name == "real":
            # real: the interrupted "current" is not known; the worker running
            # on this CPU is.
            worker = next((w for w in self.busy_workers if w.task is not None
                           and w.task.cpu == ctx.cpu and w.task.state == TASK_RUNNING), None)
        else:
            return
        if worker is None:
            return
        pwq = worker.current_pwq
        if pwq is None or worker.task is None:
            return
        if self.sim:
            pwq.stats[PWQ_STAT_CPU_TIME] += TICK_NSEC // 1000  # sampled at the tick (real measures it)
        thresh = self.hog_thresh_us()
        if not thresh or worker.flags & WORKER_NOT_RUNNING or worker.sleeping:
            return
        if self.kernel.sched.runtime(worker.task) - worker.current_at < thresh * 1000:
            return
        pool = worker.pool
        pool.lock.acquire(ctx)
        pool.worker_set_flags(worker, WORKER_CPU_INTENSIVE)
        self.cpu_intensive_report(worker.current_func, thresh)
        pwq.stats[PWQ_STAT_CPU_INTENSIVE] += 1
        if pool.kick_pool(ctx):
            pwq.stats[PWQ_STAT_CM_WAKEUP] += 1
        pool.lock.release(ctx)

    def cpu_intensive_report(self, func: Any, thresh: int) -> None:
        """CONFIG_WQ_CPU_INTENSIVE_REPORT: report at 4, 5, 7, 11, 19, ... hogs."""
        cnt = self.hog_counts.get(func, 0) + 1
        self.hog_counts[func] = cnt
        warn = int(self.kernel.params.get("workqueue.cpu_intensive_warning_thresh", 4))
        n = cnt + 1 - warn
        if warn and cnt >= warn and n & (n - 1) == 0:
            k = self.kernel
            k.log_line(4, f"workqueue: {k.symbols.symbol(func)} hogged CPU for >{thresh}us "
                          f"{cnt} times, consider switching to WQ_UNBOUND")


class BhPools:
    """BH workqueues (reference §5.9), mixed into Workqueues: items run from the
    HI/TASKLET softirq of the pool's CPU, before that pass's tasklets."""

    kernel: Kernel
    bh_pools: list[list[WorkerPool]]

    if TYPE_CHECKING:  # provided by Workqueues; stubs here would shadow them in the MRO
        def assign_work(self, ctx: ExecCtx, pool: WorkerPool, work: work_struct,
                        worker: Worker) -> bool:
            raise NotImplementedError
        def process_scheduled_works(self, ctx: ExecCtx, pool: WorkerPool, worker: Worker) -> None: ...

    def kick_bh_pool(self, ctx: ExecCtx, pool: WorkerPool) -> None:
        """Raise the pool's softirq on its CPU: here, or through an irq_work (an
        IPI) to another CPU, which - like the IPI - arrives after the caller has
        dropped pool.lock."""
        nr = HI_SOFTIRQ if pool.nice < 0 else TASKLET_SOFTIRQ
        k = self.kernel
        if pool.cpu == ctx.cpu:
            k.softirq.raise_softirq_irqoff(ctx, nr)
            return
        iw = pool.irq_work
        if iw is None:
            def bh_pool_kick(c: ExecCtx, _t: HrTimer) -> None:
                k.irq.iwi[c.cpu] += 1
                k.softirq.raise_softirq_irqoff(c, nr)

            iw = pool.irq_work = HrTimer(bh_pool_kick, pool.cpu, "irq_work")
        if not iw.active:  # irq_work_queue_on() claims the work once
            k.engine.hrtimer_start(iw, k.engine.now_ns())

    def bh_worker(self, ctx: ExecCtx, highpri: bool) -> bool:
        """workqueue_softirq_action() -> bh_worker(): at most BH_WORKER_RESTARTS
        items and BH_WORKER_JIFFIES, then the softirq is raised again."""
        pool = self.bh_pools[ctx.cpu][1 if highpri else 0]
        if not pool.worklist:
            return False
        worker = pool.bh_worker
        assert worker is not None
        timers = self.kernel.timers
        end = timers.jiffies() + timers.msecs_to_jiffies(2)
        restarts = BH_WORKER_RESTARTS
        pool.lock.acquire(ctx)
        worker.flags &= ~WORKER_PREP  # busy: kick_pool() leaves the softirq alone
        ran = False
        while pool.worklist:
            work = pool.worklist[0]
            if self.assign_work(ctx, pool, work, worker):
                ran = True
                self.process_scheduled_works(ctx, pool, worker)
            restarts -= 1
            if not (pool.keep_working() and restarts and timers.jiffies() < end):
                break
        worker.flags |= WORKER_PREP
        pool.kick_pool(ctx)
        pool.lock.release(ctx)
        return ran
