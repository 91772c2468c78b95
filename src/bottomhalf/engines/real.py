"""``real``: OS threads and the wall clock.

Every kernel task (``ksoftirqd/N``, kworkers, ``irq/N-name``, insmod) is an OS
thread; one timer thread fires hrtimers (the tick that drives timer_list,
usleep_range wake-ups).  A virtual CPU is not a thread: it is an identity
plus two locks that give Linux's per-CPU guarantees between the threads that
act for it:

* ``irq_lock`` - held while a context of this CPU has local interrupts off
  (and so during every hard-IRQ handler): hard interrupts of one CPU never
  run concurrently, and ``spin_lock_irqsave`` keeps them out.
* ``softirq_lock`` (``cpu_lock``) - held while this CPU serves softirqs or a
  context of it has bottom halves disabled: the softirqs of one CPU never
  run concurrently.

``raise_irq`` runs the handlers in the calling thread, as the interrupted
CPU would, and then the softirqs it raised, inline at ``irq_exit``: nothing
changes thread.  An interrupt for a CPU whose interrupts are off is left
pending and run by the context that turns them back on.

Time is read only here (``time.monotonic_ns``); waits use locks and
condition variables, never polling sleeps, except ``run_until_idle``.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..context import ExecCtx, _local, add_foreign_adopter, remove_foreign_adopter
from ..errors import IdleTimeout, KernelStateError
from ..task import TASK_DEAD, TASK_RUNNING, Task
from .base import Engine, Halted, HrTimer, IrqFn, RawLock

if TYPE_CHECKING:
    from ..kernel import Kernel

_SPIN_NS = 100_000  # busy-waits shorter than this spin; longer ones sleep
_TIMER_SPIN_NS = 150_000  # the hrtimer thread sleeps until this close to an expiry, then polls


def _sleep0() -> None:
    time.sleep(0)


# Give the GIL to another thread that wants it and take it back: sched_yield()
# drops the GIL around the system call.  time.sleep(0) would too, but it is a
# real sleep, rounded up by the thread's timer slack (50-70 us on Linux).
_yield_gil = getattr(os, "sched_yield", None) or _sleep0


class RealRawLock(RawLock):
    __slots__ = ("_lock", "owner", "preempt", "contended")

    def __init__(self, preempt: bool = True) -> None:
        self._lock = threading.Lock()
        self.owner: ExecCtx | None = None
        self.preempt = preempt
        self.contended = False

    def acquire(self, ctx: ExecCtx) -> None:
        if self.preempt:
            ctx.preempt_count += 1
        lock = self._lock
        if not lock.acquire(False):
            self.contended = True
            lock.acquire()
        self.owner = ctx

    def try_acquire(self, ctx: ExecCtx) -> bool:
        if self._lock.acquire(False):
            self.owner = ctx
            if self.preempt:
                ctx.preempt_count += 1
            return True
        return False

    def release(self, ctx: ExecCtx) -> None:
        self.owner = None
        self._lock.release()
        if self.preempt:
            ctx.preempt_count -= 1
        if self.contended:
            # Someone blocked on us.  Without this, the releasing thread keeps
            # the GIL and usually takes the lock straight back (a convoy: the
            # waiter wakes only to find it held again).  Backing off lets the
            # waiter in and gives it time to do a batch of work: a real
            # sleep(0), which the timer slack makes tens of microseconds,
            # queues about twice as many work items per second as a bare
            # sched_yield() here (bench/bench_work_throughput.py).
            self.contended = False
            _sleep0()


class _RealCPU:
    __slots__ = ("id", "irq_lock", "softirq_lock", "pending", "idle", "in_irq")

    def __init__(self, cpu: int) -> None:
        self.id = cpu
        self.irq_lock = threading.Lock()
        self.softirq_lock = RealRawLock(preempt=False)
        self.pending: deque[tuple[IrqFn, Any]] = deque()
        self.idle: Task = None  # type: ignore[assignment]
        self.in_irq = 0


class _ThreadCtx(threading.local):
    """Contexts a plain (non-kernel) thread uses when it interrupts a CPU."""

    by_cpu: dict[int, ExecCtx] | None = None


class RealEngine(Engine):
    name = "real"

    def __init__(self, kernel: Kernel, ncpus: int, seed: int) -> None:
        super().__init__(kernel, ncpus, seed)
        self.cpus = [_RealCPU(i) for i in range(ncpus)]
        self._boot_ns = time.monotonic_ns()
        self._timers: list[tuple[int, int, HrTimer]] = []
        self._timer_seq = 0
        self._timer_cv = threading.Condition()
        self._timer_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._tasks: list[Task] = []
        self._foreign = _ThreadCtx()
        self._adopted: list[ExecCtx] = []
        self.halting = False
        self._started = False

    # ------------------------------------------------------------------
    def boot(self) -> None:
        for cpu in self.cpus:
            idle = self.kernel.sched.make_idle_task(cpu.id)
            idle.state = TASK_RUNNING
            cpu.idle = idle
        add_foreign_adopter(self._adopt)

    def boot_ctx(self) -> ExecCtx:
        return self.cpus[0].idle.ctx

    def start(self) -> None:
        self._timer_thread = threading.Thread(target=self._timer_main, name="bh-hrtimer",
                                              daemon=True)
        self._timer_thread.start()
        self._started = True

    def halt(self) -> None:
        self.halting = True
        with self._timer_cv:
            self._timer_cv.notify_all()
        for task in list(self._tasks):
            self._force_wake(task)
        deadline = time.monotonic() + 5.0
        for th in [*self._threads, self._timer_thread]:
            if th is not None and th is not threading.current_thread():
                th.join(max(0.0, deadline - time.monotonic()))
        remove_foreign_adopter(self._adopt)
        for ctx in self._adopted:
            ctx.detached = True

    def _force_wake(self, task: Task) -> None:
        lock = task.e_lock
        if lock is None:
            return
        with lock:
            if task.e_sleeping:
                task.e_sleeping = False
                task.e_park.release()

    def _adopt(self) -> ExecCtx | None:
        """A plain Python thread calls the API: treat it as a user task on CPU 0."""
        if self.halting:
            return None
        task = self.kernel.sched.new_task(None, threading.current_thread().name[:15] or "python3",
                                         0, user=True)
        task.state = TASK_RUNNING
        self._init_task_sync(task)
        _local.ctx = task.ctx
        self._adopted.append(task.ctx)
        return task.ctx

    # ------------------------------------------------------------------
    def now_ns(self) -> int:
        return time.monotonic_ns() - self._boot_ns

    def task_cpu_ns(self, task: Task) -> int | None:
        """The wall clock stands for a thread's CPU time: the workqueue only
        takes differences over stretches where the worker did not sleep, and
        reading a thread's CPU clock costs a system call on every work item."""
        return time.monotonic_ns() - self._boot_ns

    def busy_wait(self, ctx: ExecCtx, ns: int) -> None:
        if self.halting:
            raise Halted()
        end = time.perf_counter_ns() + ns
        if ns >= _SPIN_NS:
            time.sleep(max(0.0, (ns - 50_000) / 1e9))
        while time.perf_counter_ns() < end:
            pass

    # ------------------------------------------------------------------
    # hrtimers: one thread, a heap, a condition variable
    def hrtimer_start(self, timer: HrTimer, expires_ns: int) -> None:
        with self._timer_cv:
            self._timer_seq += 1
            entry = (expires_ns, self._timer_seq, timer)
            timer.e_entry = entry
            timer.expires_ns = expires_ns
            timer.active = True
            heapq.heappush(self._timers, entry)
            if self._timers[0] is entry:
                self._timer_cv.notify()

    def hrtimer_cancel(self, timer: HrTimer) -> bool:
        with self._timer_cv:
            was = timer.active
            timer.active = False
            timer.e_entry = None
            return was

    def _timer_main(self) -> None:
        cv = self._timer_cv
        heap = self._timers
        while not self.halting:
            due: list[HrTimer] = []
            spin = False
            with cv:
                while not self.halting:
                    while heap and heap[0][2].e_entry is not heap[0]:
                        heapq.heappop(heap)
                    if not heap:
                        cv.wait()
                        continue
                    wait_ns = heap[0][0] - self.now_ns()
                    if wait_ns <= 0:
                        break
                    if wait_ns <= _TIMER_SPIN_NS:
                        spin = True
                        break
                    # Sleep until just before it is due: the OS wakes a sleeping
                    # thread tens of microseconds late (timer slack).
                    cv.wait((wait_ns - _TIMER_SPIN_NS) / 1e9)
                if spin:
                    due = []
                else:
                    now = self.now_ns()
                    while heap and (heap[0][2].e_entry is not heap[0] or heap[0][0] <= now):
                        _, _, t = heapq.heappop(heap)
                        if t.e_entry is not None and t.active and t.expires_ns <= now:
                            t.e_entry = None
                            t.active = False
                            due.append(t)
            if spin:
                # The last stretch: yield the GIL until the expiry, outside the
                # lock so that others can still arm timers.
                _yield_gil()
                continue
            for t in due:
                try:
                    self.deliver_irq(t.cpu, t.fn, t)
                except Halted:
                    return

    # ------------------------------------------------------------------
    # threads
    def _init_task_sync(self, task: Task) -> None:
        task.e_lock = threading.Lock()
        task.e_park = threading.Lock()
        task.e_park.acquire()
        task.e_sleeping = False
        task.e_done = threading.Event()

    def start_task(self, task: Task) -> None:
        if self.halting:
            raise KernelStateError("the kernel is halting")
        self._init_task_sync(task)
        task.state = TASK_RUNNING
        th = threading.Thread(target=self._thread_main, args=(task,), name=task.comm, daemon=True)
        task.e_thread = th
        self._threads.append(th)
        self._tasks.append(task)
        th.start()

    def _thread_main(self, task: Task) -> None:
        _local.ctx = task.ctx
        try:
            self.kernel.sched.run_task(task)
        finally:
            task.state = TASK_DEAD
            _local.ctx = None
            task.e_done.set()
            try:
                self._tasks.remove(task)
            except ValueError:
                pass

    def schedule(self, ctx: ExecCtx) -> None:
        task = ctx.task
        lock = task.e_lock
        if lock is None:
            self._init_task_sync(task)
            lock = task.e_lock
        while True:
            if self.halting:
                raise Halted()
            with lock:
                if task.state == TASK_RUNNING:
                    task.e_sleeping = False
                    return
                task.e_sleeping = True
            task.e_park.acquire()

    def wake_up(self, task: Task) -> bool:
        if task.state == TASK_RUNNING:
            return False  # ttwu's early check: already awake, nothing to do
        lock = task.e_lock
        if lock is None:
            if task.state == TASK_RUNNING or task.state == TASK_DEAD:
                return False
            task.state = TASK_RUNNING
            return True
        with lock:
            st = task.state
            if st == TASK_RUNNING or st == TASK_DEAD:
                return False
            task.state = TASK_RUNNING
            if task.e_sleeping:
                task.e_sleeping = False
                task.e_park.release()
        return True

    def yield_cpu(self, ctx: ExecCtx) -> None:
        _yield_gil()

    def spin_park(self, ctx: ExecCtx, why: str) -> None:
        """A real spin: give other threads a moment, then let the caller re-check."""
        if self.halting:
            raise Halted()
        time.sleep(0)

    def unpark(self, task: Task) -> None:
        pass  # spinners poll

    def run_task_to_completion(self, task: Task) -> None:
        self.start_task(task)
        task.e_done.wait()

    # ------------------------------------------------------------------
    # interrupts
    def deliver_irq(self, cpu: int, fn: IrqFn, arg: Any) -> None:
        if self.halting:
            raise Halted()
        c = self.cpus[cpu]
        c.pending.append((fn, arg))
        ctx = _local.ctx
        if ctx is not None and ctx.cpu == cpu and ctx.irqs_off:
            return  # run when this context turns interrupts back on
        self._drain(c)

    def _drain(self, c: _RealCPU) -> None:
        while c.pending:
            if not c.irq_lock.acquire(False):
                return  # the holder runs them when it turns interrupts on
            try:
                while c.pending:
                    fn, arg = c.pending.popleft()
                    self._run_irq(c, fn, arg)
            finally:
                c.irq_lock.release()

    def _run_irq(self, c: _RealCPU, fn: IrqFn, arg: Any) -> None:
        """Run one hard interrupt on ``c``; the caller holds ``c.irq_lock``.
        A thread that is not running on ``c`` takes it on a context of its own
        for that CPU."""
        ctx = _local.ctx
        if ctx is None or ctx.cpu != c.id:
            by = self._foreign.by_cpu
            if by is None:
                by = self._foreign.by_cpu = {}
            ctx = by.get(c.id)
            if ctx is None:
                ctx = ExecCtx(self.kernel, c.idle, c.id, c.idle.ctx.preempt_count)
                by[c.id] = ctx
        ctx.irqs_off = True
        try:
            self._run_irq_nested(c, ctx, fn, arg)
        finally:
            ctx.irqs_off = False

    def local_irq_disable(self, ctx: ExecCtx) -> None:
        if ctx.irqs_off:
            return
        self.cpus[ctx.cpu].irq_lock.acquire()
        ctx.irqs_off = True

    def local_irq_enable(self, ctx: ExecCtx) -> None:
        if not ctx.irqs_off:
            return
        c = self.cpus[ctx.cpu]
        # Interrupts that arrived meanwhile run now, on this context.
        while c.pending:
            fn, arg = c.pending.popleft()
            self._run_irq_nested(c, ctx, fn, arg)
        ctx.irqs_off = False
        c.irq_lock.release()
        if c.pending:
            self._drain(c)

    def _run_irq_nested(self, c: _RealCPU, ctx: ExecCtx, fn: IrqFn, arg: Any) -> None:
        """Run one hard interrupt on ``ctx`` (of CPU ``c``), whose interrupts are off."""
        saved = _local.ctx
        _local.ctx = ctx
        c.in_irq += 1
        try:
            self.kernel.do_irq(ctx, fn, arg)
        finally:
            c.in_irq -= 1
            _local.ctx = saved

    def new_raw_lock(self) -> RawLock:
        return RealRawLock()

    def cpu_lock(self, cpu: int) -> RawLock:
        return self.cpus[cpu].softirq_lock

    # ------------------------------------------------------------------
    # driving
    def run_for(self, ns: int) -> None:
        time.sleep(ns / 1e9)

    def run_until_idle(self, timeout_ns: int) -> None:
        deadline = time.monotonic_ns() + timeout_ns
        quiet = 0
        while True:
            if self.kernel.is_idle():
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0
            if time.monotonic_ns() >= deadline:
                raise IdleTimeout(f"not idle after {timeout_ns / 1e9:g} s; still busy:",
                                  self.kernel.busy_report())
            time.sleep(0.0005)

    def cpus_idle(self) -> bool:
        for c in self.cpus:
            if c.in_irq or c.pending or c.softirq_lock.owner is not None:
                return False
        return True

    def cpu_states(self) -> list[str]:
        out = []
        for t in list(self._tasks):
            if t.state == TASK_RUNNING and not t.exited and t.worker is None \
                    and not t.comm.startswith("ksoftirqd"):
                out.append(f"{t.comm}/{t.pid} running")
        return out

    def advance_idle(self, ns: int) -> None:
        pass
