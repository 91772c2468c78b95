"""kmalloc and friends (include/linux/slab.h)."""

from __future__ import annotations

from typing import Any

from ..context import current_ctx as _ctx
from ._base import (
    __GFP_DIRECT_RECLAIM,
    __GFP_HIGH,
    __GFP_NOWARN,
    __GFP_ZERO,
    KMALLOC_MAX_SIZE,
)


def kmalloc(size: int, flags: int) -> bytearray | None:
    """A zero-filled buffer of ``size`` bytes, or None.  GFP_KERNEL may sleep."""
    ctx = _ctx()
    k = ctx.kernel
    if flags & __GFP_DIRECT_RECLAIM:
        k.sched.might_sleep(ctx, "kmalloc")
    if not isinstance(size, int) or size < 0 or size > KMALLOC_MAX_SIZE:
        if not flags & __GFP_NOWARN:
            k.warn(ctx, None, where="__kmalloc_large_node")
        return None
    if k.wq.fail_worker_creation and not flags & __GFP_HIGH:
        return None
    return bytearray(size)


def kzalloc(size: int, flags: int) -> bytearray | None:
    return kmalloc(size, flags | __GFP_ZERO)


def kcalloc(n: int, size: int, flags: int) -> bytearray | None:
    return kmalloc(n * size, flags | __GFP_ZERO)


def kfree(obj: Any) -> None:
    pass
