"""Exceptions raised to Python callers.

Kernel-side problems (a sleeping call in atomic context, an exception in a
work function, a module unloaded under pending work) are reported the
kernel's way, in the log, and the kernel keeps running.  The exceptions here
are for misuse from Python and for runs that cannot go on.
"""

from __future__ import annotations

from .errnos import kmod_strerror, strerror


class BottomHalfError(Exception):
    """Base class of every bottomhalf exception."""


class ModuleError(BottomHalfError):
    """rmmod/insmod refused: not loaded, in use, no exit function, bad file...

    ``errno`` is the positive errno delete_module() or init_module() returned
    (``ENOENT`` for a module that is not loaded, ``EBUSY`` for one in use).
    """

    def __init__(self, message: str, err: int = 0) -> None:
        super().__init__(message)
        self.errno = err


class ModuleLoadError(ModuleError):
    """insmod failed: the module's init returned -errno or raised, or the file is bad.

    ``errno`` is positive, as kmod reports it (``errno.ENOMEM``...).  The
    message is kmod's: "could not insert module NAME: <kmod_strerror>", or,
    for a file that is not there (``found=False``), "could not load module
    NAME: <strerror>", as insmod says before it reaches init_module().
    """

    def __init__(self, module: str, err: int, detail: str = "", *, found: bool = True) -> None:
        self.module = module
        self.detail = detail
        if found:
            msg = f"could not insert module {module}: {kmod_strerror(err)}"
        else:
            msg = f"could not load module {module}: {strerror(err)}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg, err)


class NotInKernelError(BottomHalfError):
    """A kernel API was called from outside any kernel context."""


class KernelStateError(BottomHalfError):
    """The kernel is not in a state that allows the call (not booted, halted...)."""


class KernelHang(BottomHalfError):
    """sim: the run cannot make progress (a deadlock or a wait that can never end).

    ``blocked`` lists one line per stuck task saying what it waits for.
    """

    def __init__(self, message: str, blocked: list[str] | None = None) -> None:
        self.blocked = list(blocked or [])
        full = message
        if self.blocked:
            full += "\n" + "\n".join("  " + b for b in self.blocked)
        super().__init__(full)


class IdleTimeout(BottomHalfError):
    """run_until_idle() gave up: something was still busy after the timeout."""

    def __init__(self, message: str, busy: list[str] | None = None) -> None:
        self.busy = list(busy or [])
        full = message
        if self.busy:
            full += "\n" + "\n".join("  " + b for b in self.busy)
        super().__init__(full)


class KernelFileError(BottomHalfError):
    """A write to a kernel file was refused (bad value, read-only file).

    ``errno`` is what write(2) would return; ``detail`` says why, if known.
    """

    def __init__(self, path: str, err: int, detail: str = "") -> None:
        self.path = path
        self.errno = err
        self.detail = detail
        why = strerror(err)
        super().__init__(f"{path}: {why}" + (f" ({detail})" if detail else ""))
