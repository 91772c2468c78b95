"""Workqueues: work items, workqueues, queueing, flushing and cancelling.

Mirrors include/linux/workqueue.h and the workqueue half of
kernel/workqueue.c (reference §5, §7).  Work functions run in process
context on kworker threads (or, for ``WQ_BH`` queues, in the softirq of the
queueing CPU).  The pools and workers that execute them are in
:mod:`bottomhalf.wqpool`.

The rules kept exactly:

* ``queue_work`` test-and-sets PENDING: an item already pending is left where
  it is and the call returns False.  A disabled item is not queued.
* PENDING is cleared just before the function runs, so an item queued while
  it runs returns True and runs once more afterwards - on the pool that is
  running it, after the current run, never concurrently (non-reentrancy).
* Each pool_workqueue admits ``max_active`` items; the rest wait, in order,
  on its inactive list and are activated as items complete.
* ``flush_work`` inserts a barrier work right after the item (or at the head
  of the worker running it) and waits for it, as Linux does.
  ``flush_workqueue`` waits for every item queued before the call.
* ``cancel_work_sync`` = disable + grab PENDING + flush + enable.

Guards: the kernel-wide ``Workqueues.lock`` (a raw lock) makes the PENDING
test-and-set and the off-queue state (disable depth, last pool) atomic; each
pool's ``lock`` protects the lists the item sits on; ``wq.lock`` protects a
workqueue's flags, its in-flight accounting and its flushers.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .locking import complete, completion, wait_for_completion
from .softirq import HI_SOFTIRQ, TASKLET_SOFTIRQ
from .task import PF_WQ_WORKER, TASK_UNINTERRUPTIBLE, Task
from .timer import TIMER_IRQSAFE, timer_list
from .wqpool import (
    BH_WORKER_RESTARTS,
    WORKER_CPU_INTENSIVE,
    Worker,
    WorkerPool,
)

if TYPE_CHECKING:
    from .kernel import Kernel

NR_CPUS = 8192  # CONFIG_NR_CPUS of Debian's amd64 kernels
WORK_CPU_UNBOUND = NR_CPUS

WQ_BH = 1 << 0
WQ_UNBOUND = 1 << 1
WQ_FREEZABLE = 1 << 2
WQ_MEM_RECLAIM = 1 << 3
WQ_HIGHPRI = 1 << 4
WQ_CPU_INTENSIVE = 1 << 5
WQ_SYSFS = 1 << 6
WQ_POWER_EFFICIENT = 1 << 7
WQ_PERCPU = 1 << 8
__WQ_DESTROYING = 1 << 15
__WQ_DRAINING = 1 << 16
__WQ_ORDERED = 1 << 17
__WQ_LEGACY = 1 << 18
__WQ_BH_ALLOWS = WQ_BH | WQ_HIGHPRI | WQ_PERCPU
# Aliases usable inside class bodies (where __NAME would be name-mangled).
WQF_DESTROYING = __WQ_DESTROYING
WQF_DRAINING = __WQ_DRAINING
WQF_ORDERED = __WQ_ORDERED
WQF_LEGACY = __WQ_LEGACY
WQF_BH_ALLOWS = __WQ_BH_ALLOWS

WQ_MAX_ACTIVE = 2048
WQ_UNBOUND_MAX_ACTIVE = WQ_MAX_ACTIVE
WQ_DFL_ACTIVE = WQ_MAX_ACTIVE // 2
WQ_DFL_MIN_ACTIVE = 8
WQ_NAME_LEN = 32
WORK_OFFQ_DISABLE_MAX = (1 << 16) - 1

WORK_BUSY_PENDING = 1 << 0
WORK_BUSY_RUNNING = 1 << 1

# where a work item is (the PENDING bit is "state != W_IDLE")
W_IDLE = 0
W_TIMER = 1  # delayed work: timer armed
W_INACTIVE = 2  # on pwq.inactive (over max_active)
W_ACTIVE = 3  # on pool.worklist
W_SCHEDULED = 4  # on a worker's scheduled list
W_STUCK = 5  # PENDING set but dropped (destroyed/draining queue): stuck until re-init
W_GRABBED = 6  # PENDING owned by a canceller or queuer in progress

# pool_workqueue stats (enum pool_workqueue_stats)
PWQ_STAT_STARTED = 0
PWQ_STAT_COMPLETED = 1
PWQ_STAT_CPU_TIME = 2
PWQ_STAT_CPU_INTENSIVE = 3
PWQ_STAT_CM_WAKEUP = 4
PWQ_STAT_REPATRIATED = 5
PWQ_STAT_MAYDAY = 6
PWQ_STAT_RESCUED = 7
PWQ_NR_STATS = 8


class work_struct:  # noqa: N801 - the kernel's name
    """struct work_struct.  Construct empty, then INIT_WORK()."""

    __slots__ = ("func", "state", "pwq", "last_pool", "seq", "disable", "dwork", "linked",
                 "barrier_done", "is_barrier", "bh", "__weakref__", "_bh_container")

    def __init__(self) -> None:
        self.func: Callable[[work_struct], Any] | None = None
        self.state = W_IDLE
        self.pwq: pool_workqueue | None = None
        self.last_pool: WorkerPool | None = None
        self.seq = 0
        self.disable = 0
        self.dwork: delayed_work | None = None
        self.linked = False  # the next entry of my list is a barrier linked to me
        self.barrier_done: completion | None = None
        self.is_barrier = False
        self.bh = False

    @property
    def pending(self) -> bool:
        return self.state != W_IDLE

    def __repr__(self) -> str:
        name = getattr(self.func, "__name__", None)
        return f"<work_struct {name} state={self.state}>"


class delayed_work:  # noqa: N801 - the kernel's name
    """struct delayed_work: a work_struct and the timer that queues it."""

    __slots__ = ("work", "timer", "wq", "cpu", "__weakref__", "_bh_container")

    def __init__(self) -> None:
        self.work = work_struct()
        self.work.dwork = self
        self.timer = timer_list()
        self.timer._bh_container = self
        self.wq: workqueue_struct | None = None
        self.cpu = WORK_CPU_UNBOUND

    def __repr__(self) -> str:
        return f"<delayed_work {getattr(self.work.func, '__name__', None)}>"


class pool_workqueue:  # noqa: N801 - the kernel's name
    """struct pool_workqueue: links a workqueue to the pool serving a CPU."""

    __slots__ = ("wq", "pool", "nr_active", "inactive", "nr_in_flight", "stats")

    def __init__(self, wq: workqueue_struct, pool: WorkerPool) -> None:
        self.wq = wq
        self.pool = pool
        self.nr_active = 0
        self.inactive: deque[work_struct] = deque()
        self.nr_in_flight = 0
        self.stats = [0] * PWQ_NR_STATS

    def busy(self) -> bool:
        return bool(self.nr_in_flight or self.nr_active or self.inactive)


class workqueue_struct:  # noqa: N801 - the kernel's name
    """struct workqueue_struct."""

    def __init__(self, wqs: Workqueues, name: str, flags: int, max_active: int) -> None:
        self.wqs = wqs
        self.name = name
        self.flags = flags
        self.saved_max_active = max_active
        self.max_active = max_active
        self.pwqs: list[pool_workqueue] = []  # per CPU (bound, BH) or one (unbound)
        self.rescuer: Task | None = None
        self.maydays: list[pool_workqueue] = []
        self.lock = wqs.kernel.engine.new_raw_lock()
        self.seq = 0
        self.inflight: list[int] = []  # heap of seqs of queued/running instances
        self.inflight_count: dict[int, int] = {}
        self.flushers: list[tuple[int, Task]] = []
        self.nr_drainers = 0
        self.destroyed = False
        self.owner: str | None = None
        self.sysfs = bool(flags & WQ_SYSFS)

    @property
    def unbound(self) -> bool:
        return bool(self.flags & WQ_UNBOUND)

    @property
    def ordered(self) -> bool:
        return bool(self.flags & WQF_ORDERED)

    def pwq_for(self, cpu: int) -> pool_workqueue:
        return self.pwqs[0] if len(self.pwqs) == 1 else self.pwqs[cpu]

    def kind(self) -> str:
        if self.flags & WQ_BH:
            return "bh"
        if self.ordered:
            return "ordered"
        return "unbound" if self.unbound else "percpu"

    def __repr__(self) -> str:
        return f"<workqueue_struct {self.name} flags={self.flags:#x} max_active={self.max_active}>"


class Workqueues:
    """The workqueue subsystem of one kernel: pools, queues, the API's logic."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.lock = kernel.engine.new_raw_lock()
        n = kernel.ncpus
        self.pools: list[WorkerPool] = []
        self.bh_pools: list[list[WorkerPool]] = []
        self.cpu_pools: list[list[WorkerPool]] = []
        for cpu in range(n):
            self.bh_pools.append([self._new_pool(cpu, 0, True), self._new_pool(cpu, -20, True)])
            self.cpu_pools.append([self._new_pool(cpu, 0, False), self._new_pool(cpu, -20, False)])
        self.unbound_pools: dict[int, WorkerPool] = {}
        self.workqueues: list[workqueue_struct] = []
        self.system: dict[str, workqueue_struct] = {}
        self.fail_worker_creation = False
        self.items_in_flight = 0
        self.warned_once: set[str] = set()
        self.idle_timers: dict[int, timer_list] = {}

    def _new_pool(self, cpu: int, nice: int, bh: bool) -> WorkerPool:
        pool = WorkerPool(self, len(self.pools), cpu, nice, bh)
        self.pools.append(pool)
        return pool

    def unbound_pool(self, nice: int) -> WorkerPool:
        pool = self.unbound_pools.get(nice)
        if pool is None:
            pool = self._new_pool(-1, nice, False)
            self.unbound_pools[nice] = pool
        return pool

    def cpumask_str(self) -> str:
        n = self.kernel.ncpus
        return "0" if n == 1 else f"0-{n - 1}"

    # ------------------------------------------------------------------
    # boot
    def init(self) -> None:
        """workqueue_init(): first workers, then the system workqueues."""
        for cpu in range(self.kernel.ncpus):
            for pool in self.cpu_pools[cpu]:
                pool.create_worker(None)
        self.unbound_pool(0).create_worker(None)
        ctx = None
        specs = [
            ("system_wq", "events", 0, 0),
            ("system_percpu_wq", "events", WQ_PERCPU, 0),
            ("system_highpri_wq", "events_highpri", WQ_HIGHPRI, 0),
            ("system_long_wq", "events_long", 0, 0),
            ("system_unbound_wq", "events_unbound", WQ_UNBOUND, WQ_MAX_ACTIVE),
            ("system_dfl_wq", "events_unbound", WQ_UNBOUND, WQ_MAX_ACTIVE),
            ("system_freezable_wq", "events_freezable", WQ_FREEZABLE, 0),
            ("system_power_efficient_wq", "events_power_efficient", WQ_POWER_EFFICIENT, 0),
            ("system_freezable_power_efficient_wq", "events_freezable_pwr_efficient",
             WQ_FREEZABLE | WQ_POWER_EFFICIENT, 0),
            ("system_bh_wq", "events_bh", WQ_BH, 0),
            ("system_bh_highpri_wq", "events_bh_highpri", WQ_BH | WQ_HIGHPRI, 0),
        ]
        for var, name, flags, max_active in specs:
            wq = self.alloc_workqueue(ctx, name, flags, max_active)
            assert wq is not None
            self.system[var] = wq

    # ------------------------------------------------------------------
    # creation and destruction
    def alloc_workqueue(self, ctx: ExecCtx | None, name: str, flags: int, max_active: int,
                        owner: str | None = None) -> workqueue_struct | None:
        k = self.kernel
        if len(name) >= WQ_NAME_LEN:
            name = name[: WQ_NAME_LEN - 1]
            k.log_line(4, f"workqueue: name exceeds WQ_NAME_LEN. Truncating to: {name}")
        if flags & WQ_BH:
            if flags & ~WQF_BH_ALLOWS or max_active:
                k.warn(ctx, None, where="alloc_workqueue")
                return None
            max_active = 0x7FFFFFFF
        else:
            if flags & WQ_UNBOUND and flags & WQ_PERCPU:
                k.warn(ctx, None, where="alloc_workqueue")
                return None
            if flags & WQ_POWER_EFFICIENT and k.params.get("workqueue.power_efficient"):
                flags |= WQ_UNBOUND
            if max_active == 0:
                max_active = WQ_DFL_ACTIVE
            elif max_active < 1 or max_active > WQ_MAX_ACTIVE:
                k.log_line(4, f"workqueue: max_active {max_active} requested for {name} is out "
                              f"of range, clamping between 1 and {WQ_MAX_ACTIVE}")
                max_active = max(1, min(max_active, WQ_MAX_ACTIVE))
        if flags & WQF_ORDERED and flags & WQ_SYSFS:
            k.warn(ctx, None, where="workqueue_sysfs_register")
            return None
        wq = workqueue_struct(self, name, flags, max_active)
        wq.owner = owner
        if flags & WQ_BH:
            hi = 1 if flags & WQ_HIGHPRI else 0
            wq.pwqs = [pool_workqueue(wq, self.bh_pools[c][hi]) for c in range(k.ncpus)]
        elif flags & WQ_UNBOUND:
            pool = self.unbound_pool(-20 if flags & WQ_HIGHPRI else 0)
            if not pool.workers:
                pool.create_worker(ctx)
            wq.pwqs = [pool_workqueue(wq, pool)]
        else:
            hi = 1 if flags & WQ_HIGHPRI else 0
            wq.pwqs = [pool_workqueue(wq, self.cpu_pools[c][hi]) for c in range(k.ncpus)]
        if flags & WQ_MEM_RECLAIM:
            self.init_rescuer(ctx, wq)
        self.workqueues.append(wq)
        return wq

    def init_rescuer(self, ctx: ExecCtx | None, wq: workqueue_struct) -> None:
        """Each WQ_MEM_RECLAIM queue gets a rescuer thread, kworker/R-<name>."""
        from .wqrescue import rescuer_thread

        wq.rescuer = self.kernel.sched.kthread_run(
            lambda: rescuer_thread(self, wq), f"kworker/R-{wq.name}"[:15])

    def destroy_workqueue(self, ctx: ExecCtx, wq: workqueue_struct) -> None:
        k = self.kernel
        k.sched.might_sleep(ctx, "destroy_workqueue", depth=3)
        if wq.destroyed:
            k.warn(ctx, f"destroy_workqueue: {wq.name} was already destroyed")
            return
        wq.sysfs = False
        wq.lock.acquire(ctx)
        wq.flags |= WQF_DESTROYING
        wq.lock.release(ctx)
        self.drain_workqueue(ctx, wq)
        if wq.rescuer is not None:
            k.kthread_stop(ctx, wq.rescuer)
            wq.rescuer = None
        busy = [p for p in wq.pwqs if p.busy()]
        if busy:
            k.warn(ctx, None, where="destroy_workqueue")
            k.log_line(3, f"destroy_workqueue: {wq.name} has the following busy pwq")
            for line in self.show_one_workqueue(wq):
                k.log_line(6, line)
            return
        wq.destroyed = True
        if wq in self.workqueues:
            self.workqueues.remove(wq)

    # ------------------------------------------------------------------
    # queueing
    def queue_work_on(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                      work: work_struct) -> bool:
        lock = self.lock
        lock.acquire(ctx)
        if work.state != W_IDLE:
            lock.release(ctx)
            return False
        if work.disable:
            lock.release(ctx)
            return False
        work.state = W_GRABBED
        lock.release(ctx)
        self.__queue_work(ctx, cpu, wq, work)
        return True

    def __queue_work(self, ctx: ExecCtx, req_cpu: int, wq: workqueue_struct,
                     work: work_struct) -> None:
        """Put an item whose PENDING the caller owns on its pool (kernel's __queue_work)."""
        k = self.kernel
        if wq.flags & (WQF_DESTROYING | WQF_DRAINING) or wq.destroyed:
            if not self.is_chained_work(ctx, wq):
                self._warn_once(ctx, "__queue_work")
                work.state = W_STUCK
                return
        if work.func is None:
            k.warn(ctx, "queue_work() on a work_struct that was never initialised (INIT_WORK)")
            work.state = W_IDLE
            return
        if req_cpu == WORK_CPU_UNBOUND:
            cpu = ctx.cpu
        else:
            cpu = req_cpu
        pwq = wq.pwq_for(cpu)
        pool = pwq.pool
        # Non-reentrancy: if it is still running on another pool of this
        # queue, queue it there so it runs after the current run.
        last = work.last_pool
        if last is not None and last is not pool and not wq.ordered:
            last.lock.acquire(ctx)
            worker = last.busy.get(id(work))
            if worker is not None and worker.current_pwq is not None and \
                    worker.current_pwq.wq is wq:
                pwq = worker.current_pwq
                pool = last
            last.lock.release(ctx)
        trace = k.trace
        pool.lock.acquire(ctx)
        if trace.on:
            trace.workqueue_queue_work(ctx, work, wq, req_cpu, pool.cpu if pool.cpu >= 0 else cpu)
        wq.seq += 1
        work.seq = wq.seq
        self._inflight_add(wq, work.seq)
        work.pwq = pwq
        pwq.nr_in_flight += 1
        self.items_in_flight += 1
        if not pwq.inactive and pwq.nr_active < wq.max_active:
            pwq.nr_active += 1
            if not pool.worklist:
                pool.watchdog_ts = k.now_ns
            if trace.on:
                trace.workqueue_activate_work(ctx, work)
            work.state = W_ACTIVE
            pool.worklist.append(work)
            pool.kick_pool(ctx)
        else:
            work.state = W_INACTIVE
            pwq.inactive.append(work)
        pool.lock.release(ctx)

    def is_chained_work(self, ctx: ExecCtx, wq: workqueue_struct) -> bool:
        """Is the caller a work item of ``wq`` (or its rescuer)?"""
        task = ctx.task
        if not ctx.in_task():
            return False
        w = task.worker if task.flags & PF_WQ_WORKER else None
        return w is not None and w.current_pwq is not None and w.current_pwq.wq is wq

    def _warn_once(self, ctx: ExecCtx, where: str) -> None:
        if where in self.warned_once:
            return
        self.warned_once.add(where)
        self.kernel.warn(ctx, None, where=where)

    def _inflight_add(self, wq: workqueue_struct, seq: int) -> None:
        heapq.heappush(wq.inflight, seq)
        wq.inflight_count[seq] = 1

    def _inflight_done(self, ctx: ExecCtx, wq: workqueue_struct, seq: int) -> None:
        wq.inflight_count.pop(seq, None)
        h = wq.inflight
        while h and h[0] not in wq.inflight_count:
            heapq.heappop(h)
        if wq.flushers:
            oldest = h[0] if h else wq.seq + 1
            done = [f for f in wq.flushers if f[0] < oldest]
            if done:
                wq.flushers = [f for f in wq.flushers if f[0] >= oldest]
                for _, t in done:
                    self.kernel.sched.wake_up_process(t)

    # ------------------------------------------------------------------
    # execution (called by workers, with pool.lock held)
    def assign_work(self, ctx: ExecCtx, pool: WorkerPool, work: work_struct,
                    worker: Worker) -> bool:
        """Give ``work`` (head of the worklist) to ``worker``, unless another
        worker of the pool is already executing it: then it goes to that
        worker's scheduled list (non-reentrancy)."""
        collision = pool.busy.get(id(work))
        if collision is not None and collision is not worker \
                and collision.current_func is work.func:
            self._move_linked(pool.worklist, work, collision.scheduled)
            return False
        self._move_linked(pool.worklist, work, worker.scheduled)
        return True

    def _move_linked(self, src: deque[work_struct], work: work_struct,
                     dst: deque[work_struct]) -> None:
        if src and src[0] is work:
            src.popleft()
            dst.append(work)
            work.state = W_SCHEDULED
            while work.linked and src:
                nxt = src.popleft()
                dst.append(nxt)
                nxt.state = W_SCHEDULED
                work = nxt
            return
        src.remove(work)
        dst.append(work)
        work.state = W_SCHEDULED

    def process_scheduled_works(self, ctx: ExecCtx, pool: WorkerPool, worker: Worker) -> None:
        while worker.scheduled:
            work = worker.scheduled[0]
            self.process_one_work(ctx, pool, worker, work)

    def process_one_work(self, ctx: ExecCtx, pool: WorkerPool, worker: Worker,
                         work: work_struct) -> None:
        """Run one item on ``worker``; called and returns with ``pool.lock`` held."""
        k = self.kernel
        pwq = work.pwq
        assert pwq is not None
        worker.scheduled.popleft()
        wq = pwq.wq
        pool.busy[id(work)] = worker
        worker.current_work = work
        worker.current_func = work.func
        worker.current_pwq = pwq
        worker.current_seq = work.seq
        worker.last_wq_name = wq.name
        if worker.task is not None:
            worker.current_at = k.sched.runtime(worker.task)
        func = work.func
        is_barrier = work.is_barrier
        # Clear PENDING: from here on queue_work() queues a new instance.
        self.lock.acquire(ctx)
        work.state = W_IDLE
        work.pwq = None
        work.last_pool = pool
        self.lock.release(ctx)
        if wq.flags & WQ_CPU_INTENSIVE:
            pool.worker_set_flags(worker, WORKER_CPU_INTENSIVE)
        pool.kick_pool(ctx)
        pwq.stats[PWQ_STAT_STARTED] += 1
        pool.lock.release(ctx)
        trace = k.trace
        if trace.on:
            trace.workqueue_execute_start(ctx, work)
        pc = ctx.preempt_count
        k.call_handler(ctx, func, (work,), "work")  # type: ignore[arg-type]
        if trace.on:
            trace.workqueue_execute_end(ctx, work, func)
        if ctx.preempt_count != pc:
            k.log_line(3, f"BUG: workqueue leaked atomic, lock or RCU: {ctx.task.comm}"
                          f"[{ctx.task.pid}]")
            k.log_line(3, f"     preempt=0x{ctx.preempt_count:08x} lock=0->0 RCU=0->0 "
                          f"workfn={k.symbols.symbol(func)}")
            ctx.preempt_count = pc
        pool.lock.acquire(ctx)
        pwq.stats[PWQ_STAT_COMPLETED] += 1
        pool.worker_clr_flags(worker, WORKER_CPU_INTENSIVE)
        del pool.busy[id(work)]
        seq = worker.current_seq
        worker.current_work = None
        worker.current_func = None
        worker.current_pwq = None
        self.pwq_dec_nr_in_flight(ctx, pwq, counted=not is_barrier)
        self._inflight_done(ctx, wq, seq)

    def pwq_dec_nr_in_flight(self, ctx: ExecCtx, pwq: pool_workqueue, counted: bool) -> None:
        """An item left the pwq: activate the oldest inactive one (pool.lock held)."""
        pwq.nr_in_flight -= 1
        self.items_in_flight -= 1
        if counted:
            pwq.nr_active -= 1
            self.pwq_activate(ctx, pwq)

    def pwq_activate(self, ctx: ExecCtx, pwq: pool_workqueue) -> None:
        pool = pwq.pool
        trace = self.kernel.trace
        while pwq.inactive and pwq.nr_active < pwq.wq.max_active:
            work = pwq.inactive.popleft()
            pwq.nr_active += 1
            if trace.on:
                trace.workqueue_activate_work(ctx, work)
            if not pool.worklist:
                pool.watchdog_ts = self.kernel.now_ns
            work.state = W_ACTIVE
            pool.worklist.append(work)
            while work.linked and pwq.inactive:
                nxt = pwq.inactive.popleft()
                nxt.state = W_ACTIVE
                pool.worklist.append(nxt)
                work = nxt
            pool.kick_pool(ctx)

    # ------------------------------------------------------------------
    # BH workqueues: run from the HI/TASKLET softirq of the pool's CPU
    def kick_bh_pool(self, ctx: ExecCtx, pool: WorkerPool) -> None:
        nr = HI_SOFTIRQ if pool.nice < 0 else TASKLET_SOFTIRQ
        softirq = self.kernel.softirq
        if pool.cpu == ctx.cpu:
            softirq.raise_softirq_irqoff(ctx, nr)
        else:
            # irq_work to the target CPU, which raises the softirq there.
            self.kernel.irq_work_queue_on(pool.cpu, lambda c: softirq.raise_softirq_irqoff(c, nr))

    def bh_worker(self, ctx: ExecCtx, highpri: bool) -> bool:
        pool = self.bh_pools[ctx.cpu][1 if highpri else 0]
        if not pool.worklist:
            return False
        worker = pool.bh_worker
        assert worker is not None
        timers = self.kernel.timers
        end = timers.jiffies() + timers.msecs_to_jiffies(2)
        restarts = BH_WORKER_RESTARTS
        pool.lock.acquire(ctx)
        pool.nr_running += 1  # worker_clr_flags(worker, WORKER_PREP)
        ran = False
        while True:
            if not pool.worklist:
                break
            work = pool.worklist[0]
            if self.assign_work(ctx, pool, work, worker):
                ran = True
                self.process_scheduled_works(ctx, pool, worker)
            restarts -= 1
            if not (restarts > 0 and timers.jiffies() < end and pool.keep_working()):
                break
        pool.nr_running -= 1
        if pool.worklist:
            pool.kick_pool(ctx)
        pool.lock.release(ctx)
        return ran

    # ------------------------------------------------------------------
    # worker supply
    def worker_creation_fails(self) -> bool:
        return self.fail_worker_creation

    def arm_idle_timer(self, ctx: ExecCtx, pool: WorkerPool) -> None:
        t = self.idle_timers.get(pool.id)
        if t is None:
            t = timer_list()
            t.housekeeping = True
            t.function = lambda _t, p=pool: self._idle_cull(p)
            self.idle_timers[pool.id] = t
        if t.base_cpu < 0:
            j = self.kernel.timers.jiffies() + 300 * 250
            self.kernel.timers.mod_timer(ctx, t, j)

    def _idle_cull(self, pool: WorkerPool) -> None:
        ctx = self.kernel.current_ctx()
        pool.lock.acquire(ctx)
        now = self.kernel.now_ns
        while pool.too_many_workers() and pool.idle_list:
            w = pool.idle_list[-1]  # the one idle the longest
            if now - w.last_active_ns < 300 * 1_000_000_000:
                break
            pool.destroy_worker(ctx, w)
        pool.lock.release(ctx)

    # ------------------------------------------------------------------
    # flushing
    def flush_work(self, ctx: ExecCtx, work: work_struct, from_cancel: bool = False) -> bool:
        k = self.kernel
        if not from_cancel:
            k.sched.might_sleep(ctx, "flush_work", depth=3)
        barr = self._start_flush_work(ctx, work)
        if barr is None:
            return False
        assert barr.barrier_done is not None
        if work.bh and ctx.in_serving_softirq():
            self._bh_busy_wait(ctx, barr.barrier_done)
        else:
            wait_for_completion(ctx, barr.barrier_done,
                                what=f"flush_work({k.symbols.symbol(work.func)})")
        return True

    def _bh_busy_wait(self, ctx: ExecCtx, done: completion) -> None:
        k = self.kernel
        while not done.done:
            k.softirq.local_bh_disable(ctx)
            k.softirq.local_bh_enable(ctx)
            if not done.done:
                k.sched.busy_wait(ctx, 1000)

    def _start_flush_work(self, ctx: ExecCtx, work: work_struct) -> work_struct | None:
        pool = work.pwq.pool if work.pwq is not None else work.last_pool
        if pool is None:
            return None
        pool.lock.acquire(ctx)
        try:
            worker = None
            if work.pwq is not None and work.state in (W_INACTIVE, W_ACTIVE, W_SCHEDULED):
                pwq = work.pwq
                if pwq.pool is not pool:
                    return None
            else:
                worker = pool.busy.get(id(work))
                if worker is None or worker.current_func is not work.func:
                    return None
                pwq = worker.current_pwq  # type: ignore[assignment]
                assert pwq is not None
            barr = work_struct()
            barr.func = wq_barrier_func
            barr.is_barrier = True
            barr.bh = work.bh
            barr.barrier_done = completion()
            barr.pwq = pwq
            self.lock.acquire(ctx)
            barr.state = W_SCHEDULED
            self.lock.release(ctx)
            pwq.nr_in_flight += 1
            self.items_in_flight += 1
            wq = pwq.wq
            wq.seq += 1
            barr.seq = wq.seq
            self._inflight_add(wq, barr.seq)
            if worker is not None:
                worker.scheduled.appendleft(barr)
            else:
                lst = self._list_of(work)
                idx = lst.index(work)
                barr.linked = work.linked
                work.linked = True
                barr.state = work.state
                lst.insert(idx + 1, barr)
            return barr
        finally:
            pool.lock.release(ctx)

    def _list_of(self, work: work_struct) -> deque[work_struct]:
        pwq = work.pwq
        assert pwq is not None
        if work.state == W_INACTIVE:
            return pwq.inactive
        if work.state == W_ACTIVE:
            return pwq.pool.worklist
        for w in pwq.pool.workers + ([pwq.pool.bh_worker] if pwq.pool.bh_worker else []):
            if work in w.scheduled:
                return w.scheduled
        raise RuntimeError(f"{work!r} is on no list")

    def flush_workqueue(self, ctx: ExecCtx, wq: workqueue_struct, what: str = "flush_workqueue",
                        check: bool = True) -> None:
        k = self.kernel
        if check:
            k.sched.might_sleep(ctx, what, depth=3)
        wq.lock.acquire(ctx)
        target = wq.seq
        h = wq.inflight
        while h and h[0] not in wq.inflight_count:
            heapq.heappop(h)
        if not h or h[0] > target:
            wq.lock.release(ctx)
            return
        task = ctx.task
        wq.flushers.append((target, task))
        wq.lock.release(ctx)

        def flushed() -> bool:
            return all(t is not task for _, t in wq.flushers)

        k.sched.sleep_until(ctx, flushed, TASK_UNINTERRUPTIBLE, f"{what}({wq.name})")

    def drain_workqueue(self, ctx: ExecCtx, wq: workqueue_struct) -> None:
        k = self.kernel
        k.sched.might_sleep(ctx, "drain_workqueue", depth=3)
        wq.lock.acquire(ctx)
        wq.nr_drainers += 1
        wq.flags |= WQF_DRAINING
        wq.lock.release(ctx)
        flush_cnt = 0
        while True:
            self.flush_workqueue(ctx, wq, "drain_workqueue", check=False)
            busy = any(p.nr_in_flight or p.inactive for p in wq.pwqs)
            if not busy:
                break
            flush_cnt += 1
            if flush_cnt == 10 or (flush_cnt % 100 == 0 and flush_cnt <= 1000):
                k.log_line(4, f"workqueue {wq.name}: drain_workqueue() isn't complete after "
                              f"{flush_cnt} tries")
        wq.lock.acquire(ctx)
        wq.nr_drainers -= 1
        if not wq.nr_drainers:
            wq.flags &= ~WQF_DRAINING
        wq.lock.release(ctx)

    # ------------------------------------------------------------------
    # cancelling (try_to_grab_pending and friends)
    def try_to_grab_pending(self, ctx: ExecCtx, work: work_struct, is_dwork: bool) -> int:
        """Own PENDING: 1 if it was pending (and is now taken off its queue),
        0 if it was idle; in both cases the caller now owns PENDING."""
        k = self.kernel
        lock = self.lock
        if is_dwork and work.dwork is not None and work.state == W_TIMER:
            if k.timers.del_timer(ctx, work.dwork.timer):
                lock.acquire(ctx)
                work.state = W_GRABBED
                lock.release(ctx)
                return 1
        lock.acquire(ctx)
        st = work.state
        if st == W_IDLE:
            work.state = W_GRABBED
            lock.release(ctx)
            return 0
        if st == W_STUCK or st == W_TIMER:
            work.state = W_GRABBED
            lock.release(ctx)
            return 1
        lock.release(ctx)
        pwq = work.pwq
        if pwq is None:
            return 0
        pool = pwq.pool
        pool.lock.acquire(ctx)
        try:
            st = work.state
            if st in (W_INACTIVE, W_ACTIVE, W_SCHEDULED):
                lst = self._list_of(work)
                idx = lst.index(work)
                was_active = st != W_INACTIVE
                del lst[idx]
                # A barrier linked to this item stays where it is.
                work.linked = False
                work.pwq = None
                work.last_pool = pool
                lock.acquire(ctx)
                work.state = W_GRABBED
                lock.release(ctx)
                pwq.nr_in_flight -= 1
                self.items_in_flight -= 1
                if was_active:
                    pwq.nr_active -= 1
                    self.pwq_activate(ctx, pwq)
                self._inflight_done(ctx, pwq.wq, work.seq)
                return 1
            return 0
        finally:
            pool.lock.release(ctx)

    def release_pending(self, ctx: ExecCtx, work: work_struct) -> None:
        self.lock.acquire(ctx)
        if work.state == W_GRABBED:
            work.state = W_IDLE
        self.lock.release(ctx)

    def cancel_work(self, ctx: ExecCtx, work: work_struct, is_dwork: bool = False,
                    disable: bool = False) -> bool:
        ret = self.try_to_grab_pending(ctx, work, is_dwork)
        if disable:
            self._disable_inc(ctx, work)
        self.release_pending(ctx, work)
        return bool(ret)

    def cancel_work_sync(self, ctx: ExecCtx, work: work_struct, is_dwork: bool = False,
                         disable: bool = False, what: str = "cancel_work_sync") -> bool:
        k = self.kernel
        ret = self.cancel_work(ctx, work, is_dwork, disable=True)
        if work.bh:
            if ctx.in_hardirq():
                k.warn(ctx, f"{what}() on a BH work item from hard-IRQ context")
        else:
            k.sched.might_sleep(ctx, what, depth=3)
        if not ctx.in_hardirq():
            self.flush_work(ctx, work, from_cancel=True)
        if not disable:
            self.enable_work(ctx, work)
        return ret

    def _disable_inc(self, ctx: ExecCtx, work: work_struct) -> None:
        if work.disable >= WORK_OFFQ_DISABLE_MAX:
            self.kernel.warn(ctx, "workqueue: work disable count overflowed")
            return
        work.disable += 1

    def enable_work(self, ctx: ExecCtx, work: work_struct) -> bool:
        self.lock.acquire(ctx)
        if work.disable == 0:
            self.lock.release(ctx)
            self.kernel.warn(ctx, "workqueue: work disable count underflowed")
            return True
        work.disable -= 1
        zero = work.disable == 0
        self.lock.release(ctx)
        return zero

    # ------------------------------------------------------------------
    # delayed work (reference §7)
    def queue_delayed_work_on(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                              dwork: delayed_work, delay: int) -> bool:
        work = dwork.work
        lock = self.lock
        lock.acquire(ctx)
        if work.state != W_IDLE or work.disable:
            lock.release(ctx)
            return False
        work.state = W_GRABBED
        lock.release(ctx)
        self.__queue_delayed_work(ctx, cpu, wq, dwork, delay)
        return True

    def __queue_delayed_work(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                             dwork: delayed_work, delay: int) -> None:
        if delay <= 0:
            self.__queue_work(ctx, cpu, wq, dwork.work)
            return
        k = self.kernel
        dwork.wq = wq
        dwork.cpu = cpu
        t = dwork.timer
        if t.function is None:
            t.function = self._delayed_work_timer_fn
            t.flags |= TIMER_IRQSAFE
        self.lock.acquire(ctx)
        dwork.work.state = W_TIMER
        self.lock.release(ctx)
        k.timers.mod_timer(ctx, t, k.timers.jiffies() + delay,
                           cpu=None if cpu == WORK_CPU_UNBOUND else cpu)

    def _delayed_work_timer_fn(self, t: timer_list) -> None:
        ctx = self.kernel.current_ctx()
        dwork = container_of_timer(t)
        work = dwork.work
        self.lock.acquire(ctx)
        if work.state != W_TIMER:
            self.lock.release(ctx)
            return
        work.state = W_GRABBED
        self.lock.release(ctx)
        assert dwork.wq is not None
        self.__queue_work(ctx, dwork.cpu, dwork.wq, work)

    def mod_delayed_work_on(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                            dwork: delayed_work, delay: int) -> bool:
        work = dwork.work
        if work.disable:
            return True
        ret = self.try_to_grab_pending(ctx, work, True)
        self.__queue_delayed_work(ctx, cpu, wq, dwork, delay)
        return bool(ret)

    def flush_delayed_work(self, ctx: ExecCtx, dwork: delayed_work) -> bool:
        k = self.kernel
        k.sched.might_sleep(ctx, "flush_delayed_work", depth=3)
        work = dwork.work
        if work.state == W_TIMER and k.timers.del_timer_sync(ctx, dwork.timer):
            self.lock.acquire(ctx)
            work.state = W_GRABBED
            self.lock.release(ctx)
            assert dwork.wq is not None
            self.__queue_work(ctx, dwork.cpu, dwork.wq, work)
        return self.flush_work(ctx, work, from_cancel=True)

    # ------------------------------------------------------------------
    # introspection
    def work_busy(self, work: work_struct) -> int:
        ret = 0
        if work.state != W_IDLE:
            ret |= WORK_BUSY_PENDING
        pool = work.last_pool
        if pool is not None and id(work) in pool.busy:
            w = pool.busy[id(work)]
            if w.current_func is work.func:
                ret |= WORK_BUSY_RUNNING
        return ret

    def current_work(self, ctx: ExecCtx) -> work_struct | None:
        task = ctx.task
        if not ctx.in_task() or not task.flags & PF_WQ_WORKER or task.worker is None:
            return None
        return task.worker.current_work

    def workqueue_congested(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct) -> bool:
        if cpu == WORK_CPU_UNBOUND:
            cpu = ctx.cpu
        return bool(wq.pwq_for(cpu).inactive)

    def set_max_active(self, ctx: ExecCtx, wq: workqueue_struct, max_active: int) -> None:
        k = self.kernel
        if wq.flags & WQ_BH or wq.ordered:
            k.warn(ctx, None, where="workqueue_set_max_active")
            return
        if max_active < 1 or max_active > WQ_MAX_ACTIVE:
            k.log_line(4, f"workqueue: max_active {max_active} requested for {wq.name} is out "
                          f"of range, clamping between 1 and {WQ_MAX_ACTIVE}")
            max_active = max(1, min(max_active, WQ_MAX_ACTIVE))
        wq.saved_max_active = max_active
        wq.max_active = max_active
        for pwq in wq.pwqs:
            pwq.pool.lock.acquire(ctx)
            self.pwq_activate(ctx, pwq)
            pwq.pool.lock.release(ctx)

    def busy_items(self) -> list[str]:
        out = []
        for pool in self.pools:
            for w in pool.workers + ([pool.bh_worker] if pool.bh_worker else []):
                if w.current_work is not None:
                    fn = self.kernel.symbols.symbol(w.current_func)
                    who = w.name() if w.task is None else f"{w.task.comm}/{w.task.pid}"
                    extra = f", blocked in {w.task.wait_desc}" if w.task and w.task.wait_desc \
                        and w.task.state else ""
                    out.append(f"work {fn} running on {who}{extra}")
            for work in pool.worklist:
                out.append(f"work {self.kernel.symbols.symbol(work.func)} queued on pool "
                           f"{pool.id} ({pool.describe()})")
        for wq in self.workqueues:
            for pwq in wq.pwqs:
                for work in pwq.inactive:
                    out.append(f"work {self.kernel.symbols.symbol(work.func)} inactive on {wq.name}")
        return out

    def pending_owned(self, owns: Callable[[Any], bool]) -> list[work_struct]:
        """Pending (queued, inactive or timer-armed) items whose function belongs
        to a module that is being rolled back."""
        out: list[work_struct] = []
        for pool in self.pools:
            out.extend(w for w in pool.worklist if not w.is_barrier and owns(w.func))
        for wq in self.workqueues:
            for pwq in wq.pwqs:
                out.extend(w for w in pwq.inactive if owns(w.func))
        for t in self.kernel.timers.all_pending():
            dw = getattr(t, "_bh_container", None)
            if isinstance(dw, delayed_work) and owns(dw.work.func):
                out.append(dw.work)
        return out

    def show_one_workqueue(self, wq: workqueue_struct) -> list[str]:
        """The SysRq-t style dump of one workqueue."""
        k = self.kernel
        lines = [f"workqueue {wq.name}: flags=0x{wq.flags:x}"]
        for i, pwq in enumerate(wq.pwqs):
            if not pwq.busy():
                continue
            pool = pwq.pool
            cpus = pool.describe()
            lines.append(f"  pwq {pool.id}: {cpus} node=0 flags=0x{pool.flags:x} nice={pool.nice} "
                         f"active={pwq.nr_active} refcnt={pwq.nr_in_flight + 1}")
            running = [w for w in pool.workers if w.current_pwq is pwq]
            if running:
                lines.append("    in-flight: " + ", ".join(
                    f"{w.task.pid if w.task else 0}:{k.symbols.symbol(w.current_func)}"
                    for w in running))
            pend = [w for w in pool.worklist if w.pwq is pwq]
            if pend:
                lines.append("    pending: " + ", ".join(k.symbols.symbol(w.func) for w in pend))
            if pwq.inactive:
                lines.append("    inactive: " + ", ".join(k.symbols.symbol(w.func)
                                                          for w in pwq.inactive))
            del i
        return lines


def wq_barrier_func(work: work_struct) -> None:
    """The function of flush_work()'s barrier: complete the flusher's wait."""
    from .context import current_ctx

    assert work.barrier_done is not None
    complete(current_ctx(), work.barrier_done)


def container_of_timer(t: timer_list) -> delayed_work:
    dw = getattr(t, "_bh_container", None)
    if isinstance(dw, delayed_work):
        return dw
    raise RuntimeError("delayed_work timer without its delayed_work")
