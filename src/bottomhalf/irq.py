"""Hard interrupts: request and free, flow handlers, threaded handlers.

Mirrors kernel/irq/{manage,handle,chip}.c and the irq_enter / irq_exit pair
of kernel/softirq.c (reference §2).  Handlers run in hard-IRQ context
(``HARDIRQ_OFFSET`` added, local interrupts off) on top of whatever the CPU
was running; softirqs raised meanwhile run at ``irq_exit`` on the same CPU,
inline, unless the interrupted context was itself in interrupt or had bottom
halves disabled.  The descriptor and action structures live in
:mod:`.irqdesc`, spurious-interrupt detection in :mod:`.irqspurious`, the
``/proc/interrupts`` view at the end of this file.

Every line sits on an IO-APIC-like chip.  Its trigger type picks the flow
handler, as on x86: edge lines (the default) use ``handle_edge_irq``, level
lines (``IRQF_TRIGGER_HIGH``/``LOW``) use ``handle_fasteoi_irq``.  The
difference shows with ``IRQF_ONESHOT``: a level line stays masked until the
threaded handler has finished, an edge line is never masked for it (the
primary handler runs again and the thread runs once more), exactly as in
Linux.  ``raise_irq`` models a device that keeps its request asserted until
serviced: one raised while the line is masked (disabled, or ONESHOT-masked)
is remembered (``IRQS_PENDING``) and taken once the line is unmasked; many
such raises coalesce into one interrupt.  A line disabled with
``disable_irq`` is masked lazily, as Linux does: the first interrupt after
the disable still enters hard-IRQ context, finds the line disabled and masks
it, without calling handlers or counting.

Simplifications: no interrupt polling after a spurious disable (Linux polls
shared lines every 100 ms, which would keep the machine from ever being
idle), no forced threading, no NMIs, no affinity changes.

Guards (legend: L = ``desc.lock``, a plain lock that is never held across a
handler call, a wakeup wait or an interrupt delivery):
L: an IrqDesc's actions, depth, masked, pending, inprogress, threads_oneshot,
   threads_active, waiters, trigger_type and the per-action runthread flag.
Spurious counters are written only by the CPU handling the line, which
``inprogress`` makes unique, as in Linux.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import HARDIRQ_OFFSET, IRQ_COUNT_MASK, ExecCtx
from .errnos import EBUSY, EINVAL, ENOTCONN
from .errors import BottomHalfError
from .irqdesc import (
    IRQ_HANDLED,
    IRQ_NONE,
    IRQ_NOTCONNECTED,
    IRQ_WAKE_THREAD,
    IRQF_COND_ONESHOT,
    IRQF_COND_SUSPEND,
    IRQF_NO_AUTOEN,
    IRQF_NO_SUSPEND,
    IRQF_ONESHOT,
    IRQF_PERCPU,
    IRQF_PROBE_SHARED,
    IRQF_SHARED,
    IRQF_TRIGGER_MASK,
    NR_IRQS,
    THREAD_MASK_FULL,
    IrqAction,
    IrqDesc,
)
from .irqspurious import note_interrupt
from .task import TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, Task

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["Irq", "IrqMisuse", "irq_default_primary_handler"]


class IrqMisuse(BottomHalfError):
    """raise_irq() on a line or CPU that cannot take an interrupt."""


def irq_default_primary_handler(irq: int, dev_id: Any) -> int:
    """The primary handler of a line requested with handler=NULL."""
    return IRQ_WAKE_THREAD


class Irq:
    """The interrupt subsystem of one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.ncpus = kernel.ncpus
        self.descs: dict[int, IrqDesc] = {}
        # arch counters for /proc/interrupts (arch/x86/kernel/irq.c)
        self.loc = [0] * self.ncpus  # local timer (hrtimer) interrupts
        self.iwi = [0] * self.ncpus  # irq_work interrupts
        self.err = 0
        self.mis = 0
        self.bad_reports = 100  # report_bad_irq()'s static count

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
            if softirq.pending[ctx.cpu] and not ctx.preempt_count & IRQ_COUNT_MASK:
                softirq.do_softirq_irqs_off(ctx)  # invoke_softirq()

    def raise_irq(self, irq: int, cpu: int | None = None) -> None:
        """A device asserts line ``irq``; refuse lines that cannot take it."""
        desc, target = self.check_raise(irq, cpu)
        self.assert_line(desc, target)

    def check_raise(self, irq: int, cpu: int | None) -> tuple[IrqDesc, int]:
        """The line and CPU an assertion of ``irq`` goes to, or a clear error."""
        if isinstance(irq, bool) or not isinstance(irq, int) or not 0 <= irq < NR_IRQS:
            raise IrqMisuse(f"IRQ {irq!r} does not exist (lines are 0..{NR_IRQS - 1})")
        desc = self.descs.get(irq)
        if desc is None or not desc.actions:
            raise IrqMisuse(
                f"IRQ {irq} has no handler: request_irq() it first "
                "(Linux keeps a line without handlers masked)"
            )
        if cpu is None:
            cpu = desc.affinity
        elif isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < self.ncpus:
            raise IrqMisuse(f"CPU {cpu!r} does not exist (this kernel has {self.ncpus} CPUs: "
                            f"0..{self.ncpus - 1})")
        return desc, cpu

    def assert_line(self, desc: IrqDesc, cpu: int) -> None:
        with desc.lock:
            if desc.masked:
                desc.pending = True  # the device keeps asserting it
                return
        self.kernel.engine.deliver_irq(cpu, self.handle_irq_desc, desc)

    def _retrigger(self, desc: IrqDesc) -> None:
        """check_irq_resend()/unmask of an asserted line: the interrupt comes again."""
        self.kernel.engine.deliver_irq(desc.affinity, self.handle_irq_desc, desc)

    # ------------------------------------------------------------------
    # flow handlers (kernel/irq/chip.c) and the action loop (handle.c)
    def handle_irq_desc(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        """generic_handle_irq_desc(): call the line's flow handler."""
        if desc.level:
            self.handle_fasteoi_irq(ctx, desc)
        else:
            self.handle_edge_irq(ctx, desc)

    def handle_edge_irq(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        lock = desc.lock
        lock.acquire()
        try:
            if desc.inprogress or desc.depth or not desc.actions:
                # Running on another CPU (it will loop), or disabled: mask, remember.
                desc.pending = True
                desc.masked = True
                return
            desc.kstat[ctx.cpu] += 1
            while True:
                if not desc.actions:
                    desc.masked = True
                    return
                if desc.pending and desc.depth == 0 and desc.masked:
                    desc.masked = False
                self.handle_irq_event(ctx, desc)
                if not (desc.pending and desc.depth == 0):
                    return
        finally:
            lock.release()

    def handle_fasteoi_irq(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        lock = desc.lock
        lock.acquire()
        replay = False
        try:
            if desc.inprogress:
                desc.pending = True  # still asserted: it comes again after the EOI
                return
            if desc.depth or not desc.actions or desc.masked:
                desc.pending = True
                desc.masked = True
                return
            desc.kstat[ctx.cpu] += 1
            if desc.oneshot:
                desc.masked = True
            self.handle_irq_event(ctx, desc)
            # cond_unmask_eoi_irq(): stay masked while ONESHOT threads run
            if desc.masked and desc.depth == 0 and not desc.threads_oneshot:
                desc.masked = False
            replay = desc.pending and not desc.masked and desc.depth == 0
            if replay:
                desc.pending = False
        finally:
            lock.release()
        if replay:
            self._retrigger(desc)

    def handle_irq_event(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        """Called and returns with ``desc.lock`` held; runs the actions without it."""
        desc.pending = False
        desc.inprogress = True
        actions = list(desc.actions)
        desc.lock.release()
        try:
            self.handle_irq_event_percpu(ctx, desc, actions)
        finally:
            desc.lock.acquire()
            desc.inprogress = False
            if desc.waiters:
                self._wake_waiters(desc)

    def handle_irq_event_percpu(self, ctx: ExecCtx, desc: IrqDesc,
                                actions: list[IrqAction]) -> None:
        """Call every action of the line in order, then note_interrupt()."""
        k = self.kernel
        trace = k.trace
        irq = desc.irq
        retval = IRQ_NONE
        culprit: tuple[IrqAction, Any] | None = None
        for action in actions:
            if trace.on:
                trace.irq_handler_entry(ctx, irq, action.name)
            res = k.call_handler(ctx, action.handler, (irq, action.dev_id),
                                 action.what, default=IRQ_NONE)
            if trace.on:
                trace.irq_handler_exit(ctx, irq, res)
            if isinstance(res, int):
                if res == IRQ_WAKE_THREAD:
                    if action.thread_fn is None:
                        self._warn_no_thread(desc, action)
                    else:
                        self.wake_thread(desc, action)
                retval |= res & 0xFFFFFFFF  # irqreturn_t is an unsigned enum
            elif culprit is None:
                culprit = (action, res)
        note_interrupt(self, ctx, desc, retval, culprit)

    def _warn_no_thread(self, desc: IrqDesc, action: IrqAction) -> None:
        if action.warned:
            return
        action.warned = True
        self.kernel.log_line(4, f"IRQ {desc.irq} device {action.name} returned IRQ_WAKE_THREAD "
                                "but no thread function available.")

    def wake_thread(self, desc: IrqDesc, action: IrqAction) -> None:
        """__irq_wake_thread(): let the action's thread run thread_fn once more."""
        thread = action.thread
        if thread is None or thread.exited:
            return
        with desc.lock:
            if action.runthread:
                return
            action.runthread = True
            desc.threads_oneshot |= action.thread_mask
            desc.threads_active += 1
        self.kernel.sched.wake_up_process(thread)

    # ------------------------------------------------------------------
    # threaded handlers (manage.c irq_thread)
    def _irq_thread(self, action: IrqAction, desc: IrqDesc) -> None:
        """irq_thread(): run thread_fn each time the primary handler asks."""
        k = self.kernel
        task = k.current_task()
        ctx = task.ctx
        while self._irq_wait_for_interrupt(ctx, task, action, desc):
            assert action.thread_fn is not None
            ret = k.call_handler(ctx, action.thread_fn, (desc.irq, action.dev_id),
                                 f"IRQ {desc.irq} thread", default=IRQ_NONE)
            if isinstance(ret, int) and ret == IRQ_HANDLED:
                with desc.lock:
                    desc.threads_handled += 1
            self._irq_finalize_oneshot(desc, action)
            with desc.lock:  # wake_threads_waitq()
                desc.threads_active -= 1
                self._wake_waiters(desc)

    def _irq_wait_for_interrupt(self, ctx: ExecCtx, task: Task, action: IrqAction,
                                desc: IrqDesc) -> bool:
        """True when thread_fn has to run, False when the thread must exit."""

        def woken() -> bool:
            with desc.lock:
                if action.runthread:
                    action.runthread = False
                    return True
            return False

        got = [False]

        def ready() -> bool:
            got[0] = woken()
            return got[0] or task.should_stop

        self.kernel.sched.sleep_until(ctx, ready, TASK_INTERRUPTIBLE,
                                      f"irq thread {task.comm} waiting for IRQ {desc.irq}")
        return got[0]

    def _irq_finalize_oneshot(self, desc: IrqDesc, action: IrqAction) -> None:
        """Unmask a ONESHOT line once the last of its threads has finished."""
        replay = False
        with desc.lock:
            if not desc.oneshot or action.runthread:
                return  # woken again meanwhile: the line stays masked
            desc.threads_oneshot &= ~action.thread_mask
            if not desc.threads_oneshot and desc.depth == 0 and desc.masked:
                desc.masked = False
                replay = desc.pending
                desc.pending = False
        if replay:
            self._retrigger(desc)

    # ------------------------------------------------------------------
    # waiting for a line to be quiet (synchronize_irq)
    def _wake_waiters(self, desc: IrqDesc) -> None:
        """Caller holds desc.lock."""
        if desc.waiters and desc.idle():
            waiters, desc.waiters = desc.waiters, []
            for t in waiters:
                self.kernel.sched.wake_up_process(t)

    def synchronize_irq(self, ctx: ExecCtx, desc: IrqDesc) -> None:
        """Wait until no handler of the line (hard or threaded) is running or due."""
        task = ctx.task

        def quiet() -> bool:
            with desc.lock:
                if desc.idle():
                    return True
                if task not in desc.waiters:
                    desc.waiters.append(task)
                return False

        self.kernel.sched.sleep_until(ctx, quiet, TASK_UNINTERRUPTIBLE,
                                      f"synchronize_irq({desc.irq})")

    def busy(self) -> bool:
        """Some line's handlers are running or its threads still have to run."""
        return any(not d.idle() for d in self.descs.values())

    def threads_busy(self) -> list[str]:
        """Lines whose handlers are running or whose threads still have to run."""
        out = []
        for irq in sorted(self.descs):
            d = self.descs[irq]
            if not d.idle():
                names = ", ".join(a.name for a in d.actions) or "-"
                out.append(f"IRQ {irq} ({names}): handlers running")
        return out

    # ------------------------------------------------------------------
    # registration (kernel/irq/manage.c)
    def request_threaded_irq(
        self, ctx: ExecCtx, irq: int, handler: Callable[..., Any] | None,
        thread_fn: Callable[..., Any] | None, flags: int, name: str, dev_id: Any,
        owner: str | None = None,
    ) -> int:
        if isinstance(irq, bool) or not isinstance(irq, int):
            raise TypeError(f"request_threaded_irq(): irq must be an int, got {irq!r}")
        if isinstance(flags, bool) or not isinstance(flags, int):
            raise TypeError(f"request_threaded_irq(): flags must be an int, got {flags!r}")
        for what, fn in (("handler", handler), ("thread_fn", thread_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"request_threaded_irq(): {what} must be a function or None, "
                                f"got {fn!r}")
        if irq == IRQ_NOTCONNECTED:
            return -ENOTCONN
        shared = bool(flags & IRQF_SHARED)
        if ((shared and dev_id is None) or (shared and flags & IRQF_NO_AUTOEN)
                or (not shared and flags & IRQF_COND_SUSPEND)
                or (flags & IRQF_NO_SUSPEND and flags & IRQF_COND_SUSPEND)):
            return -EINVAL
        if not 0 <= irq < NR_IRQS:
            return -EINVAL
        if handler is None:
            if thread_fn is None:
                return -EINVAL
            handler = irq_default_primary_handler
        desc = self.descs.get(irq)
        if desc is None:
            desc = self.descs.setdefault(irq, IrqDesc(irq, self.ncpus))
        action = IrqAction(handler, thread_fn, flags, name, dev_id, irq, owner=owner)
        ret = self._setup_irq(desc, action)
        if ret == 0 and thread_fn is not None:
            action.thread = self.kernel.sched.kthread_run(
                lambda: self._irq_thread(action, desc), f"irq/{irq}-{name}", desc.affinity)
        return ret

    def _setup_irq(self, desc: IrqDesc, new: IrqAction) -> int:
        """__setup_irq(): the sharing rules, then install the action."""
        k = self.kernel
        irq = desc.irq
        replay = False
        with desc.lock:
            if not new.flags & IRQF_TRIGGER_MASK:
                new.flags |= desc.trigger_type  # inherit the line's trigger type
            shared = bool(desc.actions)
            thread_mask = 0
            if shared:
                old = desc.actions[0]
                if not desc.trigger_type:
                    desc.trigger_type = new.flags & IRQF_TRIGGER_MASK
                mismatch = (not old.flags & new.flags & IRQF_SHARED
                            or desc.trigger_type != new.flags & IRQF_TRIGGER_MASK)
                if not mismatch:
                    if old.flags & IRQF_ONESHOT and new.flags & IRQF_COND_ONESHOT:
                        new.flags |= IRQF_ONESHOT
                    elif (old.flags ^ new.flags) & IRQF_ONESHOT:
                        mismatch = True
                if not mismatch and (old.flags ^ new.flags) & IRQF_PERCPU:
                    mismatch = True
                if mismatch:
                    if not new.flags & IRQF_PROBE_SHARED:
                        k.log_line(3, f"genirq: Flags mismatch irq {irq}. {new.flags:08x} "
                                      f"({new.name}) vs. {old.flags:08x} ({old.name})")
                    return -EBUSY
                for a in desc.actions:
                    thread_mask |= a.thread_mask
            if new.flags & IRQF_ONESHOT:
                if thread_mask == THREAD_MASK_FULL:
                    return -EBUSY
                new.thread_mask = (~thread_mask & (thread_mask + 1))  # first zero bit
            elif new.handler is irq_default_primary_handler:
                k.log_line(3, f"genirq: Threaded irq requested with handler=NULL and !ONESHOT "
                              f"for {new.name} (irq {irq})")
                return -EINVAL
            if not shared:
                if new.flags & IRQF_TRIGGER_MASK:
                    desc.trigger_type = new.flags & IRQF_TRIGGER_MASK
                desc.spurious_disabled = False
                desc.oneshot = bool(new.flags & IRQF_ONESHOT)
                desc.inprogress = False
                if new.flags & IRQF_NO_AUTOEN:
                    desc.depth = 1
                else:  # irq_startup()
                    desc.depth = 0
                    desc.masked = False
                    replay = desc.pending
                    desc.pending = False
            desc.actions.append(new)
            desc.irq_count = 0
            desc.irqs_unhandled = 0
            if shared and desc.spurious_disabled:
                # A new handler gets another chance on a line the detector disabled.
                desc.spurious_disabled = False
                replay = self._enable_locked(desc)
        if replay:
            self._retrigger(desc)
        return 0

    def free_irq(self, ctx: ExecCtx, irq: int, dev_id: Any) -> str | None:
        """Remove the action ``dev_id`` of line ``irq``; returns its name."""
        k = self.kernel
        if ctx.in_interrupt():
            k.warn(ctx, f"Trying to free IRQ {irq} from IRQ context!")
        k.sched.might_sleep(ctx, "free_irq", depth=3)
        if isinstance(irq, bool) or not isinstance(irq, int) or not 0 <= irq < NR_IRQS:
            return None
        desc = self.descs.get(irq)
        action = self.remove_action(ctx, desc, dev_id) if desc is not None else None
        if desc is None or action is None:
            k.warn(ctx, f"Trying to free already-free IRQ {irq}")
            return None
        return action.name

    def remove_action(self, ctx: ExecCtx, desc: IrqDesc, dev_id: Any) -> IrqAction | None:
        """__free_irq(): unlink the action ``dev_id`` (the last one shuts the
        line down), wait for its handlers to finish, stop its thread."""
        with desc.lock:
            action = next((a for a in desc.actions if a.dev_id is dev_id), None)
            if action is None:
                return None
            desc.actions.remove(action)
            if not desc.actions:  # irq_shutdown()
                desc.depth = 1
                desc.masked = True
                desc.pending = False
        self.synchronize_irq(ctx, desc)
        if action.thread is not None:
            self.kernel.kthread_stop(ctx, action.thread)
        return action

    def disable_irq(self, ctx: ExecCtx, irq: int, sync: bool) -> None:
        """disable_irq (``sync``: also waits for running handlers) / _nosync."""
        if sync:
            self.kernel.sched.might_sleep(ctx, "disable_irq", depth=3)
        desc = self.descs.get(irq) if isinstance(irq, int) else None
        if desc is None:
            return  # __disable_irq_nosync(): no descriptor, nothing to do
        with desc.lock:
            desc.depth += 1  # lazy: the line is masked when an interrupt arrives
        if sync:
            self.synchronize_irq(ctx, desc)

    def enable_irq(self, ctx: ExecCtx, irq: int) -> None:
        """Undo one disable_irq(); at depth 0 replay what arrived meanwhile."""
        desc = self.descs.get(irq) if isinstance(irq, int) else None
        if desc is None:
            self.kernel.warn(ctx, f"enable_irq before setup/request_irq: irq {irq}")
            return
        with desc.lock:
            unbalanced = desc.depth == 0
            replay = False if unbalanced else self._enable_locked(desc)
        if unbalanced:
            self.kernel.warn(ctx, f"Unbalanced enable for IRQ {irq}")
        if replay:
            self._retrigger(desc)

    @staticmethod
    def _enable_locked(desc: IrqDesc) -> bool:
        """__enable_irq() at depth > 0; True if a pending interrupt must be replayed."""
        desc.depth -= 1
        if desc.depth:
            return False
        desc.masked = False  # irq_startup()/irq_enable() unmask
        replay = desc.pending
        desc.pending = False
        return replay

    # ------------------------------------------------------------------
    def owned_by(self, module: str) -> list[IrqAction]:
        return [a for d in self.descs.values() for a in d.actions if a.owner == module]

    def proc_interrupts(self) -> str:
        """/proc/interrupts, as kernel/irq/proc.c and arch/x86 print it."""
        ncpus = self.ncpus
        prec = 3  # nr_irqs < 1000
        out = [" " * (prec + 8) + "".join(f"CPU{c:<8d}" for c in range(ncpus)) + "\n"]
        for irq in sorted(self.descs):
            d = self.descs[irq]
            counts = list(d.kstat)
            if not d.actions and not any(counts):
                continue
            row = f"{irq:>{prec}d}: " + "".join(f"{n:10d} " for n in counts)
            row += f" {'IO-APIC':>8s} {irq:>{prec}d}-{d.flow:<8s}"
            if d.actions:
                row += "  " + ", ".join(a.name for a in d.actions)
            out.append(row + "\n")

        def arch(label: str, per_cpu: list[int], desc: str) -> str:
            return f"{label:>{prec}s}: " + "".join(f"{n:10d} " for n in per_cpu) + f"  {desc}\n"

        zero = [0] * ncpus
        out.append(arch("NMI", zero, "Non-maskable interrupts"))
        out.append(arch("LOC", self.loc, "Local timer interrupts"))
        out.append(arch("SPU", zero, "Spurious interrupts"))
        out.append(arch("PMI", zero, "Performance monitoring interrupts"))
        out.append(arch("IWI", self.iwi, "IRQ work interrupts"))
        out.append(arch("RTR", zero, "APIC ICR read retries"))
        out.append(arch("RES", zero, "Rescheduling interrupts"))  # wakeups send no IPI here
        out.append(arch("CAL", zero, "Function call interrupts"))
        out.append(arch("TLB", zero, "TLB shootdowns"))
        out.append(f"{'ERR':>{prec}s}: {self.err:10d}\n")
        out.append(f"{'MIS':>{prec}s}: {self.mis:10d}\n")
        return "".join(out)
