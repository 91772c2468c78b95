"""The kernel's vsprintf: the C conversions printk understands.

Mirrors lib/vsprintf.c (``format_decode``, ``number``, ``string``,
``pointer``) as of 6.12, including where it differs from C's printf and from
Python's ``%`` operator:

* ``%08.3d`` keeps the zero padding (C drops ``0`` when a precision is given):
  ``number()`` pads the field with zeros, then the precision with more zeros;
* a precision of 0 still prints the digit of 0 (``%.0d`` of 0 is ``0``);
* ``%#x`` of 0 prints ``0x0``, ``%#o`` of 0 prints ``0``, of 8 prints ``010``;
* ``+`` and space only affect the signed conversions ``%d`` and ``%i``;
* ``%.d`` (a dot without digits) means no precision at all;
* the length modifiers are ``hh h l ll L z t``; without one an integer is a C
  ``int`` (32 bits): the value wraps as the C cast would (``%u`` of -1 is
  4294967295, ``%lu`` of -1 is 18446744073709551615);
* ``%p`` is followed by any number of letters and digits, all of them part
  of the conversion (``%pS``, ``%pSR``, ``%pK``...).

Where C code would read garbage and Linux stops formatting (a missing
argument, ``%n``, an unknown conversion), Python code gets a
:class:`PrintkFormatError` naming the conversion: that is the compile-time
``-Wformat`` check C has and Python lacks.  Extra arguments are ignored, as in
C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Bits of the C type each length modifier selects (64-bit kernel).
_BITS = {"": 32, "hh": 8, "h": 16, "l": 64, "ll": 64, "L": 64, "z": 64, "t": 64}

# %p extensions lib/vsprintf.c pointer() gives a meaning this model does not
# have (MAC and IP addresses, UUIDs, dentries, clocks...).  Any other letter
# falls through to a plain hashed pointer, as it does in Linux.
_UNSUPPORTED_POINTER_EXT = set("RrhMmIiEUVN4adtCDgGOfAuk")

SymbolFn = Callable[[Any, bool], str]
PointerFn = Callable[[Any, str], str]


class PrintkFormatError(TypeError):
    """A printk format and its arguments do not fit together."""


class _Spec:
    """struct printf_spec: what format_decode() found."""

    __slots__ = ("left", "plus", "space", "special", "zeropad", "width", "precision")

    def __init__(self) -> None:
        self.left = self.plus = self.space = self.special = self.zeropad = False
        self.width = -1
        self.precision = -1


def vsprintf(fmt: str, args: tuple[Any, ...], symbol: SymbolFn | None = None,
             pointer: PointerFn | None = None) -> str:
    """Format ``fmt`` with ``args`` as the kernel's vsnprintf would.

    ``symbol(obj, with_offset)`` renders ``%ps``/``%pS``; ``pointer(obj, kind)``
    renders ``%p`` (kind ``"hashed"``) and ``%px`` (kind ``"raw"``) as 16 hex
    digits.
    """
    return _Formatter(fmt, args, symbol, pointer).run()


class _Formatter:
    def __init__(self, fmt: str, args: tuple[Any, ...], symbol: SymbolFn | None,
                 pointer: PointerFn | None) -> None:
        self.fmt = fmt
        self.args = args
        self.argi = 0
        self.symbol = symbol
        self.pointer = pointer

    def fail(self, spec: str, why: str) -> PrintkFormatError:
        return PrintkFormatError(f"printk format {self.fmt!r}: conversion '{spec}' {why}")

    def next_arg(self, spec: str) -> Any:
        if self.argi >= len(self.args):
            raise self.fail(spec, f"has no argument ({len(self.args)} given)")
        v = self.args[self.argi]
        self.argi += 1
        return v

    def int_arg(self, spec: str) -> int:
        v = self.next_arg(spec)
        if isinstance(v, int):  # bool is an int, as in C
            return int(v)
        if hasattr(v, "__index__") and not isinstance(v, (str, bytes)):
            return int(v.__index__())
        raise self.fail(spec, f"needs an integer, got {type(v).__name__} {v!r}")

    def run(self) -> str:
        fmt = self.fmt
        n = len(fmt)
        out: list[str] = []
        i = 0
        while i < n:
            j = fmt.find("%", i)
            if j < 0:
                out.append(fmt[i:])
                break
            out.append(fmt[i:j])
            i = self.conversion(j, out)
        return "".join(out)

    def conversion(self, start: int, out: list[str]) -> int:
        """format_decode() and the matching case of vsnprintf(); returns the
        index after the conversion."""
        fmt = self.fmt
        n = len(fmt)
        k = start + 1
        sp = _Spec()
        while k < n and fmt[k] in "-+ #0":
            c = fmt[k]
            if c == "-":
                sp.left = True
            elif c == "+":
                sp.plus = True
            elif c == " ":
                sp.space = True
            elif c == "#":
                sp.special = True
            else:
                sp.zeropad = True
            k += 1
        if k < n and fmt[k] == "*":
            width = self.int_arg(fmt[start:k + 1])
            k += 1
            if width < 0:
                sp.left = True
                width = -width
            sp.width = width
        elif k < n and "0" <= fmt[k] <= "9":
            sp.width, k = _skip_atoi(fmt, k)
        if k < n and fmt[k] == ".":
            k += 1
            if k < n and fmt[k] == "*":
                sp.precision = max(0, self.int_arg(fmt[start:k + 1]))
                k += 1
            elif k < n and "0" <= fmt[k] <= "9":
                sp.precision, k = _skip_atoi(fmt, k)
        qual = ""
        if k < n and fmt[k] in "hlLzt":
            qual = fmt[k]
            k += 1
            if qual in "hl" and k < n and fmt[k] == qual:
                qual += qual
                k += 1
        if k >= n:
            raise self.fail(fmt[start:], "is incomplete (the format ends inside it)")
        conv = fmt[k]
        k += 1
        spec = fmt[start:k]
        if conv == "%":
            out.append("%")
        elif conv == "c":
            out.append(self.char(spec, sp))
        elif conv == "s":
            v = self.next_arg(spec)
            out.append(_string("(null)" if v is None else str(v), sp))
        elif conv == "p":
            ext_end = k
            while ext_end < n and fmt[ext_end].isascii() and fmt[ext_end].isalnum():
                ext_end += 1
            out.append(self.pointer_conv(fmt[start:ext_end], fmt[k:ext_end], sp))
            k = ext_end
        elif conv in "diuoxX":
            bits = _BITS[qual]
            v = self.int_arg(spec) & ((1 << bits) - 1)
            signed = conv in "di"
            if signed and v >= 1 << (bits - 1):
                v -= 1 << bits
            base = 8 if conv == "o" else 16 if conv in "xX" else 10
            out.append(number(v, base, sp, signed=signed, upper=conv == "X"))
        elif conv == "n":
            raise self.fail(spec, "is not supported: Linux refuses %n (see lib/vsprintf.c)")
        else:
            raise self.fail(spec, "is not a conversion Linux's vsprintf knows")
        return k

    def char(self, spec: str, sp: _Spec) -> str:
        v = self.next_arg(spec)
        if isinstance(v, int):
            ch = chr(int(v) & 0xFF)
        elif isinstance(v, str) and len(v) == 1:
            ch = v
        else:
            raise self.fail(spec, f"needs an int or a 1-character str, got {v!r}")
        pad = " " * max(sp.width - 1, 0)
        return ch + pad if sp.left else pad + ch

    def pointer_conv(self, spec: str, ext: str, sp: _Spec) -> str:
        v = self.next_arg(spec)
        kind = ext[:1]
        if kind in _UNSUPPORTED_POINTER_EXT:
            raise self.fail(spec, f"(%p{kind}) is a Linux pointer extension bottomhalf does "
                                  "not model; use %p, %px, %ps, %pS or %pB")
        if kind in ("s", "S", "B"):
            with_offset = kind != "s"
            text = self.symbol(v, with_offset) if self.symbol else _plain_symbol(v)
            return _string(text, sp)
        if v is None:
            return _pointer_string(0, sp)
        if kind == "x":
            raw = self.pointer(v, "raw") if self.pointer else f"{id(v):016x}"
            return _pointer_string(int(raw, 16), sp)
        hashed = self.pointer(v, "hashed") if self.pointer else f"{id(v) & 0xFFFFFFFF:016x}"
        return _pointer_string(int(hashed, 16), sp)


def _skip_atoi(fmt: str, k: int) -> tuple[int, int]:
    """skip_atoi(): the decimal number that starts at ``fmt[k]`` (a digit), and
    the index after it."""
    i = 0
    while k < len(fmt) and "0" <= fmt[k] <= "9":
        i = i * 10 + ord(fmt[k]) - 48
        k += 1
    return i, k


def number(num: int, base: int, sp: _Spec, *, signed: bool = False, upper: bool = False) -> str:
    """lib/vsprintf.c number(): ``num`` already has its C type's value."""
    zeropad = sp.zeropad and not sp.left
    need_pfx = sp.special and base != 10
    is_zero = num == 0
    field = sp.width
    sign = ""
    if signed:
        if num < 0:
            sign = "-"
            num = -num
            field -= 1
        elif sp.plus:
            sign = "+"
            field -= 1
        elif sp.space:
            sign = " "
            field -= 1
    if need_pfx:
        if base == 16:
            field -= 2
        elif not is_zero:
            field -= 1
    digits = format(num, {8: "o", 10: "d", 16: "X" if upper else "x"}[base])
    precision = max(sp.precision, len(digits))
    field -= precision
    out = []
    if not zeropad and not sp.left and field > 0:
        out.append(" " * field)
        field = 0
    out.append(sign)
    if need_pfx:
        if base == 16:
            out.append("0X" if upper else "0x")
        elif not is_zero:
            out.append("0")
    if not sp.left and field > 0:
        out.append(("0" if zeropad else " ") * field)
        field = 0
    out.append("0" * (precision - len(digits)))
    out.append(digits)
    if field > 0:
        out.append(" " * field)
    return "".join(out)


def _string(text: str, sp: _Spec) -> str:
    """string_nocheck() + widen_string(): precision cuts, width pads with spaces."""
    if sp.precision >= 0:
        text = text[:sp.precision]
    if sp.width > len(text):
        return text.ljust(sp.width) if sp.left else text.rjust(sp.width)
    return text


def _pointer_string(value: int, sp: _Spec) -> str:
    """pointer_string(): 16 zero-padded hex digits unless a width was given."""
    p = _Spec()
    p.left, p.zeropad, p.precision = sp.left, sp.zeropad, sp.precision
    p.width = sp.width
    if sp.width == -1:
        p.width = 16
        p.zeropad = True
    return number(value, 16, p)


def _plain_symbol(v: Any) -> str:
    name = getattr(v, "__name__", None)
    return name if name else repr(v)
