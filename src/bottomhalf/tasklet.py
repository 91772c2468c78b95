"""Tasklets: per-CPU lists run from HI_SOFTIRQ and TASKLET_SOFTIRQ.

Mirrors the tasklet half of kernel/softirq.c and include/linux/interrupt.h
(reference §4).  Callbacks run in softirq context on the CPU that scheduled
them.  The rules:

* ``TASKLET_STATE_SCHED`` coalesces: scheduling a tasklet that is queued and
  not yet started does nothing; it is cleared just before the callback runs,
  so a tasklet may reschedule itself (exactly one more run).
* ``TASKLET_STATE_RUN`` keeps a tasklet off two CPUs at once: a CPU that finds
  it running elsewhere puts it back at the tail of its list and re-raises.
* A disabled tasklet (``count > 0``) stays queued and is retried on later
  passes; ``tasklet_enable`` does not schedule it.
* BH work items of the CPU run before the tasklets of the same pass
  (``tasklet_action`` calls the BH pool first).
* ``tasklet_kill`` first takes ``SCHED`` itself (waiting while a run is
  pending), then waits for ``RUN`` to clear, then drops ``SCHED``: a tasklet
  that reschedules itself while being killed is not queued again.  On a
  tasklet that is disabled and scheduled it waits forever, as Linux does; in
  ``sim`` that wait is reported as a hang naming the tasklet.

Two additions Linux lacks, both reported in the log: ``tasklet_enable`` on a
tasklet that is not disabled WARNs and leaves the count at 0 (Linux lets it
go negative, which disables the tasklet for good); and the retry of a
disabled or elsewhere-running tasklet does not busy-poll (see softirq.py).

Guards: ``Tasklets.bits`` (a plain lock, never held across a handler call
or a wakeup) makes the test-and-set of the state bits and the count atomic
across CPUs and protects the waiter lists; each CPU's list is only touched
by that CPU with its interrupts off.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .softirq import HI_SOFTIRQ, TASKLET_SOFTIRQ
from .task import TASK_UNINTERRUPTIBLE, Task

if TYPE_CHECKING:
    from .kernel import Kernel

TASKLET_STATE_SCHED = 0
TASKLET_STATE_RUN = 1
_SCHED = 1 << TASKLET_STATE_SCHED
_RUN = 1 << TASKLET_STATE_RUN


class tasklet_struct:  # noqa: N801 - the kernel's name
    """struct tasklet_struct.  Construct empty, then tasklet_init/tasklet_setup."""

    __slots__ = ("state", "count", "use_callback", "func", "callback", "data", "waiters",
                 "spinners", "queued_on", "__weakref__", "_bh_container")

    def __init__(self) -> None:
        self.state = 0
        self.count = 0
        self.use_callback = False
        self.func: Callable[[Any], Any] | None = None
        self.callback: Callable[[tasklet_struct], Any] | None = None
        self.data: Any = 0
        self.waiters: list[Task] = []  # wait_var_event(&t->state): sleeping
        self.spinners: list[Task] = []  # tasklet_unlock_spin_wait()
        self.queued_on = -1  # the CPU whose list holds it, -1 if none

    @property
    def handler(self) -> Callable[..., Any] | None:
        return self.callback if self.use_callback else self.func

    def __repr__(self) -> str:
        fn = self.handler
        name = getattr(fn, "__name__", None)
        return f"<tasklet_struct {name} state={self.state} count={self.count}>"


class Tasklets:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        n = kernel.ncpus
        self.vec: list[deque[tasklet_struct]] = [deque() for _ in range(n)]
        self.hi_vec: list[deque[tasklet_struct]] = [deque() for _ in range(n)]
        # The state bits are changed with atomic operations in Linux (no spinlock,
        # no preempt count): one plain lock stands for them here.
        self.bits = threading.Lock()
        self._warned_sched = False
        kernel.softirq.open_softirq(TASKLET_SOFTIRQ, self.tasklet_action)
        kernel.softirq.open_softirq(HI_SOFTIRQ, self.tasklet_hi_action)

    def name(self, t: tasklet_struct) -> str:
        """The tasklet and its function, for reports: ``my_tasklet [mod] (my_func [mod])``."""
        sym = self.kernel.symbols
        return f"{sym.symbol(t)} ({sym.symbol(t.handler)})"

    # ------------------------------------------------------------------
    # scheduling
    def schedule(self, ctx: ExecCtx, t: tasklet_struct, hi: bool = False) -> None:
        """tasklet_schedule / tasklet_hi_schedule."""
        with self.bits:
            if t.state & _SCHED:
                return
            t.state |= _SCHED
        engine = self.kernel.engine
        was_off = ctx.irqs_off
        if not was_off:
            engine.local_irq_disable(ctx)
        cpu = ctx.cpu
        t.queued_on = cpu
        if self.kernel.trace.internal_on:
            self.kernel.trace.tasklet_schedule(ctx, t, hi)
        if hi:
            self.hi_vec[cpu].append(t)
            self.kernel.softirq.raise_softirq_irqoff(ctx, HI_SOFTIRQ)
        else:
            self.vec[cpu].append(t)
            self.kernel.softirq.raise_softirq_irqoff(ctx, TASKLET_SOFTIRQ)
        if not was_off:
            engine.local_irq_enable(ctx)

    def tasklet_action(self, ctx: ExecCtx) -> bool:
        # BH work items of this CPU run first (workqueue_softirq_action())
        progress = False
        if self.kernel.wq.bh_pools[ctx.cpu][0].worklist:
            progress = self.kernel.bh_work_action(ctx, highpri=False)
        return self._action_common(ctx, self.vec, TASKLET_SOFTIRQ) or progress

    def tasklet_hi_action(self, ctx: ExecCtx) -> bool:
        progress = False
        if self.kernel.wq.bh_pools[ctx.cpu][1].worklist:
            progress = self.kernel.bh_work_action(ctx, highpri=True)
        return self._action_common(ctx, self.hi_vec, HI_SOFTIRQ) or progress

    def _action_common(self, ctx: ExecCtx, vec: list[deque[tasklet_struct]], nr: int) -> bool:
        """tasklet_action_common(): run this CPU's list once, FIFO."""
        k = self.kernel
        engine = k.engine
        cpu = ctx.cpu
        engine.local_irq_disable(ctx)
        mine = vec[cpu]
        if not mine:
            engine.local_irq_enable(ctx)
            return False
        todo = list(mine)
        mine.clear()
        engine.local_irq_enable(ctx)
        bits = self.bits
        softirq = k.softirq
        call = k.call_handler
        trace = k.trace
        progress = False
        for t in todo:
            with bits:
                st = t.state
                runnable = not st & _RUN and t.count == 0
                if runnable:
                    # tasklet_trylock() and tasklet_clear_sched() in one step.
                    # Taking the waiters is written out here and at
                    # tasklet_unlock() below, as in _clear_sched(): a shared
                    # helper costs 2-5% of bench_tasklet_throughput.
                    t.state = (st | _RUN) & ~_SCHED
                    t.queued_on = -1
                    woken = t.waiters
                    spun = t.spinners
                    if woken:
                        t.waiters = []
                    if spun:
                        t.spinners = []
            if runnable:
                if woken or spun:
                    self._wake(woken, spun)
                if st & _SCHED:
                    # run it (inlined: this loop is the tasklet hot path)
                    if trace.on:
                        trace.tasklet_entry(ctx, t)
                    if t.use_callback:
                        call(ctx, t.callback, (t,), "tasklet")  # type: ignore[arg-type]
                    else:
                        call(ctx, t.func, (t.data,), "tasklet")  # type: ignore[arg-type]
                    if trace.on:
                        trace.tasklet_exit(ctx, t)
                else:
                    self._sched_not_set(ctx, t)
                with bits:  # tasklet_unlock()
                    t.state &= ~_RUN
                    woken = t.waiters
                    spun = t.spinners
                    if woken:
                        t.waiters = []
                    if spun:
                        t.spinners = []
                if woken or spun:
                    self._wake(woken, spun)
                progress = True
                if softirq.any_stalled:
                    # A CPU retrying this tasklet can now make progress.
                    for other in range(k.ncpus):
                        if other != cpu:
                            softirq.unstall(other)
                continue
            # Running elsewhere or disabled: back to the tail, retry later.
            engine.local_irq_disable(ctx)
            vec[cpu].append(t)
            softirq.raise_softirq_irqoff_quiet(ctx, nr)
            engine.local_irq_enable(ctx)
        return progress

    def _clear_sched(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_clear_sched(): drop SCHED and wake its waiters; WARN_ONCE if unset."""
        with self.bits:
            if t.state & _SCHED:
                t.state &= ~_SCHED
                t.queued_on = -1
                woken, t.waiters = t.waiters, []
                spun, t.spinners = t.spinners, []
                was_set = True
            else:
                was_set = False
        if was_set:
            self._wake(woken, spun)
        else:
            self._sched_not_set(ctx, t)

    def _sched_not_set(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        if not self._warned_sched:
            self._warned_sched = True
            k = self.kernel
            kind = "callback" if t.use_callback else "func"
            k.warn(ctx, f"tasklet SCHED state not set: {kind} "
                        f"{k.symbols.symbol(t.handler, True)}")

    def _wake(self, waiters: list[Task], spinners: list[Task]) -> None:
        """wake_up_var(&t->state)."""
        k = self.kernel
        for w in waiters:
            k.sched.wake_up_process(w)
        for s in spinners:
            k.engine.unpark(s)

    # ------------------------------------------------------------------
    # disable / enable / wait / kill
    def disable_nosync(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        self.bits.acquire()
        t.count += 1
        self.bits.release()

    def disable(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_disable(): count++, then sleep until it is not running."""
        self.disable_nosync(ctx, t)
        self.unlock_wait(ctx, t, "tasklet_disable")

    def disable_in_atomic(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_disable_in_atomic(): count++, then spin until it is not running."""
        self.disable_nosync(ctx, t)
        self.unlock_spin_wait(ctx, t)

    def enable(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_enable(): count--; a queued tasklet runs at the next pass."""
        self.bits.acquire()
        if t.count <= 0:
            self.bits.release()
            self.kernel.warn(ctx, f"bottomhalf: tasklet_enable({self.name(t)}) on a tasklet "
                                  "that is not disabled: count left at 0 (Linux would make it "
                                  "negative and the tasklet would never run again)")
            return
        t.count -= 1
        queued = t.queued_on
        self.bits.release()
        if t.count == 0 and queued >= 0:
            self.kernel.softirq.unstall(queued)

    def unlock_wait(self, ctx: ExecCtx, t: tasklet_struct,
                    what: str = "tasklet_unlock_wait") -> None:
        """Sleep until the tasklet is not running (wait_var_event on its state)."""
        k = self.kernel
        k.sched.might_sleep(ctx, what, depth=3)
        lock = self.bits
        task = ctx.task

        def not_running() -> bool:
            lock.acquire()
            try:
                if not t.state & _RUN:
                    return True
                if task not in t.waiters:
                    t.waiters.append(task)
                return False
            finally:
                lock.release()

        k.sched.sleep_until(ctx, not_running, TASK_UNINTERRUPTIBLE,
                            f"{what}({self.name(t)}) until it stops running")

    def unlock_spin_wait(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_unlock_spin_wait(): spin until the tasklet is not running."""
        lock = self.bits
        while True:
            lock.acquire()
            if not t.state & _RUN:
                lock.release()
                return
            if ctx.task not in t.spinners:
                t.spinners.append(ctx.task)
            lock.release()
            self.kernel.engine.spin_park(
                ctx, f"tasklet_unlock_spin_wait({self.name(t)}) until it stops running")

    def kill(self, ctx: ExecCtx, t: tasklet_struct) -> None:
        """tasklet_kill(): own SCHED (waiting out a pending run), wait for RUN, drop SCHED."""
        k = self.kernel
        if ctx.in_interrupt():
            k.log_line(5, "Attempt to kill tasklet from interrupt")
        lock = self.bits
        task = ctx.task
        name = self.name(t)

        def owned_sched() -> bool:
            lock.acquire()
            try:
                if not t.state & _SCHED:
                    t.state |= _SCHED  # test_and_set_bit succeeded: SCHED is ours
                    return True
                if task not in t.waiters:
                    t.waiters.append(task)
                if t.count:
                    task.wait_desc = (f"tasklet_kill({name}): the tasklet is disabled and "
                                      "scheduled, so it can never run and stop being "
                                      "scheduled (call tasklet_enable() before tasklet_kill())")
                else:
                    task.wait_desc = f"tasklet_kill({name}) until its pending run is over"
                return False
            finally:
                lock.release()

        if not owned_sched():
            k.sched.might_sleep(ctx, "tasklet_kill", depth=3)
            k.sched.sleep_until(ctx, owned_sched, TASK_UNINTERRUPTIBLE,
                                f"tasklet_kill({name}) until its pending run is over")
        self.unlock_wait(ctx, t, "tasklet_kill")
        self._clear_sched(ctx, t)

    # ------------------------------------------------------------------
    def queued_count(self) -> int:
        return sum(len(v) for v in self.vec) + sum(len(v) for v in self.hi_vec)

    def all_queued(self) -> list[tuple[int, bool, tasklet_struct]]:
        out: list[tuple[int, bool, tasklet_struct]] = []
        for cpu in range(self.kernel.ncpus):
            out.extend((cpu, True, t) for t in self.hi_vec[cpu])
            out.extend((cpu, False, t) for t in self.vec[cpu])
        return out

    def remove_owned(self, owns: Callable[[Any], bool]) -> list[tasklet_struct]:
        """Drop queued tasklets whose handler belongs to an unloading module."""
        removed: list[tasklet_struct] = []
        for vecs in (self.vec, self.hi_vec):
            for q in vecs:
                keep = [t for t in q if not owns(t.handler)]
                removed.extend(t for t in q if owns(t.handler))
                q.clear()
                q.extend(keep)
        for t in removed:
            t.state &= ~_SCHED
            t.queued_on = -1
        return removed
