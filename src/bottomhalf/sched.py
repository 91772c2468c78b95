"""Scheduler-facing services shared by both engines.

Mirrors the parts of kernel/sched/core.c, kernel/kthread.c and
kernel/time/timer.c (schedule_timeout, msleep) that deferred work touches:

* kernel threads (``kthread_run``) and the idle tasks ``swapper/N``;
* ``schedule()``, with the workqueue hooks Linux calls from it
  (``wq_worker_sleeping`` before a worker blocks, ``wq_worker_running`` when
  it runs again);
* ``schedule_timeout``/``msleep`` on the timer wheel, ``usleep_range`` on an
  hrtimer, and the busy-waits ``ndelay``/``udelay``/``mdelay``;
* ``might_sleep()`` and its splat (CONFIG_DEBUG_ATOMIC_SLEEP), rate-limited to
  once per second as ``__might_resched`` does.

The engine only parks and resumes; the rules live here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenlet import GreenletExit

from .context import PREEMPT_OFFSET, ExecCtx
from .engines.base import Halted
from .task import (
    PF_IDLE,
    PF_KTHREAD,
    PF_WQ_WORKER,
    TASK_RUNNING,
    TASK_UNINTERRUPTIBLE,
    Task,
)

if TYPE_CHECKING:
    from .kernel import Kernel

MAX_SCHEDULE_TIMEOUT = (1 << 63) - 1
NSEC_PER_USEC = 1000
NSEC_PER_MSEC = 1_000_000


class Sched:
    """Tasks, sleeping and waking, and the atomic-sleep checks."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.tasks: dict[int, Task] = {}
        self._next_kpid = 3  # 1 is init, 2 is kthreadd
        self._next_upid = 1000
        self._last_splat_ns: int | None = None
        self._busy_ns = [0] * kernel.ncpus
        self._switches = 0
        self._forks = 0

    # ------------------------------------------------------------------
    # tasks
    def make_idle_task(self, cpu: int) -> Task:
        """The idle task of ``cpu`` (``swapper/N``, pid 0), which runs with
        preemption disabled as Linux's idle loop does."""
        return Task(
            self.kernel, f"swapper/{cpu}", 0, cpu, None,
            flags=PF_IDLE | PF_KTHREAD, preempt_count=1,
        )

    def new_task(
        self, fn: Callable[[], Any] | None, comm: str, cpu: int | None = None, *,
        bound: bool = True, user: bool = False, flags: int = PF_KTHREAD,
    ) -> Task:
        if user:
            pid = self._next_upid
            self._next_upid += 1
            flags = 0
        else:
            pid = self._next_kpid
            self._next_kpid += 1
        task = Task(self.kernel, comm, pid, 0 if cpu is None else cpu, fn,
                    bound=bound and cpu is not None, flags=flags)
        self.tasks[pid] = task
        self._forks += 1
        return task

    def kthread_run(
        self, fn: Callable[[], Any], comm: str, cpu: int | None = None, *,
        flags: int = PF_KTHREAD,
    ) -> Task:
        """Create and start a kernel thread (bound to ``cpu`` if given)."""
        task = self.new_task(fn, comm, cpu, flags=flags)
        self.kernel.engine.start_task(task)
        return task

    def run_task(self, task: Task) -> None:
        """The body of every task, called by the engine on the task's stack."""
        try:
            task.result = task.fn() if task.fn is not None else None
        except (Halted, GreenletExit):
            pass  # the kernel is halting: unwind quietly
        except BaseException as exc:  # noqa: BLE001 - reported, kernel keeps running
            task.exc = exc
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)) and not getattr(
                exc, "_bh_reported", False
            ):
                if task.flags & PF_KTHREAD:
                    self.kernel.oops(task.ctx, exc, f"kernel thread {task.comm}")
        finally:
            task.exited = True
            self.tasks.pop(task.pid, None)
            if task.on_exit is not None:
                task.on_exit(task)

    def find(self, comm: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.comm == comm]

    # ------------------------------------------------------------------
    # sleeping and waking
    def schedule(self, ctx: ExecCtx) -> None:
        """Give up the CPU until woken if the task's state is not RUNNING.

        From atomic context Linux reports "scheduling while atomic" and then
        schedules anyway with its preempt count reset.  Here the report is the
        same, but the context keeps its CPU and waits in place (see
        docs/linux-differences.md); timed sleeps become busy-waits of the same
        length in :meth:`schedule_timeout` and :meth:`hrtimer_sleep`.
        """
        task = ctx.task
        if task.state == TASK_RUNNING:
            return
        if ctx.preempt_count:
            self.schedule_bug(ctx)
        worker = task.worker if task.flags & PF_WQ_WORKER else None
        if worker is not None:
            worker.pool.worker_sleeping(ctx, worker)
        self._switches += 1
        task.nvcsw += 1
        task.sleep_start_ns = self.kernel.now_ns
        self.kernel.engine.schedule(ctx)
        if worker is not None:
            worker.pool.worker_running(ctx, worker)

    def wake_up_process(self, task: Task) -> bool:
        return self.kernel.engine.wake_up(task)

    def sleep_until(self, ctx: ExecCtx, cond: Callable[[], bool], state: int, why: str) -> None:
        """``___wait_event``: sleep until ``cond()`` holds; the waker must
        call :meth:`wake_up_process` after making it true."""
        task = ctx.task
        old = task.wait_desc
        task.wait_desc = why
        try:
            while True:
                task.state = state
                if cond():
                    break
                self.schedule(ctx)
        finally:
            task.state = TASK_RUNNING
            task.wait_desc = old

    def schedule_timeout(self, ctx: ExecCtx, timeout: int, state: int = TASK_UNINTERRUPTIBLE,
                         why: str = "schedule_timeout") -> int:
        """Sleep ``timeout`` jiffies on a timer_list (kernel/time/timer.c);
        returns the jiffies left if woken early."""
        task = ctx.task
        task.state = state
        if timeout == MAX_SCHEDULE_TIMEOUT:
            self.schedule(ctx)
            return MAX_SCHEDULE_TIMEOUT
        timers = self.kernel.timers
        if self.atomic(ctx):
            self._busy_wait_atomic(ctx, timers.timeout_ns(ctx, timeout))
            task.state = TASK_RUNNING
            return 0
        expire = timeout + timers.jiffies()
        t = timers.process_timer(task)
        timers.mod_timer(ctx, t, expire)
        old = task.wait_desc
        task.wait_desc = task.wait_desc or why
        try:
            self.schedule(ctx)
        finally:
            task.wait_desc = old
            timers.del_timer_sync(ctx, t, internal=True)
            task.state = TASK_RUNNING
        left = expire - timers.jiffies()
        return left if left > 0 else 0

    def msleep(self, ctx: ExecCtx, msecs: int) -> None:
        timeout = self.kernel.timers.msecs_to_jiffies(msecs) + 1
        while timeout:
            timeout = self.schedule_timeout(ctx, timeout, why=f"msleep({msecs})")

    def hrtimer_sleep(self, ctx: ExecCtx, ns: int, why: str, min_ns: int | None = None) -> None:
        """Sleep on an hrtimer of this CPU (usleep_range, fsleep): it fires at
        ``ns`` from now, or at the first local timer interrupt after ``min_ns``."""
        task = ctx.task
        if self.atomic(ctx):
            self._busy_wait_atomic(ctx, ns)
            return
        woke = [False]

        def hrtimer_wakeup(irq_ctx: ExecCtx, timer: Any) -> None:
            woke[0] = True
            self.wake_up_process(task)

        hr = self.kernel.timers.hr
        timer = hr.init(hrtimer_wakeup, ctx.cpu, "hrtimer_wakeup")
        now = self.kernel.engine.now_ns()
        hr.start_range_ns(ctx, timer, now + (ns if min_ns is None else min_ns), now + ns)
        try:
            self.sleep_until(ctx, lambda: woke[0], TASK_UNINTERRUPTIBLE, why)
        finally:
            hr.cancel(ctx, timer)

    def _busy_wait_atomic(self, ctx: ExecCtx, ns: int) -> None:
        """A timed sleep in atomic context cannot give the CPU away: report the
        schedule() it would do (preemption off), then burn the time instead."""
        if ctx.preempt_count:
            self.schedule_bug(ctx, depth=3)
        self.busy_wait(ctx, ns)

    def busy_wait(self, ctx: ExecCtx, ns: int) -> None:
        """Burn ``ns`` of CPU (mdelay/udelay/ndelay)."""
        if ns <= 0:
            return
        task = ctx.task
        self._busy_ns[ctx.cpu] += ns
        engine = self.kernel.engine
        nested = task.busy_since >= 0  # a busy-wait in an interrupt of a busy-wait
        if not nested:
            task.busy_since = engine.now_ns()
        try:
            engine.busy_wait(ctx, ns)
        finally:
            if not nested:
                task.busy_since = -1
                task.se_runtime += ns

    # accounting for /proc/stat and the workqueue CPU-hog check
    def runtime(self, task: Task) -> int:
        """sum_exec_runtime: CPU time burnt so far, the busy-wait in progress included.

        sim counts busy-waits; real approximates it with the wall clock (see
        RealEngine.task_cpu_ns)."""
        cpu_ns = self.kernel.engine.task_cpu_ns(task)
        if cpu_ns is not None:
            return cpu_ns
        since = task.busy_since
        if since < 0:
            return task.se_runtime
        return task.se_runtime + max(0, self.kernel.now_ns - since)

    def cpu_busy_ns(self, cpu: int) -> int:
        return self._busy_ns[cpu]

    def context_switches(self) -> int:
        return self._switches

    def forks(self) -> int:
        return self._forks

    def nr_running(self) -> int:
        return sum(1 for t in self.tasks.values() if t.state == TASK_RUNNING)

    # ------------------------------------------------------------------
    # might_sleep and friends
    @staticmethod
    def atomic(ctx: ExecCtx) -> bool:
        """Sleeping is not allowed: preemption or interrupts are off (the idle
        loop's own preempt count excepted)."""
        return bool(ctx.preempt_count or ctx.irqs_off) and not (
            ctx.task.is_idle and not ctx.in_interrupt())

    def schedule_bug(self, ctx: ExecCtx, depth: int = 2) -> None:
        """__schedule_bug(): BUG: scheduling while atomic; the stack is dumped
        from ``depth`` frames up (the caller of schedule())."""
        from . import report

        task = ctx.task
        k = self.kernel
        # schedule() has already done its own preempt_disable() when
        # schedule_debug() prints the count, so Linux shows one more (one held
        # spinlock reads 0x00000002, a tasklet 0x00000101).
        k.log_line(3, f"BUG: scheduling while atomic: {task.comm}/{task.pid}/"
                      f"0x{ctx.preempt_count + PREEMPT_OFFSET:08x}")
        k.log_line(4, "Modules linked in:" + k.modules.linked_in())
        report.dump_stack(k, ctx, sys._getframe(depth), 4)
        k.add_taint("W")

    def might_sleep(self, ctx: ExecCtx, what: str, depth: int = 2) -> bool:
        """``__might_sleep``: splat if sleeping is not allowed here.

        Returns True when the context is atomic (the caller may decide how to
        degrade), False when sleeping is fine.
        """
        if not self.atomic(ctx):
            return False
        now = self.kernel.now_ns
        if self._last_splat_ns is None or now - self._last_splat_ns >= 1_000_000_000:
            self._last_splat_ns = now
            self.kernel.report_atomic_sleep(ctx, what, sys._getframe(depth))
        return True


