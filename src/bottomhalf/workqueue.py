"""Workqueues: work items, workqueues, queueing and execution.

Mirrors include/linux/workqueue.h and the queueing half of
kernel/workqueue.c (6.12; reference §5, §7).  Work functions run in process
context on kworker threads or, for ``WQ_BH`` queues, in the HI/TASKLET
softirq of the queueing CPU.  The rest of the subsystem lives in sibling
modules, one per sub-concept:

* :mod:`bottomhalf.wqpool` - worker pools, workers, concurrency management
  and the CPU-hog check at the scheduler tick;
* :mod:`bottomhalf.wqflush` - flush, drain, cancel, disable/enable and
  delayed work;
* :mod:`bottomhalf.wqrescue` - worker creation, mayday and rescuers, idle
  culling;
* :mod:`bottomhalf.wqwatchdog` - the lockup watchdog and the SysRq-t style
  dump (``show_all_workqueues``);
* :mod:`bottomhalf.wqview` - /sys/kernel/debug/workqueue and the
  wq_monitor.py counters.

The rules kept exactly:

* ``queue_work`` test-and-sets PENDING: an item already pending is left where
  it is and the call returns False.  A disabled item is not queued.
* PENDING is cleared just before the function runs, so an item queued while
  it runs returns True and runs once more afterwards - on the pool that is
  running it, after the current run, never concurrently (non-reentrancy).
* Each pool_workqueue admits ``max_active`` items; the rest wait, in order,
  on its inactive list and are activated as items complete.  A bound queue
  has one pwq per CPU (max_active per CPU); an unbound queue has one pwq for
  the whole machine (one NUMA node), so max_active is system-wide.
* A queue being drained or destroyed accepts only chained queueing (from its
  own work items); anything else WARNs once and is dropped with PENDING left
  set, while ``queue_work`` still returns True.

Simplifications: one NUMA node and one affinity pod, so an unbound queue has
one pwq; flush colours are counted per workqueue (``color_inflight``) rather
than per pwq, and are not limited to WORK_NR_COLORS; local IRQs are disabled
around queueing only while tracing, where the trace flags show it; the
``cond_resched()`` after each item is made only on sim
(the real engine's threads are preempted by the OS).  ``dispatch_ns`` is
ours: the time an item was handed to a worker, which workqueue.rst's
timelines call START.

Locking legend (as workqueue.c's):
  W: ``Workqueues.lock`` (a raw lock) - the PENDING test-and-set and the
     off-queue state of an item (``state``, ``disable``, ``last_pool``).
  L: ``pool.lock`` - the lists an item sits on, ``pwq.nr_active``,
     ``pwq.inactive``, workers' ``current_*`` and ``scheduled``.
  Q: ``wq.lock`` - a workqueue's flags, its flush colours and its flushers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .locking import completion
from .task import PF_WQ_WORKER
from .timer import INITIAL_JIFFIES, TICK_NSEC, TIMER_IRQSAFE, timer_list
from .wqdefs import *  # noqa: F403 - re-exported: workqueue.h's constants live there
from .wqdefs import (
    INT_MAX,
    PWQ_NR_STATS,
    PWQ_STAT_COMPLETED,
    PWQ_STAT_CPU_TIME,
    PWQ_STAT_STARTED,
    W_ACTIVE,
    W_GRABBED,
    W_IDLE,
    W_INACTIVE,
    W_SCHEDULED,
    W_STUCK,
    WORK_CPU_UNBOUND,
    WQ_BH,
    WQ_CPU_INTENSIVE,
    WQ_DFL_ACTIVE,
    WQ_FREEZABLE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_MEM_RECLAIM,
    WQ_NAME_LEN,
    WQ_PERCPU,
    WQ_POWER_EFFICIENT,
    WQ_SYSFS,
    WQ_UNBOUND,
    WQF_BH_ALLOWS,
    WQF_DESTROYING,
    WQF_DRAINING,
    WQF_ORDERED,
)
from .wqflush import FlushCancel, delayed_work_timer_fn
from .wqpool import (
    WORKER_CPU_INTENSIVE,
    BhPools,
    HogCheck,
    Worker,
    WorkerPool,
)
from .wqrescue import Forward
from .wqview import Introspect
from .wqwatchdog import Watchdog

if TYPE_CHECKING:
    from .kernel import Kernel

class work_struct:  # noqa: N801 - the kernel's name
    """struct work_struct.  Construct empty, then INIT_WORK()."""

    __slots__ = ("func", "state", "pwq", "last_pool", "color", "disable", "dwork", "linked",
                 "barrier_done", "barrier_task", "is_barrier", "bh", "dispatch_ns",
                 "__weakref__", "_bh_container")

    def __init__(self) -> None:
        self.dwork: delayed_work | None = None
        self.init(None)

    def init(self, func: Callable[[work_struct], Any] | None) -> None:
        """__INIT_WORK(): a fresh, idle item with no history (the containing
        delayed_work, if any, is kept)."""
        self.func = func
        self.state = W_IDLE
        self.pwq: pool_workqueue | None = None  # L: set while queued
        self.last_pool: WorkerPool | None = None  # W: the pool it last ran on
        self.color = 0  # the flush colour of the queued instance
        self.disable = 0  # W: disable depth
        self.linked = False  # L: the next entry of my list is a barrier linked to me
        self.barrier_done: completion | None = None
        self.barrier_task: Any = None
        self.is_barrier = False
        self.bh = False  # WORK_OFFQ_BH: last queued on a BH pool
        # When the item was handed to a worker: a worker was woken for it at
        # the head of the worklist, or a worker took it (tests and views).
        self.dispatch_ns = -1

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
        self.timer.function = delayed_work_timer_fn
        self.timer.flags = TIMER_IRQSAFE
        self.wq: workqueue_struct | None = None
        self.cpu = WORK_CPU_UNBOUND

    def init(self, func: Callable[[work_struct], Any], timer_flags: int) -> None:
        """__INIT_DELAYED_WORK(): INIT_WORK() and set the timer up to queue it.
        The timer must not be pending (the caller takes it off its wheel)."""
        self.work.init(func)
        self.timer.function = delayed_work_timer_fn
        self.timer.flags = TIMER_IRQSAFE | timer_flags

    def __repr__(self) -> str:
        return f"<delayed_work {getattr(self.work.func, '__name__', None)}>"


class pool_workqueue:  # noqa: N801 - the kernel's name
    """struct pool_workqueue: links a workqueue to the pool serving a CPU."""

    __slots__ = ("wq", "pool", "nr_active", "inactive", "nr_in_flight", "stats")

    def __init__(self, wq: workqueue_struct, pool: WorkerPool) -> None:
        self.wq = wq
        self.pool = pool
        self.nr_active = 0  # L
        self.inactive: deque[work_struct] = deque()  # L
        self.nr_in_flight = 0  # L: queued, inactive or running (barriers included)
        self.stats = [0] * PWQ_NR_STATS

    def busy(self) -> bool:
        return bool(self.nr_in_flight or self.nr_active or self.inactive)


class workqueue_struct:  # noqa: N801 - the kernel's name
    """struct workqueue_struct."""

    def __init__(self, wqs: Workqueues, name: str, flags: int, max_active: int) -> None:
        self.wqs = wqs
        self.name = name
        self.flags = flags  # Q
        self.saved_max_active = max_active
        self.max_active = max_active
        self.pwqs: list[pool_workqueue] = []  # per CPU (bound, BH) or one (unbound)
        self.rescuer: Worker | None = None
        self.maydays: list[pool_workqueue] = []
        self.lock = wqs.kernel.engine.new_raw_lock()
        # Flush colours (Linux's work colours): every queued instance takes the
        # current colour; flush_workqueue() moves to a new one and waits until
        # no instance of an older colour is in flight.
        self.color = 0  # Q
        self.color_inflight: dict[int, int] = {}  # Q: colour -> instances in flight
        self.flushers: list[tuple[int, Any]] = []
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


class Workqueues(FlushCancel, Forward, Watchdog, HogCheck, BhPools, Introspect):
    """The workqueue subsystem of one kernel: pools, queues, the API's logic."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        # PENDING and the off-queue state are changed with atomic bit operations
        # in Linux: a plain lock stands for them (no spinlock, no preempt count).
        self.bits = threading.Lock()
        self.mayday_lock = kernel.engine.new_raw_lock()  # wq_mayday_lock: every wq.maydays
        n = kernel.ncpus
        self.pools: list[WorkerPool] = []
        self.bh_pools: list[list[WorkerPool]] = []
        self.cpu_pools: list[list[WorkerPool]] = []
        for cpu in range(n):  # pool IDs as workqueue_init_early() assigns them
            self.bh_pools.append([self._new_pool(cpu, 0, True), self._new_pool(cpu, -20, True)])
            self.cpu_pools.append([self._new_pool(cpu, 0, False), self._new_pool(cpu, -20, False)])
        self.unbound_pools: dict[int, WorkerPool] = {}
        self.workqueues: list[workqueue_struct] = []
        self.system: dict[str, workqueue_struct] = {}
        self.fail_worker_creation = False
        self.items_in_flight = 0
        self.started_total = 0  # work items started, for the watchdog's progress check
        self.busy_workers: dict[Worker, None] = {}  # workers executing an item (tick check)
        self.hog_counts: dict[Any, int] = {}  # wq_cpu_intensive_report's per-function counts
        self.sim = kernel.engine.name == "sim"
        Watchdog.__init__(self)

    def _new_pool(self, cpu: int, nice: int, bh: bool) -> WorkerPool:
        pool = WorkerPool(self, len(self.pools), cpu, nice, bh)
        self.pools.append(pool)
        return pool

    def unbound_pool(self, nice: int) -> WorkerPool:
        """get_unbound_pool(): one pool per attribute set (here: per nice level)."""
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
        """workqueue_init_early() + workqueue_init(): system queues, first workers."""
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
            wq = self.alloc_workqueue(None, name, flags, max_active)
            assert wq is not None
            self.system[var] = wq
        for cpu in range(self.kernel.ncpus):
            for pool in self.cpu_pools[cpu]:
                pool.create_worker(None)
        for pool in self.unbound_pools.values():
            if not pool.workers:
                pool.create_worker(None)
        timers = self.kernel.timers
        timers.tick_hooks.append(self.wq_worker_tick)
        timers.tick_due.append(self.tick_due)

    # ------------------------------------------------------------------
    # creation and destruction
    def alloc_workqueue(self, ctx: ExecCtx | None, name: str, flags: int, max_active: int,
                        owner: str | None = None) -> workqueue_struct | None:
        k = self.kernel
        if flags & WQ_BH:
            if flags & ~WQF_BH_ALLOWS:
                self._warn_once(ctx, "__alloc_workqueue:bh_flags", None, "__alloc_workqueue")
                return None
            if max_active:
                self._warn_once(ctx, "__alloc_workqueue:bh_max_active", None,
                                "__alloc_workqueue")
                return None
        if flags & WQ_POWER_EFFICIENT and k.params.get("workqueue.power_efficient"):
            flags |= WQ_UNBOUND
        if len(name) >= WQ_NAME_LEN:
            name = name[: WQ_NAME_LEN - 1]
            if k.log.once("workqueue:__alloc_workqueue:name_len"):  # pr_warn_once
                k.log_line(4, f"workqueue: name exceeds WQ_NAME_LEN. Truncating to: {name}")
        if flags & WQ_BH:
            max_active = INT_MAX
        else:
            max_active = self.clamp_max_active(max_active or WQ_DFL_ACTIVE, name)
        if flags & WQF_ORDERED and flags & WQ_SYSFS:
            # workqueue_sysfs_register() refuses ordered queues: the allocation fails.
            k.warn(ctx, None, where="workqueue_sysfs_register")
            return None
        wq = workqueue_struct(self, name, flags, max_active)
        wq.owner = owner
        hi = 1 if flags & WQ_HIGHPRI else 0
        if flags & WQ_BH:
            wq.pwqs = [pool_workqueue(wq, self.bh_pools[c][hi]) for c in range(k.ncpus)]
        elif flags & WQ_UNBOUND:
            pool = self.unbound_pool(-20 if hi else 0)
            if k.booted and not pool.workers:
                pool.create_worker(ctx)
            wq.pwqs = [pool_workqueue(wq, pool)]
        else:
            wq.pwqs = [pool_workqueue(wq, self.cpu_pools[c][hi]) for c in range(k.ncpus)]
        self.workqueues.append(wq)
        if flags & WQ_MEM_RECLAIM:
            self.init_rescuer(ctx, wq)
        return wq

    def clamp_max_active(self, max_active: int, name: str) -> int:
        """wq_clamp_max_active()."""
        if max_active < 1 or max_active > WQ_MAX_ACTIVE:
            self.kernel.log_line(4, f"workqueue: max_active {max_active} requested for {name} "
                                    f"is out of range, clamping between 1 and {WQ_MAX_ACTIVE}")
        return max(1, min(max_active, WQ_MAX_ACTIVE))

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
            self.mayday_lock.acquire(ctx)  # no mayday is sent to it from here on
            rescuer, wq.rescuer = wq.rescuer, None
            self.mayday_lock.release(ctx)
            assert rescuer.task is not None
            k.kthread_stop(ctx, rescuer.task)
        for pwq in wq.pwqs:
            if pwq.busy():
                k.warn(ctx, None, where="destroy_workqueue")
                k.log_line(4, f"destroy_workqueue: {wq.name} has the following busy pwq")
                for line in self.show_pwq(pwq):
                    k.log_line(6, line)
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
        if work.state != W_IDLE:
            return False  # PENDING already set: nothing to do (no lock needed to see it)
        with self.bits:  # test_and_set_bit(WORK_STRUCT_PENDING_BIT)
            if work.state != W_IDLE or work.disable:
                return False
            work.state = W_GRABBED
        self._queue_work(ctx, cpu, wq, work)
        return True

    def _queue_work(self, ctx: ExecCtx, req_cpu: int, wq: workqueue_struct,
                    work: work_struct) -> None:
        """__queue_work(): put an item whose PENDING the caller owns on its pool."""
        k = self.kernel
        if wq.flags & (WQF_DESTROYING | WQF_DRAINING):  # destroyed queues keep DESTROYING
            if not self.is_chained_work(ctx, wq):
                sym = k.symbols.symbol
                self._warn_once(ctx, "__queue_work",
                               f"workqueue: cannot queue {sym(work.func)} on wq {wq.name}",
                               "__queue_work")
                work.state = W_STUCK
                return
        if work.func is None:
            k.warn(ctx, "queue_work() on a work_struct that was never initialised (INIT_WORK)")
            work.state = W_IDLE
            return
        cpu = ctx.cpu if req_cpu == WORK_CPU_UNBOUND else req_cpu
        pwqs = wq.pwqs
        pwq = pwqs[0] if len(pwqs) == 1 else pwqs[cpu]  # wq.pwq_for(cpu), inlined
        pool = pwq.pool
        # Non-reentrancy: if it is still running on another pool of this
        # queue, queue it there so it runs after the current run.
        last = work.last_pool
        if last is not None and last is not pool and not wq.ordered:
            last.lock.acquire(ctx)
            worker = last.busy.get(id(work))
            if worker is not None and worker.current_func is work.func and \
                    worker.current_pwq is not None and worker.current_pwq.wq is wq:
                pwq = worker.current_pwq
                pool = last
            last.lock.release(ctx)
        trace = k.trace
        # queue_work_on() runs with local IRQs off; only a trace can tell, so
        # only then is the cost paid.
        irq_off = trace.on and not ctx.irqs_off
        if irq_off:
            k.engine.local_irq_disable(ctx)
        pool.lock.acquire(ctx)
        if trace.on:
            trace.workqueue_queue_work(ctx, work, wq, req_cpu, pool.cpu)
        color = work.color = wq.color
        ci = wq.color_inflight
        ci[color] = ci.get(color, 0) + 1
        work.pwq = pwq
        work.dispatch_ns = -1
        pwq.nr_in_flight += 1
        self.items_in_flight += 1
        if not pwq.inactive and pwq.nr_active < wq.max_active:
            pwq.nr_active += 1
            if not pool.worklist:
                pool.watchdog_ts = k.now_ns
                if not self.watchdog_armed:
                    self.arm_watchdog(ctx)
            if trace.on:
                trace.workqueue_activate_work(ctx, work)
            work.state = W_ACTIVE
            pool.worklist.append(work)
            pool.kick_pool(ctx)
        else:
            work.state = W_INACTIVE
            pwq.inactive.append(work)
        pool.lock.release(ctx)
        if irq_off:
            k.engine.local_irq_enable(ctx)

    def is_chained_work(self, ctx: ExecCtx, wq: workqueue_struct) -> bool:
        """Is the caller a worker (or rescuer) executing an item of ``wq``?"""
        task = ctx.task
        if not ctx.in_task() or not task.flags & PF_WQ_WORKER:
            return False
        w = task.worker
        return w is not None and w.current_pwq is not None and w.current_pwq.wq is wq

    def _warn_once(self, ctx: ExecCtx | None, site: str, message: str | None,
                   where: str) -> None:
        """WARN_ONCE / WARN_ON_ONCE in function ``where``: one report per boot per
        Linux call site, ``site`` a fixed name for it (whatever the queue or the
        API that got there), through printk's once-flags as the _once macros."""
        if self.kernel.log.once("workqueue:" + site):
            self.kernel.warn(ctx, message, where=where)

    # ------------------------------------------------------------------
    # execution (called by workers, with pool.lock held)
    def assign_work(self, ctx: ExecCtx, pool: WorkerPool, work: work_struct,
                    worker: Worker) -> bool:
        """Give ``work`` and its linked barriers to ``worker``, unless another
        worker of the pool already executes it: then to that one (non-reentrancy)."""
        collision = pool.busy.get(id(work))
        if collision is not None and collision is not worker \
                and collision.current_func is work.func:
            self._move_linked(pool.worklist, work, collision.scheduled, W_SCHEDULED)
            return False
        self._move_linked(pool.worklist, work, worker.scheduled, W_SCHEDULED)
        return True

    def _move_linked(self, src: deque[work_struct], work: work_struct,
                     dst: deque[work_struct], state: int) -> None:
        """move_linked_works(): move ``work`` and the barriers linked behind it
        (each the next entry of ``src``) to the tail of ``dst``."""
        i = 0 if src[0] is work else src.index(work)
        del src[i]
        while True:
            dst.append(work)
            work.state = state
            if not work.linked or i >= len(src):
                return
            work = src[i]
            del src[i]

    def process_scheduled_works(self, ctx: ExecCtx, pool: WorkerPool, worker: Worker) -> None:
        scheduled = worker.scheduled
        if scheduled:
            pool.watchdog_ts = self.kernel.engine.now_ns()
        while scheduled:
            self.process_one_work(ctx, pool, worker, scheduled[0])

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
        func = worker.current_func = work.func
        worker.current_pwq = pwq
        worker.current_color = work.color
        worker.desc = wq.name
        task = worker.task
        now = k.engine.now_ns()
        need_tick = False
        if task is not None:
            worker.current_at = start_rt = k.sched.runtime(task)
            self.busy_workers[worker] = None
            thresh_us = k.params["workqueue.cpu_intensive_thresh_us"]
            if thresh_us:
                # The CPU-hog check runs at the tick: make sure one comes by the
                # jiffy first_tick_jiffy() names (computed inline: hot path).
                ahead = 1 if self.sim else max(1, -(-thresh_us * 1000 // TICK_NSEC))
                j = worker.tick_jiffy = INITIAL_JIFFIES + now // TICK_NSEC + ahead
                tick = k.timers.ticks[ctx.cpu]
                need_tick = not tick.active or tick.expires > (j - INITIAL_JIFFIES) * TICK_NSEC
        if work.dispatch_ns < 0:
            work.dispatch_ns = now
        is_barrier = work.is_barrier
        if wq.flags & WQ_CPU_INTENSIVE:
            pool.worker_set_flags(worker, WORKER_CPU_INTENSIVE)
        if pool.worklist and not pool.nr_running:
            pool.kick_pool(ctx)
        # Record the last pool, then clear PENDING (set_work_pool_and_clear_pending,
        # a plain store under pool->lock in Linux too): from here on queue_work()
        # queues a new instance, and finds the pool that runs this one.
        work.pwq = None
        work.last_pool = pool
        work.bh = pool.is_bh
        work.state = W_IDLE
        pwq.stats[PWQ_STAT_STARTED] += 1
        self.started_total += 1
        pool.lock.release(ctx)
        if need_tick:
            k.timers.program_tick(ctx, ctx.cpu)
        trace = k.trace
        if trace.on:
            trace.workqueue_execute_start(ctx, work)
        pc = ctx.preempt_count
        k.call_handler(ctx, func, (work,), "work")  # type: ignore[arg-type]
        if trace.on:
            trace.workqueue_execute_end(ctx, work, func)
        pwq.stats[PWQ_STAT_COMPLETED] += 1
        if task is not None and not self.sim:
            # real measures CPUtime (sim samples it at the tick, as Linux does)
            pwq.stats[PWQ_STAT_CPU_TIME] += max(0, k.sched.runtime(task) - start_rt) // 1000
        if task is not None and ctx.preempt_count != pc:
            k.log_line(3, f"BUG: workqueue leaked atomic, lock or RCU: {task.comm}"
                          f"[{task.pid}]")
            k.log_line(3, f"     preempt=0x{ctx.preempt_count:08x} lock=0->0 RCU=0->0 "
                          f"workfn={k.symbols.symbol(func)}")
            k.dump_stack(ctx, 3)
            ctx.preempt_count = pc
        if task is not None and self.sim:
            # cond_resched(): a task woken meanwhile on this CPU (a worker
            # whose sleep ended) runs before this worker takes its next item.
            # Threads of the real engine are preempted by the OS instead.
            k.engine.yield_cpu(ctx)
        pool.lock.acquire(ctx)
        if worker.flags & WORKER_CPU_INTENSIVE:
            pool.worker_clr_flags(worker, WORKER_CPU_INTENSIVE)
        del pool.busy[id(work)]
        if task is not None:
            del self.busy_workers[worker]
        color = worker.current_color
        worker.current_work = None
        worker.current_func = None
        worker.current_pwq = None
        self.pwq_dec_nr_in_flight(ctx, pwq, not is_barrier, color)

    def pwq_dec_nr_in_flight(self, ctx: ExecCtx, pwq: pool_workqueue, counted: bool,
                             color: int) -> None:
        """An item of flush colour ``color`` left ``pwq`` (run or grabbed; pool.lock
        held): if it ``counted`` in nr_active, activate the oldest inactive item;
        if it was the last of its colour, wake the flushers waiting for it."""
        pwq.nr_in_flight -= 1
        self.items_in_flight -= 1
        if counted:
            pwq.nr_active -= 1
            if pwq.inactive:
                self.pwq_activate(ctx, pwq)
        wq = pwq.wq
        ci = wq.color_inflight
        n = ci[color] - 1
        if n:
            ci[color] = n
            return
        del ci[color]
        if wq.flushers:
            oldest = min(ci) if ci else wq.color + 1
            done = [f for f in wq.flushers if f[0] < oldest]
            if done:
                wq.flushers = [f for f in wq.flushers if f[0] >= oldest]
                for _, t in done:
                    self.kernel.sched.wake_up_process(t)

    def pwq_activate(self, ctx: ExecCtx, pwq: pool_workqueue) -> None:
        """pwq_activate_first_inactive() while max_active allows."""
        while pwq.inactive and pwq.nr_active < pwq.wq.max_active:
            self.pwq_activate_work(ctx, pwq, pwq.inactive[0])

    def pwq_activate_work(self, ctx: ExecCtx, pwq: pool_workqueue, work: work_struct) -> None:
        """Move an inactive item, with the barriers linked to it, to the worklist,
        where it counts in nr_active; then kick the pool (pool.lock held)."""
        pool = pwq.pool
        pwq.nr_active += 1
        if self.kernel.trace.on:
            self.kernel.trace.workqueue_activate_work(ctx, work)
        if not pool.worklist:
            pool.watchdog_ts = self.kernel.now_ns
            if not self.watchdog_armed:
                self.arm_watchdog(ctx)
        self._move_linked(pwq.inactive, work, pool.worklist, W_ACTIVE)
        pool.kick_pool(ctx)
