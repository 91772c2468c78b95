"""module_init/exit, MODULE_* and module_param (include/linux/module.h)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .. import module as _module
from ._base import (
    _need_fn,
)


def _meta(depth: int = 2) -> _module.ModuleMeta:
    return _module.meta_of(sys._getframe(depth).f_globals)


def module_init(fn: Callable[[], int]) -> Callable[[], int]:
    """Register the module's init (also usable as a decorator)."""
    _need_fn(fn, "module_init", "fn")
    _meta().init = fn
    return fn


def module_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Register the module's exit (also usable as a decorator)."""
    _need_fn(fn, "module_exit", "fn")
    _meta().exit = fn
    return fn


def MODULE_LICENSE(s: str) -> None:  # noqa: N802
    _meta().license = str(s)


def MODULE_AUTHOR(s: str) -> None:  # noqa: N802
    m = _meta()
    m.author = f"{m.author}, {s}" if m.author else str(s)


def MODULE_DESCRIPTION(s: str) -> None:  # noqa: N802
    _meta().description = str(s)


def MODULE_VERSION(s: str) -> None:  # noqa: N802
    _meta().version = str(s)


def module_param(name: str, type: str, perm: int) -> None:  # noqa: A002
    """Declare a module global as a parameter: ``module_param("count", "int", 0o644)``."""
    if type not in ("int", "uint", "long", "ulong", "short", "ushort", "byte", "ullong",
                    "bool", "invbool", "charp", "string"):
        raise ValueError(f"module_param(): unknown type {type!r}")
    _meta().params[name] = (type, perm)


def MODULE_PARM_DESC(name: str, desc: str) -> None:  # noqa: N802
    _meta().param_desc[name] = desc
