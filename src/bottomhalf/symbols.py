"""kallsyms for Python objects: %ps/%pS names and hashed %p pointers.

Mirrors what lib/vsprintf.c and kernel/kallsyms.c print:

* ``%ps`` of a function: its name, plus `` [module]`` when it lives in a
  loaded module (``my_work_func [workqueue_driver]``); ``%pS`` adds
  ``+offset/size`` (here: bytecode offset 0 and the code object's size).
* ``%ps`` of a data object (a tasklet_struct, a work_struct) names the module
  global that holds it, as CONFIG_KALLSYMS_ALL does for static variables.
* ``%p`` prints a hashed value, 32 bits zero-padded to 16 hex digits
  (``0000000086f4fe81``): the same object always hashes the same way within
  one boot, and the values come from the boot's seed, so ``sim`` runs repeat
  to the byte.  ``%px`` prints a stable made-up kernel address.

Guards: ``Symbols._lock`` protects the object-to-(hash, address) tables, so
two threads of the real engine printing the same new object agree on it.
"""

from __future__ import annotations

import random
import threading
import types
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kernel import Kernel


class Symbols:
    def __init__(self, kernel: Kernel, seed: int) -> None:
        self.kernel = kernel
        self._rng = random.Random(f"ptr-hash:{seed}")
        self._weak: weakref.WeakKeyDictionary[Any, tuple[int, int]] = weakref.WeakKeyDictionary()
        self._strong: dict[int, tuple[Any, int, int]] = {}
        self._next_addr = 0
        self._lock = threading.Lock()

    def _ids(self, obj: Any) -> tuple[int, int]:
        with self._lock:
            return self._ids_locked(obj)

    def _ids_locked(self, obj: Any) -> tuple[int, int]:
        try:
            got = self._weak.get(obj)
        except TypeError:
            got = None
            s = self._strong.get(id(obj))
            if s is not None and s[0] is obj:
                return s[1], s[2]
        if got is not None:
            return got
        h = self._rng.getrandbits(32)
        self._next_addr += 1
        addr = 0xFFFF888100000000 + self._next_addr * 0x40
        try:
            self._weak[obj] = (h, addr)
        except TypeError:
            self._strong[id(obj)] = (obj, h, addr)
        return h, addr

    def pointer(self, obj: Any, kind: str = "hashed") -> str:
        if obj is None:
            return "0000000000000000"
        h, addr = self._ids(obj)
        if kind == "raw":
            return f"{addr:016x}"
        return f"{h:016x}"

    def module_of(self, obj: Any) -> str | None:
        """The loaded module a function (or bound method) belongs to."""
        fn = getattr(obj, "__func__", obj)
        g = getattr(fn, "__globals__", None)
        if g is None:
            return None
        return self.kernel.modules.name_for_globals(g)

    def symbol(self, obj: Any, with_offset: bool = False) -> str:
        """``%ps`` (or ``%pS`` with ``with_offset``) of ``obj``."""
        if obj is None:
            return "0x0"
        fn = getattr(obj, "__func__", obj)
        code = getattr(fn, "__code__", None)
        if isinstance(code, types.CodeType):
            name = fn.__name__
            text = name
            if with_offset:
                text += f"+0x0/0x{max(len(code.co_code), 1):x}"
            mod = self.module_of(fn)
            if mod:
                text += f" [{mod}]"
            return text
        if callable(obj) and hasattr(obj, "__name__"):
            return str(obj.__name__)
        found = self.kernel.modules.global_name_of(obj)
        if found is not None:
            mod, name = found
            text = name + ("+0x0/0x40" if with_offset else "")
            return f"{text} [{mod}]"
        _, addr = self._ids(obj)
        return f"0x{addr:x}"
