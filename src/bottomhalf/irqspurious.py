"""The stuck-interrupt detector: kernel/irq/spurious.c ``note_interrupt()``.

Called after every interrupt with the OR of what the line's handlers
returned (reference §2.2):

* a value above ``IRQ_HANDLED | IRQ_WAKE_THREAD`` is reported as
  ``irq event N: bogus return value X`` (at most 100 reports per boot) and
  not counted further;
* a primary result of exactly ``IRQ_WAKE_THREAD`` is judged one interrupt
  later, by whether a threaded handler returned ``IRQ_HANDLED`` meanwhile;
* an unhandled interrupt more than HZ/10 jiffies after the previous one
  restarts the unhandled count at 1;
* while anything is unhandled, every interrupt counts toward a window of
  100000; at its end, more than 99900 unhandled ones disable the line with
  ``irq N: nobody cared (try booting with the "irqpoll" option)``, a stack
  dump, the ``handlers:`` lines and ``Disabling IRQ #N``.

One addition Linux cannot make: a Python handler that returns something
other than an int (very often ``None``, from a forgotten ``return``) is
reported as a bogus return value with the Python value shown, and a last
``bottomhalf:`` line names the handler and what it should return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import ExecCtx
from .irqdesc import IRQ_HANDLED, IRQ_NONE, IRQ_WAKE_THREAD, IrqAction, IrqDesc
from .timer import HZ

if TYPE_CHECKING:
    from .irq import Irq

SPURIOUS_DEFERRED = 0x80000000
IRQ_COUNT_WINDOW = 100_000
UNHANDLED_LIMIT = 99_900


def note_interrupt(irqs: Irq, ctx: ExecCtx, desc: IrqDesc, action_ret: int,
                   culprit: tuple[IrqAction, Any] | None) -> None:
    """Account one interrupt of ``desc``; disable the line if it is stuck."""
    if culprit is not None or action_ret > (IRQ_HANDLED | IRQ_WAKE_THREAD):
        report_bad_irq(irqs, ctx, desc, action_ret, culprit)
        return
    if action_ret & IRQ_WAKE_THREAD:
        if action_ret == IRQ_WAKE_THREAD:
            if not desc.threads_handled_last & SPURIOUS_DEFERRED:
                desc.threads_handled_last |= SPURIOUS_DEFERRED
                return
            handled = (desc.threads_handled & 0xFFFFFFFF) | SPURIOUS_DEFERRED
            if handled != desc.threads_handled_last:
                action_ret = IRQ_HANDLED
                desc.threads_handled_last = handled
            else:
                action_ret = IRQ_NONE
        else:
            # A primary handler handled it: the threads' verdict does not matter.
            desc.threads_handled_last &= ~SPURIOUS_DEFERRED
    if action_ret == IRQ_NONE:
        jiffies = irqs.kernel.timers.jiffies()
        if jiffies > desc.last_unhandled + HZ // 10:  # time_after()
            desc.irqs_unhandled = 1
        else:
            desc.irqs_unhandled += 1
        desc.last_unhandled = jiffies
    if not desc.irqs_unhandled:
        return
    desc.irq_count += 1
    if desc.irq_count < IRQ_COUNT_WINDOW:
        return
    desc.irq_count = 0
    if desc.irqs_unhandled > UNHANDLED_LIMIT:
        k = irqs.kernel
        print_bad_irq(irqs, ctx, desc,
                      f'irq {desc.irq}: nobody cared (try booting with the "irqpoll" option)')
        k.log_line(0, f"Disabling IRQ #{desc.irq}")
        with desc.lock:
            desc.spurious_disabled = True
            desc.depth += 1  # irq_disable(): masked when the next one arrives
    desc.irqs_unhandled = 0


def report_bad_irq(irqs: Irq, ctx: ExecCtx, desc: IrqDesc, action_ret: int,
                   culprit: tuple[IrqAction, Any] | None) -> None:
    """The bogus-return-value report, at most 100 times per boot."""
    if irqs.bad_reports <= 0:
        return
    irqs.bad_reports -= 1
    shown = f"{action_ret:x}" if culprit is None else repr(culprit[1])
    print_bad_irq(irqs, ctx, desc, f"irq event {desc.irq}: bogus return value {shown}")
    k = irqs.kernel
    if culprit is not None:
        action, value = culprit
        k.log_line(3, f"bottomhalf: {k.symbols.symbol(action.handler)}() returned {value!r}, "
                      "not an irqreturn_t: return IRQ_HANDLED if its device interrupted, "
                      "IRQ_NONE if not (or IRQ_WAKE_THREAD to run the threaded handler)")


def print_bad_irq(irqs: Irq, ctx: ExecCtx, desc: IrqDesc, first: str) -> None:
    """__report_bad_irq(): the message, a stack dump and the line's handlers."""
    k = irqs.kernel
    sym = k.symbols
    k.log_line(3, first)
    k.dump_stack(ctx)
    k.log_line(3, "handlers:")
    with desc.lock:
        actions = list(desc.actions)
    for a in actions:
        line = f"[<{sym.pointer(a.handler)}>] {sym.symbol(a.handler)}"
        if a.thread_fn is not None:
            line += f" threaded [<{sym.pointer(a.thread_fn)}>] {sym.symbol(a.thread_fn)}"
        k.log_line(3, line)
