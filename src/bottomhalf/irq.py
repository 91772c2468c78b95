"""Hard interrupts: descriptors, handlers, threaded handlers, spurious detection.

Mirrors kernel/irq/{manage,handle,chip,spurious,proc}.c and the irq_enter /
irq_exit pair of kernel/softirq.c (reference §2).  Handlers run in hard-IRQ
context (``HARDIRQ_OFFSET`` added, local interrupts off) on top of whatever
the CPU was running; softirqs raised meanwhile run at ``irq_exit`` on the same
CPU, inline, unless the interrupted context was itself in interrupt or had
bottom halves disabled.

Guards: ``desc.lock`` (a raw lock) protects a descriptor's action list,
disable depth and pending/masked state; counters are only touched in the
handler path of the CPU that takes the interrupt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .context import HARDIRQ_OFFSET, ExecCtx
from .errors import BottomHalfError
from .task import PF_KTHREAD, TASK_INTERRUPTIBLE, TASK_RUNNING, Task

if TYPE_CHECKING:
    from .kernel import Kernel

NR_IRQS = 256

IRQ_NONE = 0
IRQ_HANDLED = 1
IRQ_WAKE_THREAD = 2

IRQF_TRIGGER_NONE = 0x00000000
IRQF_TRIGGER_RISING = 0x00000001
IRQF_TRIGGER_FALLING = 0x00000002
IRQF_TRIGGER_HIGH = 0x00000004
IRQF_TRIGGER_LOW = 0x00000008
IRQF_TRIGGER_MASK = 0x0000000F
IRQF_TRIGGER_PROBE = 0x00000010
IRQF_SHARED = 0x00000080
IRQF_PROBE_SHARED = 0x00000100
__IRQF_TIMER = 0x00000200
IRQF_PERCPU = 0x00000400
IRQF_NOBALANCING = 0x00000800
IRQF_IRQPOLL = 0x00001000
IRQF_ONESHOT = 0x00002000
IRQF_NO_SUSPEND = 0x00004000
IRQF_FORCE_RESUME = 0x00008000
IRQF_NO_THREAD = 0x00010000
IRQF_EARLY_RESUME = 0x00020000
IRQF_COND_SUSPEND = 0x00040000
IRQF_NO_AUTOEN = 0x00080000
IRQF_NO_DEBUG = 0x00100000
IRQF_COND_ONESHOT = 0x00200000
IRQF_TIMER = __IRQF_TIMER | IRQF_NO_SUSPEND | IRQF_NO_THREAD

# kernel/irq/spurious.c
SPURIOUS_WINDOW = 100_000
SPURIOUS_THRESHOLD = 99_900
SPURIOUS_GAP_NS = 100_000_000  # HZ/10


def IRQ_RETVAL(x: Any) -> int:  # noqa: N802 - kernel macro name
    return IRQ_HANDLED if x else IRQ_NONE


class IrqMisuse(BottomHalfError):
    """raise_irq() on a line that cannot take an interrupt."""


@dataclass(eq=False)
class IrqAction:
    """struct irqaction: one handler registered on a line."""

    handler: Callable[[int, Any], Any] | None
    thread_fn: Callable[[int, Any], Any] | None
    flags: int
    name: str
    dev_id: Any
    irq: int
    thread: Task | None = None
    runthread: bool = False
    thread_running: bool = False
    threads_handled: int = 0
    owner: str | None = None


@dataclass(eq=False)
class IrqDesc:
    """struct irq_desc: one interrupt line."""

    irq: int
    ncpus: int
    actions: list[IrqAction] = field(default_factory=list)
    depth: int = 0  # disable depth; the line is masked while > 0
    pending: bool = False  # IRQS_PENDING: arrived while disabled/masked, replay on enable
    oneshot_mask: int = 0  # threaded ONESHOT handlers still running
    kstat: list[int] = field(default_factory=list)
    irq_count: int = 0
    irqs_unhandled: int = 0
    last_unhandled_ns: int = -(1 << 62)
    spurious_disabled: bool = False
    affinity: int = 0
    in_progress: int = 0  # handlers running now (hard or threaded), for synchronize_irq
    waiters: list[Task] = field(default_factory=list)
    lock: Any = None

    def __post_init__(self) -> None:
        if not self.kstat:
            self.kstat = [0] * self.ncpus

    @property
    def trigger(self) -> str:
        """The flow name shown in /proc/interrupts."""
        flags = self.actions[0].flags if self.actions else 0
        return "fasteoi" if flags & (IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW) else "edge"


class Irq:
    """The interrupt subsystem of one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.ncpus = kernel.ncpus
        self.descs: dict[int, IrqDesc] = {}
        # arch counters for /proc/interrupts (arch/x86/kernel/irq.c)
        self.loc = [0] * self.ncpus  # local timer (hrtimer) interrupts
        self.res = [0] * self.ncpus  # rescheduling IPIs
        self.iwi = [0] * self.ncpus  # irq_work interrupts
        self.err = 0
        self.mis = 0
        self.bad_reports = 0

    # ------------------------------------------------------------------
    # entry and exit: the one path every hard interrupt takes
    def handle(self, ctx: ExecCtx, fn: Callable[[ExecCtx, Any], None], arg: Any) -> None:
        """Run ``fn(ctx, arg)`` as a hard interrupt on ``ctx``'s CPU.

        The engine calls this with local interrupts already off and turns them
        back on afterwards.  ``irq_exit`` runs pending softirqs inline when
        the interrupted context allows it.
        """
        ctx.preempt_count += HARDIRQ_OFFSET  # irq_enter
        try:
            fn(ctx, arg)
        finally:
            ctx.preempt_count -= HARDIRQ_OFFSET  # irq_exit
            softirq = self.kernel.softirq
            if softirq.pending[ctx.cpu] and not ctx.in_interrupt():
                softirq.do_softirq_irqs_off(ctx)

    def get_desc(self, irq: int, create: bool = True) -> IrqDesc | None:
        desc = self.descs.get(irq)
        if desc is None and create and 0 <= irq < NR_IRQS:
            desc = IrqDesc(irq, self.ncpus, lock=self.kernel.engine.new_raw_lock())
            self.descs[irq] = desc
        return desc

    def raise_irq(self, irq: int, cpu: int | None = None) -> None:
        """A device asserts line ``irq``; refuse lines that cannot take it."""
        if not isinstance(irq, int) or not 0 <= irq < NR_IRQS:
            raise IrqMisuse(f"IRQ {irq!r} does not exist (lines are 0..{NR_IRQS - 1})")
        desc = self.descs.get(irq)
        if desc is None or not desc.actions:
            raise IrqMisuse(
                f"IRQ {irq} has no handler: request_irq() it first "
                "(Linux keeps a line without handlers masked)"
            )
        target = desc.affinity if cpu is None else cpu
        if not isinstance(target, int) or not 0 <= target < self.ncpus:
            raise IrqMisuse(f"CPU {cpu!r} does not exist (this kernel has {self.ncpus} CPUs)")
        self.kernel.engine.deliver_irq(target, self.handle_irq_line, desc)

    def handle_irq_line(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        """handle_edge_irq / handle_fasteoi_irq for one of our lines."""
        k = self.kernel
        lock = desc.lock
        lock.acquire(ctx)
        if desc.depth > 0 or not desc.actions or desc.oneshot_mask:
            # Disabled or masked (ONESHOT thread still running): remember it.
            desc.pending = True
            lock.release(ctx)
            return
        desc.kstat[ctx.cpu] += 1
        desc.in_progress += 1
        actions = list(desc.actions)
        lock.release(ctx)
        retval = IRQ_NONE
        trace = k.trace
        try:
            for action in actions:
                if action.handler is None:
                    continue
                if trace.on:
                    trace.irq_handler_entry(ctx, desc.irq, action.name)
                ret = k.call_handler(ctx, action.handler, (desc.irq, action.dev_id),
                                     f"IRQ {desc.irq} handler", default=IRQ_NONE)
                if trace.on:
                    trace.irq_handler_exit(ctx, desc.irq, ret)
                if ret == IRQ_WAKE_THREAD:
                    self._wake_thread(ctx, desc, action)
                if isinstance(ret, int) and not isinstance(ret, bool) and 0 <= ret <= 3:
                    retval |= ret
                else:
                    self._bogus_return(desc, ret)
        finally:
            lock.acquire(ctx)
            desc.in_progress -= 1
            waiters = desc.waiters if desc.in_progress == 0 else []
            if waiters:
                desc.waiters = []
            lock.release(ctx)
            for t in waiters:
                k.sched.wake_up_process(t)
        self._note_interrupt(ctx, desc, retval)

    def _wake_thread(self, ctx: ExecCtx, desc: IrqDesc, action: IrqAction) -> None:
        if action.thread is None:
            return
        if action.flags & IRQF_ONESHOT and action in desc.actions:
            # The line stays masked until this threaded handler has finished.
            desc.oneshot_mask |= 1 << desc.actions.index(action)
        action.runthread = True
        self.kernel.sched.wake_up_process(action.thread)

    def _bogus_return(self, desc: IrqDesc, ret: Any) -> None:
        if self.bad_reports >= 100:
            return
        self.bad_reports += 1
        shown = f"{ret:x}" if isinstance(ret, int) and not isinstance(ret, bool) else repr(ret)
        k = self.kernel
        k.log_line(3, f"irq event {desc.irq}: bogus return value {shown}")
        self._report_handlers(desc)

    def _report_handlers(self, desc: IrqDesc) -> None:
        k = self.kernel
        k.log_line(3, "handlers:")
        for a in desc.actions:
            line = f"[<{k.symbols.pointer(a.handler, 'hashed')}>] {k.symbols.symbol(a.handler)}"
            if a.thread_fn is not None:
                line += (f" threaded [<{k.symbols.pointer(a.thread_fn, 'hashed')}>] "
                         f"{k.symbols.symbol(a.thread_fn)}")
            k.log_line(3, line)

    def _note_interrupt(self, ctx: ExecCtx, desc: IrqDesc, retval: int) -> None:
        """kernel/irq/spurious.c note_interrupt()."""
        if desc.spurious_disabled:
            return
        if retval & IRQ_WAKE_THREAD:
            # Judged by the threaded handler; count as handled here.
            retval = IRQ_HANDLED
        now = self.kernel.now_ns
        if retval == IRQ_NONE:
            if now - desc.last_unhandled_ns > SPURIOUS_GAP_NS:
                desc.irqs_unhandled = 1
            else:
                desc.irqs_unhandled += 1
            desc.last_unhandled_ns = now
        if desc.irqs_unhandled == 0:
            return
        desc.irq_count += 1
        if desc.irq_count < SPURIOUS_WINDOW:
            return
        desc.irq_count = 0
        if desc.irqs_unhandled > SPURIOUS_THRESHOLD:
            k = self.kernel
            if self.bad_reports < 100:
                self.bad_reports += 1
                k.log_line(3, f'irq {desc.irq}: nobody cared (try booting with the "irqpoll" option)')
                k.dump_stack(ctx, level=3)
                self._report_handlers(desc)
            k.log_line(0, f"Disabling IRQ #{desc.irq}")
            desc.spurious_disabled = True
            desc.depth += 1
        desc.irqs_unhandled = 0

    # ------------------------------------------------------------------
    # registration (kernel/irq/manage.c)
    def request_threaded_irq(
        self, ctx: ExecCtx, irq: int, handler: Callable[..., Any] | None,
        thread_fn: Callable[..., Any] | None, flags: int, name: str, dev_id: Any,
        owner: str | None = None,
    ) -> int:
        from .errnos import EBUSY, EINVAL

        k = self.kernel
        if not isinstance(irq, int) or not 0 <= irq < NR_IRQS:
            return -EINVAL
        if flags & IRQF_SHARED and dev_id is None:
            return -EINVAL
        if handler is None and thread_fn is None:
            return -EINVAL
        if handler is None:
            if not flags & IRQF_ONESHOT:
                k.log_line(3, f"genirq: Threaded irq requested with handler=NULL and !ONESHOT "
                              f"for {name} (irq {irq})")
                return -EINVAL
            handler = _irq_default_primary_handler
        desc = self.get_desc(irq)
        assert desc is not None
        lock = desc.lock
        lock.acquire(ctx)
        try:
            if desc.actions:
                old = desc.actions[0]
                compatible = (
                    old.flags & flags & IRQF_SHARED
                    and (old.flags & IRQF_TRIGGER_MASK) == (flags & IRQF_TRIGGER_MASK)
                    and (old.flags & IRQF_ONESHOT) == (flags & IRQF_ONESHOT)
                )
                if not compatible:
                    if not flags & IRQF_PROBE_SHARED:
                        k.log_line(3, f"genirq: Flags mismatch irq {irq}. {flags:08x} ({name}) "
                                      f"vs. {old.flags:08x} ({old.name})")
                    return -EBUSY
            action = IrqAction(handler, thread_fn, flags, name, dev_id, irq, owner=owner)
            desc.actions.append(action)
            if len(desc.actions) == 1:
                desc.depth = 1 if flags & IRQF_NO_AUTOEN else 0
                desc.spurious_disabled = False
                desc.irq_count = desc.irqs_unhandled = 0
        finally:
            lock.release(ctx)
        if thread_fn is not None:
            action.thread = k.sched.kthread_run(
                lambda: self._irq_thread(action, desc), f"irq/{irq}-{name}", desc.affinity)
            action.thread.flags |= PF_KTHREAD
        return 0

    def _irq_thread(self, action: IrqAction, desc: IrqDesc) -> None:
        """irq_thread(): run the threaded handler each time the primary asks."""
        k = self.kernel
        task = k.current_task()
        ctx = task.ctx
        while True:
            k.sched.sleep_until(ctx, lambda: action.runthread or task.should_stop,
                                TASK_INTERRUPTIBLE, f"irq thread {task.comm} waiting for IRQ {desc.irq}")
            if task.should_stop and not action.runthread:
                return
            action.runthread = False
            action.thread_running = True
            desc.in_progress += 1
            try:
                assert action.thread_fn is not None
                ret = k.call_handler(ctx, action.thread_fn, (desc.irq, action.dev_id),
                                     f"IRQ {desc.irq} thread", default=IRQ_NONE)
                if ret == IRQ_HANDLED:
                    action.threads_handled += 1
            finally:
                action.thread_running = False
                desc.lock.acquire(ctx)
                desc.in_progress -= 1
                replay = False
                if action.flags & IRQF_ONESHOT and action in desc.actions:
                    desc.oneshot_mask &= ~(1 << desc.actions.index(action))
                    replay = desc.oneshot_mask == 0 and desc.pending and desc.depth == 0
                    if replay:
                        desc.pending = False
                waiters = desc.waiters if desc.in_progress == 0 else []
                if waiters:
                    desc.waiters = []
                desc.lock.release(ctx)
                for t in waiters:
                    k.sched.wake_up_process(t)
                if replay:
                    k.engine.deliver_irq(desc.affinity, self.handle_irq_line, desc)
            task.state = TASK_RUNNING

    def free_irq(self, ctx: ExecCtx, irq: int, dev_id: Any) -> str | None:
        k = self.kernel
        k.sched.might_sleep(ctx, "free_irq")
        desc = self.descs.get(irq) if isinstance(irq, int) else None
        action = None
        if desc is not None:
            desc.lock.acquire(ctx)
            for a in desc.actions:
                if a.dev_id is dev_id:
                    action = a
                    break
            if action is not None:
                desc.actions.remove(action)
                if not desc.actions:
                    desc.depth = 0
                    desc.pending = False
                    desc.oneshot_mask = 0
            desc.lock.release(ctx)
        if action is None:
            k.warn(ctx, f"Trying to free already-free IRQ {irq}")
            return None
        self.synchronize_irq(ctx, desc)  # type: ignore[arg-type]
        if action.thread is not None:
            k.kthread_stop(ctx, action.thread)
        return action.name

    def synchronize_irq(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        """Wait until no handler of the line (hard or threaded) is running."""
        self._wait_idle(ctx, desc)

    def disable_irq(self, ctx: ExecCtx, irq: int, sync: bool) -> None:
        desc = self._desc_or_warn(ctx, irq, "disable_irq")
        if desc is None:
            return
        if sync:
            self.kernel.sched.might_sleep(ctx, "disable_irq")
        desc.lock.acquire(ctx)
        desc.depth += 1
        desc.lock.release(ctx)
        if sync:
            self._wait_idle(ctx, desc)

    def _wait_idle(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        k = self.kernel
        task = ctx.task

        def idle() -> bool:
            if desc.in_progress == 0:
                return True
            if task not in desc.waiters:
                desc.waiters.append(task)
            return False

        k.sched.sleep_until(ctx, idle, 2, f"synchronize_irq({desc.irq})")

    def enable_irq(self, ctx: ExecCtx, irq: int) -> None:
        desc = self._desc_or_warn(ctx, irq, "enable_irq")
        if desc is None:
            return
        desc.lock.acquire(ctx)
        if desc.depth == 0:
            desc.lock.release(ctx)
            self.kernel.warn(ctx, f"Unbalanced enable for IRQ {irq}")
            return
        desc.depth -= 1
        replay = desc.depth == 0 and desc.pending and not desc.oneshot_mask
        if replay:
            desc.pending = False
        desc.lock.release(ctx)
        if replay:
            self.kernel.engine.deliver_irq(desc.affinity, self.handle_irq_line, desc)

    def _desc_or_warn(self, ctx: ExecCtx, irq: int, what: str) -> IrqDesc | None:
        desc = self.descs.get(irq) if isinstance(irq, int) else None
        if desc is None or not desc.actions:
            self.kernel.warn(ctx, f"{what}: IRQ {irq} has no handler")
            return None
        return desc

    # ------------------------------------------------------------------
    def owned_by(self, module: str) -> list[IrqAction]:
        return [a for d in self.descs.values() for a in d.actions if a.owner == module]

    def proc_interrupts(self) -> str:
        """/proc/interrupts, as kernel/irq/proc.c and arch/x86 print it."""
        ncpus = self.ncpus
        prec = 3
        out = [" " * (prec + 8) + "".join(f"CPU{c:<8d}" for c in range(ncpus)) + "\n"]
        for irq in sorted(self.descs):
            d = self.descs[irq]
            if not d.actions:
                continue
            row = f"{irq:>{prec}d}: " + "".join(f"{n:10d} " for n in d.kstat)
            row += f" {'IO-APIC':>8s}"
            row += f" {irq:>{prec}d}"
            row += f"-{d.trigger:<8s}"
            row += "  " + ", ".join(a.name for a in d.actions)
            out.append(row + "\n")

        def arch(label: str, counts: list[int], desc: str) -> str:
            return f"{label:>{prec}s}: " + "".join(f"{n:10d} " for n in counts) + f"  {desc}\n"

        zero = [0] * ncpus
        out.append(arch("NMI", zero, "Non-maskable interrupts"))
        out.append(arch("LOC", self.loc, "Local timer interrupts"))
        out.append(arch("SPU", zero, "Spurious interrupts"))
        out.append(arch("PMI", zero, "Performance monitoring interrupts"))
        out.append(arch("IWI", self.iwi, "IRQ work interrupts"))
        out.append(arch("RTR", zero, "APIC ICR read retries"))
        out.append(arch("RES", self.res, "Rescheduling interrupts"))
        out.append(arch("CAL", zero, "Function call interrupts"))
        out.append(arch("TLB", zero, "TLB shootdowns"))
        out.append(f"{'ERR':>{prec}s}: {self.err:10d}\n")
        out.append(f"{'MIS':>{prec}s}: {self.mis:10d}\n")
        return "".join(out)


def _irq_default_primary_handler(irq: int, dev_id: Any) -> int:
    return IRQ_WAKE_THREAD
