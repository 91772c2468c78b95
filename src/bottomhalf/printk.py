"""printk, the kernel log ring buffer, the console and /proc/sys/kernel/printk.

Mirrors kernel/printk/printk.c and lib/vsprintf.c (reference §10):

* A message starts with ``KERN_SOH`` and a level digit (``KERN_INFO`` is
  ``"\\x016"``); without one it gets ``default_message_loglevel``.
  ``KERN_CONT`` appends to the caller's open record (one printed without a
  trailing newline), as Linux does since 4.9.
* Every record goes to the ring buffer (what ``dmesg`` shows); it also goes to
  the attached consoles only if its level is below ``console_loglevel``.
* ``/proc/sys/kernel/printk`` holds the four ``console_printk`` values;
  writing fewer numbers updates only the leading ones (``proc_dointvec``).

Guards: ``LogBuffer.lock`` (a plain lock, held only for list updates)
protects the records, the open continuation and the console list.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .errors import KernelFileError

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

LOGLEVEL_EMERG = 0
LOGLEVEL_ERR = 3
LOGLEVEL_WARNING = 4
LOGLEVEL_NOTICE = 5
LOGLEVEL_INFO = 6
LOGLEVEL_DEBUG = 7

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")

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

    def prefix(self) -> str:
        return format_timestamp(self.ts_ns)

    def lines(self) -> list[str]:
        """As dmesg prints it: the prefix on every line of the record."""
        pre = format_timestamp(self.ts_ns)
        return [f"{pre} {line}" for line in self.text.split("\n")]


def format_timestamp(ts_ns: int) -> str:
    """``[%5lu.%06lu]`` of the seconds and microseconds since boot."""
    usec = ts_ns // 1000
    return f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}]"


class LogBuffer:
    """The printk ring buffer with its consoles and console_printk settings."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.lock = threading.Lock()
        self.records: deque[LogRecord] = deque()
        self.size = 0
        self.seq = 0
        self.first_seq = 0
        self.clear_seq = 0  # dmesg -C / -c: records before this are hidden
        # console_printk[4]: console_loglevel, default_message_loglevel,
        # minimum_console_loglevel, default_console_loglevel
        self.console_printk = [7, 4, 1, 7]
        self.consoles: list[TextIO] = []
        self.listeners: list[Callable[[LogRecord], None]] = []
        self._open: LogRecord | None = None

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
            elif c == "d":
                pass  # KERN_DEFAULT in some kernels
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
            if rec is not None and cont and level < 0 and rec.caller == caller:
                rec.text += text
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
                while self.size > LOG_BUF_LEN and len(self.records) > 1:
                    old = self.records.popleft()
                    self.size -= len(old.text) + _RECORD_OVERHEAD
                    self.first_seq = old.seq
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

    def flush_open(self) -> None:
        """Close a record left open (used before reading the log)."""
        with self.lock:
            rec = self._open
            self._open = None
        if rec is not None:
            rec.open = False
            if rec.level < self.console_printk[0]:
                for stream in list(self.consoles):
                    try:
                        stream.write("\n".join(rec.lines()) + "\n")
                    except (OSError, ValueError):
                        pass
            for fn in list(self.listeners):
                fn(rec)

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
        fields = text.split()
        if not fields:
            raise KernelFileError("/proc/sys/kernel/printk", 22, "no value")
        values: list[int] = []
        for f in fields[:4]:
            try:
                values.append(int(f, 0) if f.lower().startswith(("0x", "-0x")) else int(f))
            except ValueError:
                raise KernelFileError(
                    "/proc/sys/kernel/printk", 22, f"'{f}' is not an integer"
                ) from None
        with self.lock:
            for i, v in enumerate(values):
                self.console_printk[i] = v


def _caller_id(ctx: ExecCtx | None) -> int:
    """printk_caller_id(): the pid in task context, else 0x80000000 + CPU."""
    if ctx is None:
        return -1
    if ctx.in_task():
        return ctx.task.pid if not ctx.task.is_idle else 0x80000000 + ctx.cpu
    return 0x80000000 + ctx.cpu


# ----------------------------------------------------------------------
# lib/vsprintf.c: the C conversions printk understands

_LENGTH_BITS = {"": 32, "hh": 8, "h": 16, "l": 64, "ll": 64, "z": 64, "t": 64, "j": 64, "L": 64}


class PrintkFormatError(TypeError):
    """A printk format and its arguments do not fit together."""


