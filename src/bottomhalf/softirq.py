"""Softirqs: per-CPU pending masks, the __do_softirq loop, ksoftirqd, BH disabling.

Mirrors kernel/softirq.c (reference §3).  The ten vectors run in ascending
order, each pass counted once per vector in ``/proc/softirqs``.  The loop
restarts while something is pending, at most ``MAX_SOFTIRQ_RESTART`` times
and only within ``MAX_SOFTIRQ_TIME`` and while no reschedule is wanted; then
it hands the rest to ``ksoftirqd/N``.  A softirq raised outside interrupt
context wakes ``ksoftirqd``; one raised in a hard IRQ runs at ``irq_exit``.

Guards: ``pending[cpu]`` is written by code running on that CPU with local
interrupts off.  The per-CPU engine lock (``engine.cpu_lock``) makes the
softirq processing of one CPU exclusive: in ``sim`` it is never contended
(one context per CPU at a time); in ``real`` several threads can act for the
same CPU and the lock keeps their softirqs from running concurrently.

One deliberate difference: Linux's ``ksoftirqd`` busy-polls a tasklet that is
disabled (or running elsewhere).  Here a pass in which no handler made
progress puts ``ksoftirqd`` to sleep until something changes
(``tasklet_enable``, a tasklet finishing elsewhere, a new raise), which gives
the same results without burning a CPU or spinning at one virtual instant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .context import IRQ_COUNT_MASK, SOFTIRQ_DISABLE_OFFSET, SOFTIRQ_OFFSET, ExecCtx
from .locking import debug_locks_off
from .task import TASK_INTERRUPTIBLE, TASK_RUNNING, Task

if TYPE_CHECKING:
    from .kernel import Kernel

HI_SOFTIRQ = 0
TIMER_SOFTIRQ = 1
NET_TX_SOFTIRQ = 2
NET_RX_SOFTIRQ = 3
BLOCK_SOFTIRQ = 4
IRQ_POLL_SOFTIRQ = 5
TASKLET_SOFTIRQ = 6
SCHED_SOFTIRQ = 7
HRTIMER_SOFTIRQ = 8
RCU_SOFTIRQ = 9
NR_SOFTIRQS = 10

SOFTIRQ_NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED",
                 "HRTIMER", "RCU")

MAX_SOFTIRQ_RESTART = 10

# _SET_BITS[mask]: the vectors set in a pending mask, lowest first.
_SET_BITS = tuple(tuple(nr for nr in range(10) if mask >> nr & 1) for mask in range(1 << 10))
MAX_SOFTIRQ_TIME_MS = 2  # MAX_SOFTIRQ_TIME = msecs_to_jiffies(2): 1 jiffy at HZ=250

# An action returns True if it made progress (ran a handler or changed state).
SoftirqAction = Callable[[ExecCtx], bool]


def _noop_action(ctx: ExecCtx) -> bool:
    return True


class Softirq:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        n = kernel.ncpus
        self.pending = [0] * n
        self.counts = [[0] * NR_SOFTIRQS for _ in range(n)]
        self.actions: list[SoftirqAction] = [_noop_action] * NR_SOFTIRQS
        self.ksoftirqd: list[Task | None] = [None] * n
        self.stalled = [False] * n  # ksoftirqd saw only non-progressing work
        self.warned_bh_enable_in_hardirq = False
        from .timer import TICK_NSEC, msecs_to_jiffies  # timer.py imports this module

        self.tick_ns = TICK_NSEC
        self.max_time_jiffies = msecs_to_jiffies(MAX_SOFTIRQ_TIME_MS)

    def open_softirq(self, nr: int, action: SoftirqAction) -> None:
        self.actions[nr] = action

    def start_threads(self) -> None:
        for cpu in range(self.kernel.ncpus):
            self.ksoftirqd[cpu] = self.kernel.sched.kthread_run(
                self._make_ksoftirqd(cpu), f"ksoftirqd/{cpu}", cpu)

    # ------------------------------------------------------------------
    # raising
    def raise_softirq_irqoff(self, ctx: ExecCtx, nr: int) -> None:
        """Mark ``nr`` pending on this CPU; outside interrupt context, wake ksoftirqd.

        The bodies of raise_softirq_irqoff_quiet() and wakeup_softirqd(),
        inlined: every tasklet_schedule() comes here, and the two calls cost
        4% of bench_tasklet_throughput.
        """
        trace = self.kernel.trace
        if trace.on:
            trace.softirq_raise(ctx, nr)
        cpu = ctx.cpu
        self.pending[cpu] |= 1 << nr
        if not ctx.preempt_count & IRQ_COUNT_MASK:  # !in_interrupt()
            self.stalled[cpu] = False
            t = self.ksoftirqd[cpu]
            if t is not None and t.state != TASK_RUNNING:
                self.kernel.sched.wake_up_process(t)

    def raise_softirq_irqoff_quiet(self, ctx: ExecCtx, nr: int) -> None:
        """__raise_softirq_irqoff: only the pending bit (and the tracepoint)."""
        trace = self.kernel.trace
        if trace.on:
            trace.softirq_raise(ctx, nr)
        self.pending[ctx.cpu] |= 1 << nr

    def raise_softirq(self, ctx: ExecCtx, nr: int) -> None:
        engine = self.kernel.engine
        was_off = ctx.irqs_off
        if not was_off:
            engine.local_irq_disable(ctx)
        self.raise_softirq_irqoff(ctx, nr)
        if not was_off:
            engine.local_irq_enable(ctx)

    def wakeup_softirqd(self, cpu: int) -> None:
        self.stalled[cpu] = False
        t = self.ksoftirqd[cpu]
        if t is not None:
            self.kernel.sched.wake_up_process(t)

    @property
    def any_stalled(self) -> bool:
        return True in self.stalled

    def unstall(self, cpu: int) -> None:
        """Something changed that may let a stalled pass make progress."""
        if self.stalled[cpu]:
            self.wakeup_softirqd(cpu)

    # ------------------------------------------------------------------
    # processing
    def do_softirq_irqs_off(self, ctx: ExecCtx) -> None:
        """invoke_softirq() from irq_exit: local interrupts are off."""
        self.handle_softirqs(ctx, ksirqd=False)

    def do_softirq(self, ctx: ExecCtx) -> None:
        """do_softirq(): run pending softirqs now unless in interrupt."""
        if ctx.in_interrupt():
            return
        engine = self.kernel.engine
        was_off = ctx.irqs_off
        if not was_off:
            engine.local_irq_disable(ctx)
        if self.pending[ctx.cpu]:
            self.handle_softirqs(ctx, ksirqd=False)
        if not was_off:
            engine.local_irq_enable(ctx)

    def handle_softirqs(self, ctx: ExecCtx, ksirqd: bool) -> bool:
        """__do_softirq(): called with local interrupts off; returns True if any
        action made progress."""
        k = self.kernel
        engine = k.engine
        cpu = ctx.cpu
        lock = engine.cpu_lock(cpu)
        if not lock.try_acquire(ctx):
            # real engine: another thread serves this CPU's softirqs or has its
            # bottom halves disabled.  It looks at the pending bits again before
            # it lets go; ksoftirqd retries meanwhile (it must not go to sleep
            # as "stalled": the holder may already have made its last check).
            if not ksirqd:
                self.wakeup_softirqd(cpu)
            return True
        progress = False
        try:
            # end = jiffies + MAX_SOFTIRQ_TIME, kept in ns: one clock read per call
            start_ns = engine.now_ns()
            max_restart = MAX_SOFTIRQ_RESTART
            ctx.preempt_count += SOFTIRQ_OFFSET
            trace = k.trace
            counts = self.counts[cpu]
            actions = self.actions
            while True:
                pending = self.pending[cpu]
                self.pending[cpu] = 0
                engine.local_irq_enable(ctx)
                for nr in _SET_BITS[pending]:  # lowest vector first
                    counts[nr] += 1
                    if trace.on:
                        trace.softirq_entry(ctx, nr)
                    pc = ctx.preempt_count
                    if actions[nr](ctx):
                        progress = True
                    if trace.on:
                        trace.softirq_exit(ctx, nr)
                    if ctx.preempt_count != pc:
                        k.log_line(3, f"huh, entered softirq {nr} {SOFTIRQ_NAMES[nr]} "
                                      f"{k.symbols.pointer(actions[nr], 'hashed')} with "
                                      f"preempt_count {pc:08x}, exited with "
                                      f"{ctx.preempt_count:08x}?")
                        ctx.preempt_count = pc
                engine.local_irq_disable(ctx)
                if self.pending[cpu]:
                    max_restart -= 1
                    now_ns = engine.now_ns()
                    tick = self.tick_ns
                    if (now_ns // tick < start_ns // tick + self.max_time_jiffies
                            and not engine.need_resched(cpu) and max_restart):
                        continue
                    if not ksirqd:
                        self.wakeup_softirqd(cpu)
                break
            ctx.preempt_count -= SOFTIRQ_OFFSET
        finally:
            lock.release(ctx)
        return progress

    def _make_ksoftirqd(self, cpu: int) -> Callable[[], None]:
        def run_ksoftirqd() -> None:
            k = self.kernel
            task = k.current_task()
            ctx = task.ctx
            engine = k.engine
            sched = k.sched
            while not task.should_stop:
                task.state = TASK_INTERRUPTIBLE
                if not self.pending[cpu] or self.stalled[cpu]:
                    sched.schedule(ctx)
                    continue
                task.state = TASK_RUNNING
                engine.local_irq_disable(ctx)
                progress = True
                if self.pending[cpu]:
                    progress = self.handle_softirqs(ctx, ksirqd=True)
                engine.local_irq_enable(ctx)
                if not progress and self.pending[cpu]:
                    self.stalled[cpu] = True
                engine.yield_cpu(ctx)
            task.state = TASK_RUNNING

        return run_ksoftirqd

    # ------------------------------------------------------------------
    # bottom-half disabling (reference §3.4)
    def local_bh_disable(self, ctx: ExecCtx) -> None:
        if not ctx.bh_disabled() and not ctx.in_interrupt():
            # real: keep this CPU's softirqs out while BH is disabled here.
            lock = self.kernel.engine.cpu_lock(ctx.cpu)
            if lock.owner is not ctx:
                lock.acquire(ctx)
                ctx.bh_owned += 1
        ctx.preempt_count += SOFTIRQ_DISABLE_OFFSET

    def local_bh_enable(self, ctx: ExecCtx) -> None:
        k = self.kernel
        if ctx.in_hardirq() and not self.warned_bh_enable_in_hardirq:
            self.warned_bh_enable_in_hardirq = True  # WARN_ON_ONCE(in_hardirq())
            k.warn(ctx, None, "__local_bh_enable_ip")
        if not ctx.bh_disabled():
            # Linux subtracts anyway and preempt_count_dec() then finds the
            # count below zero; here the count is left alone.
            if debug_locks_off(k):
                k.warn(ctx, "DEBUG_LOCKS_WARN_ON(val > preempt_count())", "preempt_count_sub")
            return
        # __local_bh_enable_ip(): preemption stays disabled (one count) until
        # the softirqs run here are done, as the trace's preempt-depth shows.
        ctx.preempt_count -= SOFTIRQ_DISABLE_OFFSET - 1
        if ctx.bh_owned and not ctx.bh_disabled():
            ctx.bh_owned -= 1
            k.engine.cpu_lock(ctx.cpu).release(ctx)
        if not ctx.in_interrupt() and self.pending[ctx.cpu]:
            self.do_softirq(ctx)
        ctx.preempt_count -= 1

    # ------------------------------------------------------------------
    def proc_softirqs(self) -> str:
        n = self.kernel.ncpus
        out = [" " * 20 + "".join(f"CPU{c:<8d}" for c in range(n)) + "\n"]
        for nr, name in enumerate(SOFTIRQ_NAMES):
            out.append(f"{name:>12s}:" + "".join(f" {self.counts[c][nr]:10d}" for c in range(n))
                       + "\n")
        return "".join(out)

    def stat_line(self) -> str:
        per = [sum(self.counts[c][nr] for c in range(self.kernel.ncpus))
               for nr in range(NR_SOFTIRQS)]
        return "softirq " + " ".join(str(v) for v in [sum(per), *per])
