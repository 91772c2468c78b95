"""Hard IRQs and softirq raising (include/linux/interrupt.h)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import current_ctx as _ctx
from ..irqdesc import IRQF_COND_ONESHOT
from ..softirq import (
    NR_SOFTIRQS,
)


def request_threaded_irq(irq: int, handler: Callable[[int, Any], int] | None,
                         thread_fn: Callable[[int, Any], int] | None, flags: int, name: str,
                         dev: Any) -> int:
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "request_threaded_irq")
    owner = k.symbols.module_of(handler) or k.symbols.module_of(thread_fn)
    return k.irq.request_threaded_irq(ctx, irq, handler, thread_fn, flags, str(name), dev, owner)


def request_irq(irq: int, handler: Callable[[int, Any], int], flags: int, name: str,
                dev: Any) -> int:
    """Register ``handler(irq, dev_id)``; returns 0 or a negative errno."""
    return request_threaded_irq(irq, handler, None, flags | IRQF_COND_ONESHOT, name, dev)


def free_irq(irq: int, dev_id: Any) -> str | None:
    ctx = _ctx()
    return ctx.kernel.irq.free_irq(ctx, irq, dev_id)


def disable_irq(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.disable_irq(ctx, irq, sync=True)


def disable_irq_nosync(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.disable_irq(ctx, irq, sync=False)


def enable_irq(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.enable_irq(ctx, irq)


def synchronize_irq(irq: int) -> None:
    ctx = _ctx()
    desc = ctx.kernel.irq.descs.get(irq)
    if desc is not None:
        ctx.kernel.sched.might_sleep(ctx, "synchronize_irq")
        ctx.kernel.irq.synchronize_irq(ctx, desc)


def bh_raise_irq(irq: int, cpu: int | None = None) -> None:
    """bottomhalf's stand-in for hardware: assert interrupt line ``irq``.

    Linux has no such call (a device raises the interrupt); module code that
    simulates a device uses it, as Python code uses Kernel.raise_irq.
    """
    ctx = _ctx()
    ctx.kernel.irq.raise_irq(irq, cpu)


def bh_device(name: str) -> Any:
    """bottomhalf's stand-in for device discovery: the virtual device ``name``
    (see bottomhalf.devices), or None.  Attach with request_irq(dev.irq, ...)."""
    return _ctx().kernel.devices.get(name)


def raise_softirq(nr: int) -> None:
    if not isinstance(nr, int) or not 0 <= nr < NR_SOFTIRQS:
        raise ValueError(f"raise_softirq(): no softirq vector {nr!r}")
    ctx = _ctx()
    ctx.kernel.softirq.raise_softirq(ctx, nr)