def vsprintf(
    fmt: str, args: tuple[Any, ...], symbol: Callable[[Any, bool], str] | None = None,
    pointer: Callable[[Any, str], str] | None = None,
) -> str:
    """Format ``fmt`` with ``args`` as the kernel's vsprintf would.

    ``symbol(obj, with_offset)`` renders ``%ps``/``%pS``; ``pointer(obj, kind)``
    renders ``%p`` (hashed) and ``%px`` (raw).  Missing arguments raise
    :class:`PrintkFormatError` naming the conversion.
    """
    out: list[str] = []
    i = 0
    n = len(fmt)
    argi = 0

    def next_arg(spec: str) -> Any:
        nonlocal argi
        if argi >= len(args):
            raise PrintkFormatError(
                f"printk format {fmt!r}: conversion '{spec}' has no argument "
                f"({len(args)} given)"
            )
        v = args[argi]
        argi += 1
        return v

    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        k = j + 1
        if k < n and fmt[k] == "%":
            out.append("%")
            i = k + 1
            continue
        flags = ""
        while k < n and fmt[k] in "-+ #0":
            flags += fmt[k]
            k += 1
        width: int | None = None
        if k < n and fmt[k] == "*":
            width = int(next_arg("*"))
            k += 1
            if width < 0:
                flags += "-"
                width = -width
        else:
            s = k
            while k < n and fmt[k].isdigit():
                k += 1
            if k > s:
                width = int(fmt[s:k])
        prec: int | None = None
        if k < n and fmt[k] == ".":
            k += 1
            if k < n and fmt[k] == "*":
                prec = max(0, int(next_arg("*")))
                k += 1
            else:
                s = k
                while k < n and fmt[k].isdigit():
                    k += 1
                prec = int(fmt[s:k]) if k > s else 0
        length = ""
        for cand in ("hh", "ll", "h", "l", "z", "t", "j", "L"):
            if fmt.startswith(cand, k):
                length = cand
                k += len(cand)
                break
        if k >= n:
            out.append(fmt[j:])
            break
        conv = fmt[k]
        k += 1
        spec = fmt[j:k]
        if conv in "di":
            v = _int_arg(next_arg(spec), spec, fmt)
            bits = _LENGTH_BITS[length]
            v = _wrap_signed(v, bits)
            body = _fmt_int(abs(v), 10, prec)
            sign = "-" if v < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
            out.append(_pad(sign, body, width, flags))
        elif conv in "uxXo":
            v = _int_arg(next_arg(spec), spec, fmt)
            bits = _LENGTH_BITS[length]
            v &= (1 << bits) - 1
            base = {"u": 10, "x": 16, "X": 16, "o": 8}[conv]
            body = _fmt_int(v, base, prec)
            if conv == "X":
                body = body.upper()
            prefix = ""
            if "#" in flags and v:
                prefix = {"x": "0x", "X": "0X", "o": "0"}.get(conv, "")
            out.append(_pad(prefix, body, width, flags))
        elif conv == "c":
            v = next_arg(spec)
            ch = chr(v & 0xFF) if isinstance(v, int) else str(v)[:1]
            out.append(_pad("", ch, width, flags.replace("0", "")))
        elif conv == "s":
            v = next_arg(spec)
            sv = "(null)" if v is None else str(v)
            if prec is not None:
                sv = sv[:prec]
            out.append(_pad("", sv, width, flags.replace("0", "")))
        elif conv == "p":
            v = next_arg(spec)
            ext = ""
            if k < n and fmt[k] in "sSfFBKx":
                ext = fmt[k]
                k += 1
            if ext in ("s", "f"):
                sv = symbol(v, False) if symbol else _plain_symbol(v)
            elif ext in ("S", "F", "B"):
                sv = symbol(v, True) if symbol else _plain_symbol(v)
            elif ext == "x":
                sv = pointer(v, "raw") if pointer else f"{id(v) & 0xFFFFFFFFFFFFFFFF:016x}"
            else:
                if v is None:
                    sv = "0000000000000000"
                else:
                    sv = pointer(v, "hashed") if pointer else f"{id(v) & 0xFFFFFFFF:016x}"
            out.append(_pad("", sv, width, flags.replace("0", "")))
        else:
            # Unknown conversion: vsprintf prints it as-is.
            out.append(spec)
        i = k
    return "".join(out)


def _int_arg(v: Any, spec: str, fmt: str) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if hasattr(v, "__index__"):
        return int(v.__index__())
    if isinstance(v, str) and len(v) == 1:
        return ord(v)
    raise PrintkFormatError(
        f"printk format {fmt!r}: conversion '{spec}' needs an integer, got {type(v).__name__} {v!r}"
    )


def _wrap_signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    if v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def _fmt_int(v: int, base: int, prec: int | None) -> str:
    if base == 10:
        s = str(v)
    elif base == 16:
        s = format(v, "x")
    else:
        s = format(v, "o")
    if prec is not None:
        if prec == 0 and v == 0:
            return ""
        s = s.rjust(prec, "0")
    return s


def _pad(prefix: str, body: str, width: int | None, flags: str) -> str:
    text = prefix + body
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags:
        return prefix + body.rjust(width - len(prefix), "0")
    return text.rjust(width)


def _plain_symbol(v: Any) -> str:
    name = getattr(v, "__name__", None)
    return name if name else repr(v)
