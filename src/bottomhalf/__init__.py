"""bottomhalf: Linux deferred work, faithfully, in Python.

Hard IRQs, softirqs, tasklets, workqueues, timers, printk/dmesg and loadable
modules, on a deterministic simulator (``engine="sim"``) or on real threads
(``engine="real"``).  Start with :class:`Kernel`; module files import the
kernel API from :mod:`bottomhalf.linux`.
"""

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
