"""printk, the kernel log ring buffer, the console and /proc/sys/kernel/printk.

Mirrors kernel/printk/printk.c and kernel/printk/sysctl.c (reference §10);
the formatting itself is lib/vsprintf.c, in :mod:`bottomhalf.vsprintf`.

* A message starts with ``KERN_SOH`` and a level digit (``KERN_INFO`` is
  ``"\\x016"``); without one it gets ``default_message_loglevel``.  The
  prefixes are read from the formatted text, as ``printk_parse_prefix`` does.
* ``KERN_CONT`` appends to the last record only if that record is still open
  (it was printed without a trailing newline) and comes from the same caller
  (``printk_caller_id``: the pid in task context, the CPU otherwise).  Any
  other record, from anyone, closes the open one; a continuation that cannot
  append starts a record of its own at the default level.
* Every record goes to the ring buffer (what ``dmesg`` shows).  A finished
  record also goes to each attached console if its level is below
  ``console_loglevel`` (``suppress_message_printing``).
* ``dmesg`` prints ``[%5lu.%06lu] `` before every line of a record, as the
  kernel's own record printer does for a record with embedded newlines.
* ``/proc/sys/kernel/printk`` holds the four ``console_printk`` values, read
  tab-separated.  A write parses integers as ``proc_dointvec`` does (base 0,
  so ``0x10`` and ``010`` are 16 and 8; ``int`` range) and updates only as
  many leading values as it was given; more than four are ignored.  One
  difference, on purpose: Linux stores the values before a bad one and then
  fails, here a write with a bad value fails and changes nothing.

Guards: ``LogBuffer.lock`` (a plain lock, held only for list updates)
protects the records, the open continuation, the console list and
``console_printk``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from .errnos import EINVAL
from .errors import KernelFileError
from .params import kstrtoll
from .printk_time import format_timestamp as format_timestamp  # re-exported
from .vsprintf import PrintkFormatError as PrintkFormatError  # re-exported
from .vsprintf import vsprintf as vsprintf  # re-exported

if TYPE_CHECKING:
    from .context import ExecCtx
    from .kernel import Kernel

KERN_SOH = "\001"
KERN_EMERG = KERN_SOH + "0"
KERN_ALERT = KERN_SOH + "1"
KERN_CRIT = KERN_SOH + "2"
KERN_ERR = KERN_SOH + "3"
KERN_WARNING = KERN_SOH + "4"
KERN_NOTICE = KERN_SOH + "5"
KERN_INFO = KERN_SOH + "6"
KERN_DEBUG = KERN_SOH + "7"
KERN_DEFAULT = ""
KERN_CONT = KERN_SOH + "c"

# The ring buffer keeps at most this much text (CONFIG_LOG_BUF_SHIFT=18).
LOG_BUF_LEN = 1 << 18
_RECORD_OVERHEAD = 16


@dataclass
class LogRecord:
    """One entry of the ring buffer (struct printk_info + its text)."""

    seq: int
    ts_ns: int
    level: int
    text: str
    caller: int
    facility: int = 0
    open: bool = False  # no trailing newline yet: KERN_CONT may append

    def lines(self) -> list[str]:
        """As dmesg prints it: the prefix on every line of the record."""
        pre = format_timestamp(self.ts_ns)
        return [f"{pre} {line}" for line in self.text.split("\n")]


class LogBuffer:
    """The printk ring buffer with its consoles and console_printk settings."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.lock = threading.Lock()
        self.records: deque[LogRecord] = deque()
        self.size = 0
        self.seq = 0
        self.clear_seq = 0  # dmesg -C / -c: records before this are hidden
        # console_printk[4]: console_loglevel, default_message_loglevel,
        # minimum_console_loglevel, default_console_loglevel
        self.console_printk = [7, 4, 1, 7]
        self.consoles: list[TextIO] = []
        self.listeners: list[Callable[[LogRecord], None]] = []
        self._open: LogRecord | None = None
        self._once: set[object] = set()  # call sites of printk_once/WARN_ON_ONCE

    # ------------------------------------------------------------------
    @property
    def console_loglevel(self) -> int:
        return self.console_printk[0]

    def attach_console(self, stream: TextIO) -> None:
        with self.lock:
            self.consoles.append(stream)

    def detach_console(self, stream: TextIO) -> None:
        with self.lock:
            if stream in self.consoles:
                self.consoles.remove(stream)

    # ------------------------------------------------------------------
    def emit(self, ctx: ExecCtx | None, message: str) -> None:
        """Store a formatted message (still carrying its level prefix)."""
        level = -1
        cont = False
        text = message
        while len(text) >= 2 and text[0] == KERN_SOH:
            c = text[1]
            if "0" <= c <= "7":
                level = ord(c) - 48
            elif c == "c":
                cont = True
            else:
                break
            text = text[2:]
        ends = text.endswith("\n")
        if ends:
            text = text[:-1]
        now = self.kernel.now_ns
        caller = _caller_id(ctx)
        finished: list[LogRecord] = []
        with self.lock:
            rec = self._open
            if rec is not None and cont and rec.caller == caller:
                rec.text += text
                self.size += len(text)
                self._make_room()
                if ends:
                    rec.open = False
                    self._open = None
                    finished.append(rec)
            else:
                if rec is not None:
                    rec.open = False
                    self._open = None
                    finished.append(rec)
                if level < 0:
                    level = self.console_printk[1]
                self.seq += 1
                rec = LogRecord(self.seq, now, level, text, caller, open=not ends)
                self.records.append(rec)
                self.size += len(text) + _RECORD_OVERHEAD
                self._make_room()
                if ends:
                    finished.append(rec)
                else:
                    self._open = rec
            consoles = list(self.consoles) if finished else []
            listeners = list(self.listeners) if finished else []
        for r in finished:
            if r.level < self.console_printk[0]:
                for stream in consoles:
                    try:
                        stream.write("\n".join(r.lines()) + "\n")
                        stream.flush()
                    except (OSError, ValueError):
                        pass
            for fn in listeners:
                fn(r)

    def _make_room(self) -> None:
        """Drop the oldest records until the text fits in LOG_BUF_LEN (the newest
        record always stays, however long).  Called with ``lock`` held."""
        while self.size > LOG_BUF_LEN and len(self.records) > 1:
            old = self.records.popleft()
            self.size -= len(old.text) + _RECORD_OVERHEAD

    def once(self, site: object) -> bool:
        """True the first time ``site`` asks (DO_ONCE_LITE of the _once macros)."""
        with self.lock:
            if site in self._once:
                return False
            self._once.add(site)
            return True

    # ------------------------------------------------------------------
    def snapshot(self, *, include_cleared: bool = False) -> list[LogRecord]:
        with self.lock:
            recs = list(self.records)
        if include_cleared:
            return recs
        return [r for r in recs if r.seq > self.clear_seq]

    def dmesg_lines(self) -> list[str]:
        out: list[str] = []
        for r in self.snapshot():
            out.extend(r.lines())
        return out

    def clear(self) -> None:
        """dmesg -C: hide what is in the buffer now."""
        with self.lock:
            self.clear_seq = self.seq

    # ------------------------------------------------------------------
    # /proc/sys/kernel/printk
    def read_sysctl(self) -> str:
        return "\t".join(str(v) for v in self.console_printk) + "\n"

    def write_sysctl(self, text: str) -> None:
        """proc_dointvec on console_printk[4]: all values checked, then stored."""
        fields = text.split()[:4]
        if not fields:
            raise KernelFileError("/proc/sys/kernel/printk", EINVAL, "no value given")
        values = [_parse_dointvec(f) for f in fields]
        with self.lock:
            self.console_printk[: len(values)] = values


_INT_MIN = -(1 << 31)
_INT_MAX = (1 << 31) - 1


def _parse_dointvec(field: str) -> int:
    """proc_get_long() + do_proc_dointvec_conv(): one base-0 C int, no '+'."""
    try:
        if field.startswith("+"):
            raise ValueError(field)
        v = kstrtoll(field, signed=True)
    except ValueError:
        raise KernelFileError("/proc/sys/kernel/printk", EINVAL,
                              f"'{field}' is not an integer; nothing was changed") from None
    if not _INT_MIN <= v <= _INT_MAX:
        raise KernelFileError("/proc/sys/kernel/printk", EINVAL,
                              f"{field} does not fit in an int; nothing was changed")
    return v


def _caller_id(ctx: ExecCtx | None) -> int:
    """printk_caller_id(): the pid in task context, else 0x80000000 + CPU."""
    if ctx is None:
        return -1
    if ctx.in_task():
        return ctx.task.pid if not ctx.task.is_idle else 0x80000000 + ctx.cpu
    return 0x80000000 + ctx.cpu
