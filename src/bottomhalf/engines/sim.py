"""``sim``: deterministic virtual time on N virtual CPUs.

Each kernel task is a greenlet; one *hub* greenlet owns the event heap and is
the only place that decides what runs next.  A CPU runs one context at a time:
its current task, with hard IRQs and softirqs nested on the task's own stack
(as Linux runs them on the interrupted stack).  Runnable tasks of a CPU take
turns in FIFO order, each running until it blocks, sleeps or finishes.

Virtual time moves only through the time primitives: ``busy_wait`` occupies
the CPU (an interrupt arriving meanwhile preempts it and the remaining time
is served afterwards), hrtimers fire as interrupts at their exact
nanosecond, and everything that happens without a time primitive happens at
one instant.

Events live in one heap ordered by ``(time, seq)``.  When several CPUs have
something to do at the same instant, :meth:`SimEngine.choose` picks which
goes first: by default with the kernel's seeded ``random.Random``, or with a
chooser installed by a tool that explores or replays interleavings.  Events
of one CPU at one instant keep their sequence order.

Simplifications, all documented in docs/linux-differences.md: no preemption
between tasks, code between time primitives takes no time, and a task that
sleeps in atomic context keeps its CPU (it waits in place) instead of
corrupting the scheduler state as Linux would.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import greenlet

from ..context import _local
from ..errors import IdleTimeout, KernelHang, KernelStateError
from ..task import TASK_DEAD, TASK_RUNNING, TASK_UNINTERRUPTIBLE, Task
from .base import Engine, Halted, HrTimer, IrqFn, RawLock

if TYPE_CHECKING:
    from ..context import ExecCtx
    from ..kernel import Kernel

# Event kinds (entry[2]).  An entry is a list so it can be cancelled in place.
_RESUME = 0  # entry[4] = task; valid while task.e_token is the entry
_IRQ = 1  # entry[4] = (fn, arg)
_HRTIMER = 2  # entry[4] = HrTimer; valid while timer.e_entry is the entry
_BUSY = 3  # entry[4] = task: the end of a busy-wait
_BUSY_LAST = 1 << 62  # added to a busy-wait end's sequence number
_FIRED = -2
_CANCELLED = -1

# The message a parked greenlet receives when it should look at its condition
# again; any other message is an interrupt (fn, arg) to take on its stack.
POKE = object()


class _SimCPU:
    __slots__ = ("id", "curr", "rq", "idle", "pending_irqs", "need_resched")

    def __init__(self, cpu: int) -> None:
        self.id = cpu
        self.curr: Task = None  # type: ignore[assignment]
        self.idle: Task = None  # type: ignore[assignment]
        self.rq: deque[Task] = deque()
        self.pending_irqs: deque[tuple[IrqFn, Any]] = deque()
        self.need_resched = False


class SimRawLock(RawLock):
    """A raw spinlock on virtual CPUs: a contended acquire spins, occupying the
    CPU in virtual time until the owner releases it."""

    __slots__ = ("engine", "owner", "spinners", "preempt")

    def __init__(self, engine: SimEngine, preempt: bool = True) -> None:
        self.engine = engine
        self.owner: ExecCtx | None = None
        self.spinners: list[Task] = []
        self.preempt = preempt

    def try_acquire(self, ctx: ExecCtx) -> bool:
        if self.owner is None:
            self.owner = ctx
            if self.preempt:
                ctx.preempt_count += 1
            return True
        return False

    def acquire(self, ctx: ExecCtx) -> None:
        if self.preempt:
            ctx.preempt_count += 1
        if self.owner is None:
            self.owner = ctx
            return
        while self.owner is not None:
            self.spinners.append(ctx.task)
            self.engine.spin_park(ctx, f"spinning on a lock held by {self.owner.task.comm}")
        self.owner = ctx

    def release(self, ctx: ExecCtx) -> None:
        self.owner = None
        if self.preempt:
            ctx.preempt_count -= 1
        if self.spinners:
            waiters, self.spinners = self.spinners, []
            for t in waiters:
                self.engine.unpark(t)


class SimEngine(Engine):
    name = "sim"

    def __init__(self, kernel: Kernel, ncpus: int, seed: int) -> None:
        super().__init__(kernel, ncpus, seed)
        self.rng = random.Random(seed)
        self.now = 0
        self._heap: list[list[Any]] = []
        self._seq = 0
        self.cpus = [_SimCPU(i) for i in range(ncpus)]
        self._hub: greenlet.greenlet | None = None
        self._driver: greenlet.greenlet | None = None
        self._cpu_locks = [SimRawLock(self, preempt=False) for _ in range(ncpus)]
        # A tool exploring interleavings may replace this: it gets the list of
        # CPUs with something ready at this instant and returns an index.
        self.chooser: Callable[[list[int]], int] | None = None
        self.choices = 0
        self.dispatches = 0
        self._running = False
        self._booted = False
        self._halting = False
        self._owner = 0
        self._inbox: deque[Callable[[], None]] = deque()  # work from other threads
        # Tasks in spin_park: (cpu, virtual time the spin began), for the lockup reports.
        self._spin_since: dict[Task, tuple[int, int]] = {}

    # ------------------------------------------------------------------
    # lifecycle
    def boot(self) -> None:
        # Greenlets belong to the thread that makes them: this one drives the kernel.
        self._owner = threading.get_ident()
        self._hub = greenlet.greenlet(self._hub_main)
        for cpu in self.cpus:
            idle = self.kernel.sched.make_idle_task(cpu.id)
            idle.state = TASK_RUNNING
            idle.e_g = greenlet.greenlet(self._idle_main(idle), parent=self._hub)
            cpu.idle = idle
            cpu.curr = idle
        self._booted = True

    def boot_ctx(self) -> ExecCtx:
        return self.cpus[0].idle.ctx

    def halt(self) -> None:
        """Unwind every task still parked (raising Halted in it), then forget them."""
        self._halting = True
        self._heap.clear()
        me = greenlet.getcurrent()
        live = [t.e_g for t in list(self.kernel.sched.tasks.values())]
        live += [c.idle.e_g for c in self.cpus]
        for g in live:
            if g is not None and g and not g.dead:
                g.parent = me
                try:
                    g.throw(Halted())
                except (Halted, greenlet.GreenletExit):
                    pass
        for cpu in self.cpus:
            cpu.rq.clear()
            cpu.pending_irqs.clear()
        self._booted = False

    def advance_idle(self, ns: int) -> None:
        self.now += ns

    def cpus_idle(self) -> bool:
        return self.idle_cpus_and_queues_empty()

    # ------------------------------------------------------------------
    # time
    def now_ns(self) -> int:
        return self.now

    def _post(self, t: int, kind: int, cpu: int, obj: Any) -> list[Any]:
        self._seq += 1
        # The end of a busy-wait sorts after everything else due at the same
        # instant: an interrupt due when an mdelay() ends is taken before the
        # delay returns, whichever was programmed first.
        entry = [t, self._seq + _BUSY_LAST if kind == _BUSY else self._seq, kind, cpu, obj]
        heapq.heappush(self._heap, entry)
        return entry

    def busy_wait(self, ctx: ExecCtx, ns: int) -> None:
        if ns <= 0:
            return
        if not self._running or self._halting:
            self._check_in_kernel()
        task = ctx.task
        hub = self._hub
        end = self.now + ns
        self._seq += 1
        entry = [end, self._seq + _BUSY_LAST, _BUSY, ctx.cpu, task]  # self._post(), inlined
        heapq.heappush(self._heap, entry)
        while True:
            if self._halting:
                raise Halted()
            msg = hub.switch()  # type: ignore[union-attr]
            _local.ctx = ctx
            if msg is not POKE:
                # An interrupt preempted the busy-wait: serve it, then the rest.
                start = self.now
                self._take_irq(ctx, msg)
                spent = self.now - start
                if spent:
                    entry[2] = _CANCELLED
                    end += spent
                    entry = self._post(end, _BUSY, ctx.cpu, task)
            if entry[2] == _FIRED:
                return

    def hrtimer_start(self, timer: HrTimer, expires_ns: int) -> None:
        if timer.e_entry is not None:
            timer.e_entry[2] = _CANCELLED
        timer.expires_ns = expires_ns
        timer.active = True
        timer.e_entry = self._post(max(expires_ns, self.now), _HRTIMER, timer.cpu, timer)

    def hrtimer_cancel(self, timer: HrTimer) -> bool:
        was = timer.active
        if timer.e_entry is not None:
            timer.e_entry[2] = _CANCELLED
            timer.e_entry = None
        timer.active = False
        return was

    # ------------------------------------------------------------------
    # threads
    def start_task(self, task: Task) -> None:
        task.e_g = greenlet.greenlet(self._task_main(task), parent=self._hub)
        task.state = TASK_UNINTERRUPTIBLE  # until its first wakeup
        self.wake_up(task)

    def _task_main(self, task: Task) -> Callable[[Any], None]:
        def main(msg: Any) -> None:
            ctx = task.ctx
            _local.ctx = ctx
            while True:
                if msg is not POKE:
                    self._take_irq(ctx, msg)
                if task.e_go:
                    break
                msg = self._hub.switch()  # type: ignore[union-attr]
                _local.ctx = ctx
            task.e_go = False
            self.kernel.sched.run_task(task)
            # The task is dead: give the CPU to the next one.
            task.state = TASK_DEAD
            self._switch_away(self.cpus[task.cpu])
            _local.ctx = None

        return main

    def _idle_main(self, idle: Task) -> Callable[[Any], None]:
        def main(msg: Any) -> None:
            ctx = idle.ctx
            while True:
                _local.ctx = ctx
                if msg is not POKE:
                    self._take_irq(ctx, msg)
                msg = self._hub.switch()  # type: ignore[union-attr]

        return main

    def _switch_away(self, cpu: _SimCPU) -> None:
        """The current task of ``cpu`` leaves it: run the next runnable task."""
        if cpu.rq:
            nxt = cpu.rq.popleft()
            nxt.e_queued = False
            cpu.curr = nxt
            nxt.e_token = self._post(self.now, _RESUME, cpu.id, nxt)
        else:
            cpu.curr = cpu.idle
            cpu.need_resched = False
            if cpu.pending_irqs:
                self._post_pending_irqs(cpu)

    def _post_pending_irqs(self, cpu: _SimCPU) -> None:
        while cpu.pending_irqs:
            fn, arg = cpu.pending_irqs.popleft()
            self._post(self.now, _IRQ, cpu.id, (fn, arg))

    def schedule(self, ctx: ExecCtx) -> None:
        task = ctx.task
        if task.state == TASK_RUNNING:
            return
        self._check_in_kernel()
        cpu = self.cpus[ctx.cpu]
        if ctx.preempt_count or ctx.irqs_off:
            # Sleeping in atomic context (already reported by might_sleep):
            # the context cannot give its CPU away, so it waits in place.
            self.spin_park(ctx, task.wait_desc or "sleeping in atomic context")
            return
        self._switch_away(cpu)
        self._park(task)

    def _park(self, task: Task) -> None:
        """Wait (parked in the hub) until a RESUME for this task is dispatched.

        Interrupts delivered meanwhile run nested on this stack; a RESUME that
        arrives while a nested frame is parked is remembered in ``e_go``.
        """
        ctx = task.ctx
        hub = self._hub
        task.e_go = False
        while True:
            if self._halting:
                raise Halted()
            msg = hub.switch()  # type: ignore[union-attr]
            _local.ctx = ctx
            if msg is not POKE:
                self._take_irq(ctx, msg)
            if task.e_go:
                task.e_go = False
                return

    def spin_park(self, ctx: ExecCtx, why: str) -> None:
        """Wait on the CPU (occupying it) until :meth:`unpark` or a wakeup."""
        self._check_in_kernel()
        task = ctx.task
        task.e_sleeping = True
        old_desc = task.wait_desc
        task.wait_desc = why
        outermost = task not in self._spin_since  # an interrupt may spin on top of a spin
        if outermost:
            self._spin_since[task] = (ctx.cpu, self.now)
        try:
            self._park(task)
        finally:
            task.e_sleeping = False
            task.wait_desc = old_desc
            if outermost:
                del self._spin_since[task]

    def spinning(self) -> list[tuple[int, Task, int]]:
        return [(cpu, task, since) for task, (cpu, since) in self._spin_since.items()
                if task.state == TASK_RUNNING and not task.exited]

    def unpark(self, task: Task) -> None:
        if task.e_sleeping and task.e_token is None:
            task.e_token = self._post(self.now, _RESUME, task.cpu, task)

    def wake_up(self, task: Task) -> bool:
        if task.state == TASK_RUNNING:
            return False
        if task.state == TASK_DEAD:
            return False
        task.state = TASK_RUNNING
        if task.e_sleeping:
            # Waiting in place on its CPU (atomic sleep): let it continue.
            self.unpark(task)
            return True
        cpu = self.cpus[task.cpu]
        if cpu.curr is task or task.e_queued:
            return True
        if not task.bound:
            cpu = self._select_cpu(task)
            task.cpu = cpu.id
            task.ctx.cpu = cpu.id
        if cpu.curr is cpu.idle:
            cpu.curr = task
            cpu.need_resched = True
            task.e_token = self._post(self.now, _RESUME, cpu.id, task)
        else:
            task.e_queued = True
            cpu.rq.append(task)
        return True

    def _select_cpu(self, task: Task) -> _SimCPU:
        prev = self.cpus[task.cpu]
        if prev.curr is prev.idle:
            return prev
        for cpu in self.cpus:
            if cpu.curr is cpu.idle:
                return cpu
        return prev

    def yield_cpu(self, ctx: ExecCtx) -> None:
        cpu = self.cpus[ctx.cpu]
        if not cpu.rq or ctx.preempt_count or ctx.irqs_off:
            return
        task = ctx.task
        task.e_queued = True
        cpu.rq.append(task)
        self._switch_away(cpu)
        self._park(task)

    # ------------------------------------------------------------------
    # interrupts
    def deliver_irq(self, cpu: int, fn: IrqFn, arg: Any) -> None:
        ctx = _local.ctx
        c = self.cpus[cpu]
        if ctx is not None and ctx.cpu == cpu and self._running and c.curr is ctx.task:
            # Raised by code running on the target CPU itself.
            if ctx.irqs_off:
                c.pending_irqs.append((fn, arg))
            else:
                self._take_irq(ctx, (fn, arg))
            return
        self._post(self.now, _IRQ, cpu, (fn, arg))

    def _take_irq(self, ctx: ExecCtx, msg: tuple[IrqFn, Any]) -> None:
        """Take a hard interrupt on ``ctx`` (whose interrupts are on)."""
        fn, arg = msg
        ctx.irqs_off = True
        self.kernel.do_irq(ctx, fn, arg)
        self.local_irq_enable(ctx)

    def local_irq_disable(self, ctx: ExecCtx) -> None:
        ctx.irqs_off = True

    def local_irq_enable(self, ctx: ExecCtx) -> None:
        ctx.irqs_off = False
        cpu = self.cpus[ctx.cpu]
        while cpu.pending_irqs and not ctx.irqs_off and cpu.curr is ctx.task:
            self._take_irq(ctx, cpu.pending_irqs.popleft())

    def new_raw_lock(self) -> RawLock:
        return SimRawLock(self)

    def cpu_lock(self, cpu: int) -> RawLock:
        return self._cpu_locks[cpu]

    def need_resched(self, cpu: int) -> bool:
        return self.cpus[cpu].need_resched

    # ------------------------------------------------------------------
    # the hub: the one place that decides what runs next
    def choose(self, cpus: list[int]) -> int:
        """Pick which of several CPUs ready at this instant goes first."""
        self.choices += 1
        if self.chooser is not None:
            return self.chooser(cpus)
        return int(self.rng.random() * len(cpus))

    def _next_event(self) -> list[Any] | None:
        heap = self._heap
        while heap and heap[0][2] == _CANCELLED:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _pop_choice(self) -> list[Any]:
        """Pop the next event; on a tie between CPUs, let choose() decide."""
        heap = self._heap
        first = heapq.heappop(heap)
        if not heap or heap[0][0] != first[0]:
            return first
        t = first[0]
        second = heapq.heappop(heap)
        if not heap or heap[0][0] != t:
            # The common tie: exactly two events at this instant.
            if second[2] == _CANCELLED or second[3] == first[3]:
                heapq.heappush(heap, second)
                return first
            lo, hi = (first, second) if first[3] < second[3] else (second, first)
            pick, other = (lo, hi) if self.choose([lo[3], hi[3]]) == 0 else (hi, lo)
            heapq.heappush(heap, other)
            return pick
        heapq.heappush(heap, second)
        ready = [first]
        while heap and heap[0][0] == t:
            e = heapq.heappop(heap)
            if e[2] != _CANCELLED:
                ready.append(e)
        # The earliest event of each CPU is a candidate (``ready`` is in
        # sequence order); the rest wait their turn.
        cpu0 = first[3]
        heads = [first]
        seen = {cpu0}
        for e in ready:
            if e[3] not in seen:
                seen.add(e[3])
                heads.append(e)
        if len(heads) == 1:
            pick = first
        else:
            heads.sort(key=_cpu_of)
            pick = heads[self.choose([e[3] for e in heads])]
        for e in ready:
            if e is not pick:
                heapq.heappush(heap, e)
        return pick

    def _dispatch(self, ev: list[Any]) -> None:
        kind = ev[2]
        self.dispatches += 1
        if kind == _BUSY:
            ev[2] = _FIRED
            ev[4].e_g.switch(POKE)
        elif kind == _RESUME:
            task = ev[4]
            if task.e_token is not ev:
                return
            task.e_token = None
            task.e_go = True
            cpu = self.cpus[ev[3]]
            if cpu.curr is task:
                cpu.need_resched = False  # the woken task now has the CPU
            task.e_g.switch(POKE)
        elif kind == _IRQ:
            cpu = self.cpus[ev[3]]
            cur = cpu.curr
            if cur.ctx.irqs_off:
                cpu.pending_irqs.append(ev[4])
            else:
                cur.e_g.switch(ev[4])
        elif kind == _HRTIMER:
            timer: HrTimer = ev[4]
            if timer.e_entry is not ev:
                return
            timer.e_entry = None
            timer.active = False
            cpu = self.cpus[ev[3]]
            cur = cpu.curr
            msg = (timer.fn, timer)
            if cur.ctx.irqs_off:
                cpu.pending_irqs.append(msg)
            else:
                cur.e_g.switch(msg)

    def _hub_main(self, cmd: tuple[Any, ...]) -> None:
        while True:
            try:
                result: Any = self._hub_run(*cmd)
            except BaseException as e:  # noqa: BLE001 - handed back to the driver
                result = e
            cmd = self._driver.switch(result)  # type: ignore[union-attr]

    def _hub_run(
        self, until: int | None, stop: Callable[[], bool] | None, idle: bool
    ) -> str:
        _local.ctx = None
        kernel = self.kernel
        inbox = self._inbox
        while True:
            while inbox:
                inbox.popleft()()
                _local.ctx = None
            if stop is not None and stop():
                return "stopped"
            ev = self._next_event()
            if ev is None:
                if idle and kernel.is_idle():
                    return "idle"
                return "empty"
            t = ev[0]
            # Idle first: a housekeeping timer far ahead (the workqueue
            # watchdog, idle-worker culling) must not hide that nothing is busy.
            if idle and t > self.now and kernel.is_idle():
                return "idle"
            if until is not None and t > until:
                return "until"
            ev = self._pop_choice()
            self.now = t
            self._dispatch(ev)
            _local.ctx = None

    def _drive(self, until: int | None, stop: Callable[[], bool] | None, idle: bool) -> str:
        if not self._booted:
            raise KernelStateError("the kernel is not booted")
        if self._running:
            raise KernelStateError(
                "the sim kernel is already running: Kernel.run_*(), insmod() and rmmod() "
                "cannot be called from kernel code"
            )
        saved = _local.ctx
        self._running = True
        self._driver = greenlet.getcurrent()
        try:
            result = self._hub.switch((until, stop, idle))  # type: ignore[union-attr]
        finally:
            self._running = False
            _local.ctx = saved
        if isinstance(result, BaseException):
            raise result
        return result

    def _check_in_kernel(self) -> None:
        if self._halting:
            raise Halted()
        if not self._running:
            raise KernelStateError("a blocking kernel call was made while the sim kernel is not running")

    # ------------------------------------------------------------------
    # driving
    def run_for(self, ns: int) -> None:
        end = self.now + ns
        self._drive(end, None, False)
        self.now = max(self.now, end)

    def run_instant(self) -> None:
        """Run everything ready at the current instant."""
        self._drive(self.now, None, False)

    def foreign_thread(self) -> bool:
        return threading.get_ident() != self._owner

    def defer(self, fn: Callable[[], None]) -> None:
        self._inbox.append(fn)

    def after_irq_assert(self) -> None:
        if not self._running:
            self.run_instant()

    def run_until_idle(self, timeout_ns: int) -> None:
        deadline = self.now + timeout_ns
        why = self._drive(deadline, None, True)
        if why == "idle":
            return
        busy = self.kernel.busy_report()
        if why == "empty":
            self.kernel.report_hang(busy)
            raise KernelHang(
                f"the run cannot make progress at {self.now / 1e9:.6f} s: nothing will ever "
                "happen again, yet the kernel is not idle", busy)
        self.now = max(self.now, deadline)
        raise IdleTimeout(
            f"not idle after {timeout_ns / 1e9:g} s of virtual time; still busy:", busy)

    def run_task_to_completion(self, task: Task) -> None:
        self.start_task(task)
        why = self._drive(None, lambda: task.exited, False)
        if why == "stopped":
            return
        busy = self.kernel.busy_report()
        self.kernel.report_hang(busy, stuck=task)
        raise KernelHang(
            f"{task.comm} (pid {task.pid}) can never finish: it waits for "
            f"{task.wait_desc or 'something that will not happen'}", busy)

    def idle_cpus_and_queues_empty(self) -> bool:
        for cpu in self.cpus:
            if cpu.curr is not cpu.idle or cpu.rq or cpu.pending_irqs:
                return False
            if cpu.idle.ctx.in_interrupt():
                return False  # an interrupt or softirq on the idle task is still busy
        return True

    def cpu_states(self) -> list[str]:
        out = []
        for cpu in self.cpus:
            if cpu.curr is not cpu.idle:
                out.append(f"CPU{cpu.id}: {cpu.curr.comm}/{cpu.curr.pid} running")
            for t in cpu.rq:
                out.append(f"CPU{cpu.id}: {t.comm}/{t.pid} runnable")
        return out


def _cpu_of(entry: list[Any]) -> int:
    return int(entry[3])
