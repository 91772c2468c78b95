"""bottomhalf: Linux deferred work, faithfully, in Python.

Hard IRQs, softirqs, tasklets, workqueues, timers, printk/dmesg and loadable
modules, on a deterministic simulator (``engine="sim"``) or on real threads
(``engine="real"``).  Start with :class:`Kernel`; module files import the
kernel API from :mod:`bottomhalf.linux`.

The names below are imported on first use (PEP 562), so that importing a
submodule such as :mod:`bottomhalf.cli` does not load the kernel.
"""

from __future__ import annotations

# Neither typing nor importlib is imported here: together they would add about
# 10 ms to every `bh` command (bench/bench_cli_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errors import (
        BottomHalfError,
        IdleTimeout,
        KernelFileError,
        KernelHang,
        KernelStateError,
        ModuleError,
        ModuleLoadError,
        NotInKernelError,
    )
    from .kernel import Kernel
    from .module import Module

__version__ = "0.1.0"

__all__ = [
    "BottomHalfError",
    "IdleTimeout",
    "Kernel",
    "KernelFileError",
    "KernelHang",
    "KernelStateError",
    "Module",
    "ModuleError",
    "ModuleLoadError",
    "NotInKernelError",
    "__version__",
]

# public name -> the submodule that defines it
_HOME = {
    "BottomHalfError": "errors",
    "IdleTimeout": "errors",
    "KernelFileError": "errors",
    "KernelHang": "errors",
    "KernelStateError": "errors",
    "ModuleError": "errors",
    "ModuleLoadError": "errors",
    "NotInKernelError": "errors",
    "Kernel": "kernel",
    "Module": "module",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'bottomhalf' has no attribute {name!r}")
    module = __import__(f"{__name__}.{home}", fromlist=[name])
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
