"""container_of and the from_*() helpers (include/linux/container_of.h)."""

from __future__ import annotations

import gc
from typing import Any

from ..tasklet import tasklet_struct
from ..timer import (
    timer_list,
)


def container_of(ptr: Any, type_or_sample: Any, member: str) -> Any:
    """The object whose attribute ``member`` is ``ptr``.

    ``type_or_sample`` is a class (as the C macro takes a type) or an instance
    to check first.  The answer is cached on ``ptr``.
    """
    cached = getattr(ptr, "_bh_container", None)
    if cached is not None and getattr(cached, member, None) is ptr:
        return cached
    if not isinstance(type_or_sample, type) and getattr(type_or_sample, member, None) is ptr:
        _remember(ptr, type_or_sample)
        return type_or_sample
    cls = type_or_sample if isinstance(type_or_sample, type) else type(type_or_sample)
    for ref in gc.get_referrers(ptr):
        for cand in ([ref] if not isinstance(ref, dict) else gc.get_referrers(ref)):
            if isinstance(cand, cls) and getattr(cand, member, None) is ptr:
                _remember(ptr, cand)
                return cand
    raise LookupError(f"container_of(): no {cls.__name__} has .{member} == {ptr!r}")


def _remember(ptr: Any, container: Any) -> None:
    try:
        ptr._bh_container = container
    except AttributeError:
        pass


def from_tasklet(var: Any, t: tasklet_struct, field: str) -> Any:
    """``from_tasklet(var, t, field)``: the struct of ``var``'s type whose ``field``
    is ``t`` (``var`` is that class, or any instance of it)."""
    return container_of(t, var, field)


def from_timer(var: Any, timer: timer_list, field: str) -> Any:
    """``from_timer(var, timer, field)``: as from_tasklet, for an embedded timer_list."""
    return container_of(timer, var, field)


def from_work(var: Any, work: Any, field: str) -> Any:
    """``from_work(var, work, field)``: as from_tasklet, for an embedded work_struct."""
    return container_of(work, var, field)
