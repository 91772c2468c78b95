"""Interrupt descriptors and actions, and the flags and return values of handlers.

Mirrors include/linux/irqdesc.h, include/linux/interrupt.h (``IRQF_*``,
``struct irqaction``) and include/linux/irqreturn.h.  The code that uses
them lives in :mod:`.irq` (request, free, flow handlers, threads) and
:mod:`.irqspurious` (the stuck-interrupt detector); the guard legend is in
:mod:`.irq`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task import Task

NR_IRQS = 256
IRQ_NOTCONNECTED = 1 << 31

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

_LEVEL = IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW
THREAD_MASK_FULL = (1 << 64) - 1  # thread_mask is an unsigned long


def IRQ_RETVAL(x: Any) -> int:  # noqa: N802 - kernel macro name
    return IRQ_HANDLED if x else IRQ_NONE


@dataclass(eq=False)
class IrqAction:
    """struct irqaction: one handler registered on a line."""

    handler: Callable[[int, Any], Any]
    thread_fn: Callable[[int, Any], Any] | None
    flags: int
    name: str
    dev_id: Any
    irq: int
    thread: Task | None = None
    thread_mask: int = 0  # this action's bit in desc.threads_oneshot (ONESHOT only)
    runthread: bool = False  # IRQTF_RUNTHREAD: the thread has to run thread_fn
    warned: bool = False  # IRQTF_WARNED: "no thread function" said once
    owner: str | None = None
    what: str = ""  # how an Oops names the handler ("IRQ 17 handler")

    def __post_init__(self) -> None:
        self.what = f"IRQ {self.irq} handler"


@dataclass(eq=False)
class IrqDesc:
    """struct irq_desc: one interrupt line."""

    irq: int
    ncpus: int
    actions: list[IrqAction] = field(default_factory=list)
    depth: int = 1  # disable depth; a line nobody requested is shut down (depth 1)
    trigger_type: int = 0  # IRQF_TRIGGER_* of the line, once someone set it
    masked: bool = True  # the chip does not deliver the line
    pending: bool = False  # IRQS_PENDING: arrived while masked or disabled; replay later
    oneshot: bool = False  # IRQS_ONESHOT
    spurious_disabled: bool = False  # IRQS_SPURIOUS_DISABLED
    inprogress: bool = False  # IRQD_IRQ_INPROGRESS: a CPU runs the primary handlers
    threads_oneshot: int = 0  # ONESHOT threads woken and not finished (bits)
    threads_active: int = 0  # threads woken and not finished (for synchronize_irq)
    threads_handled: int = 0  # thread_fn runs that returned IRQ_HANDLED
    threads_handled_last: int = 0
    kstat: list[int] = field(default_factory=list)
    irq_count: int = 0
    irqs_unhandled: int = 0
    last_unhandled: int = 0  # in jiffies
    affinity: int = 0
    waiters: list[Task] = field(default_factory=list)  # in synchronize_irq()
    lock: Any = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.kstat:
            self.kstat = [0] * self.ncpus

    @property
    def level(self) -> bool:
        return bool(self.trigger_type & _LEVEL)

    @property
    def flow(self) -> str:
        """The flow handler's name, shown in /proc/interrupts."""
        return "fasteoi" if self.level else "edge"

    def idle(self) -> bool:
        """No primary handler running and no thread woken (caller holds the lock)."""
        return not self.inprogress and self.threads_active == 0
