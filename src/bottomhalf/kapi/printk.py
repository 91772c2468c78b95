"""printk, pr_*, WARN/BUG and dump_stack (include/linux/printk.h, bug.h)."""

from __future__ import annotations

import sys
from typing import Any

from ..context import current_ctx as _ctx
from ..printk import (
    KERN_ALERT,
    KERN_CONT,
    KERN_CRIT,
    KERN_DEBUG,
    KERN_EMERG,
    KERN_ERR,
    KERN_INFO,
    KERN_NOTICE,
    KERN_WARNING,
)


def printk(fmt: str, *args: Any) -> None:
    """Log a message; start ``fmt`` with a level, e.g. ``KERN_INFO + "..."``."""
    if not isinstance(fmt, str):
        raise TypeError(f"printk(): the format must be a str, got {fmt!r}")
    ctx = _ctx()
    ctx.kernel.printk(ctx, fmt, *args)


def _pr(level: str, fmt: str, args: tuple[Any, ...], depth: int = 2) -> None:
    g = sys._getframe(depth).f_globals
    pf = g.get("pr_fmt")
    if callable(pf):
        fmt = pf(fmt)
    printk(level + fmt, *args)


def pr_emerg(fmt: str, *args: Any) -> None:
    _pr(KERN_EMERG, fmt, args)


def pr_alert(fmt: str, *args: Any) -> None:
    _pr(KERN_ALERT, fmt, args)


def pr_crit(fmt: str, *args: Any) -> None:
    _pr(KERN_CRIT, fmt, args)


def pr_err(fmt: str, *args: Any) -> None:
    _pr(KERN_ERR, fmt, args)


def pr_warn(fmt: str, *args: Any) -> None:
    _pr(KERN_WARNING, fmt, args)


pr_warning = pr_warn


def pr_notice(fmt: str, *args: Any) -> None:
    _pr(KERN_NOTICE, fmt, args)


def pr_info(fmt: str, *args: Any) -> None:
    _pr(KERN_INFO, fmt, args)


def pr_debug(fmt: str, *args: Any) -> None:
    """Compiled out unless the module sets ``DEBUG = True`` (as ``#define DEBUG``)."""
    if sys._getframe(1).f_globals.get("DEBUG"):
        _pr(KERN_DEBUG, fmt, args)


def pr_cont(fmt: str, *args: Any) -> None:
    printk(KERN_CONT + fmt, *args)


def _warn_here(message: str | None) -> None:
    ctx = _ctx()
    from .. import report

    report.warn(ctx.kernel, ctx, message, None, sys._getframe(2))


def WARN_ON(condition: Any) -> bool:  # noqa: N802
    if condition:
        _warn_here(None)
    return bool(condition)


def WARN_ON_ONCE(condition: Any) -> bool:  # noqa: N802
    """Warns the first time this call site sees a true condition (per load of
    the module, as each load has its own once-flags)."""
    if condition:
        f = sys._getframe(1)
        # code objects compare by value, so the site is keyed by the module's
        # globals (kept alive after unload), the file and the line
        if _ctx().kernel.log.once((id(f.f_globals), f.f_code.co_filename, f.f_lineno)):
            _warn_here(None)
    return bool(condition)


def WARN(condition: Any, fmt: str, *args: Any) -> bool:  # noqa: N802
    if condition:
        ctx = _ctx()
        from ..printk import vsprintf

        msg = vsprintf(fmt, args, ctx.kernel.symbols.symbol, ctx.kernel.symbols.pointer)
        _warn_here(msg.rstrip("\n"))
    return bool(condition)


class _KernelBug(Exception):
    """Unwinds the current handler after BUG() has been reported."""


def BUG() -> None:  # noqa: N802
    """Report "kernel BUG at FILE:LINE!" and an Oops, then unwind the caller."""
    ctx = _ctx()
    from .. import report

    where = report.bug(ctx.kernel, ctx, sys._getframe(1))
    exc = _KernelBug(f"kernel BUG at {where}")
    exc._bh_reported = True  # type: ignore[attr-defined]
    raise exc


def BUG_ON(condition: Any) -> None:  # noqa: N802
    if condition:
        BUG()


def dump_stack() -> None:
    ctx = _ctx()
    from .. import report

    report.dump_stack(ctx.kernel, ctx, sys._getframe(1), 4)
