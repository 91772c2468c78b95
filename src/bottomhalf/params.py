"""Module parameters: module_param() types and how insmod arguments become values.

Mirrors kernel/params.c (``param_set_int`` and friends, ``parse_args``) and
lib/kstrtox.c.  ``insmod(path, count=3)`` plays ``insmod mod.ko count=3``:
an argument may be given as a Python value of the parameter's type or as the
string the command line would carry, which is parsed as the kernel parses it
(base 0, so ``"0x10"`` is 16 and ``"010"`` is 8; ``y``/``n``/``on``/``off``
for bool).  A value out of the type's range or not a number is refused with
``-EINVAL``, as ``param_set_*`` refuses it.
"""

from __future__ import annotations

import re
from typing import Any

# type name -> (minimum, maximum) of the C type (64-bit kernel)
INT_TYPES = {
    "byte": (0, 0xFF),
    "short": (-(1 << 15), (1 << 15) - 1),
    "ushort": (0, 0xFFFF),
    "int": (-(1 << 31), (1 << 31) - 1),
    "uint": (0, 0xFFFFFFFF),
    "long": (-(1 << 63), (1 << 63) - 1),
    "ulong": (0, (1 << 64) - 1),
    "ullong": (0, (1 << 64) - 1),
}
BOOL_TYPES = ("bool", "invbool")
STRING_TYPES = ("charp", "string")
PARAM_TYPES = (*INT_TYPES, *BOOL_TYPES, *STRING_TYPES)

_KSTRTO = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n?")
_KSTRTO_10 = re.compile(r"([-+]?)([0-9]+)\n?")


def kstrtoll(text: str, signed: bool, base: int = 0) -> int:
    """lib/kstrtox.c with base 0 (0x/0 prefixes) or 10: optional sign, one trailing
    newline.  The caller checks the range of its C type."""
    m = (_KSTRTO_10 if base == 10 else _KSTRTO).fullmatch(text)
    if m is None or (m.group(1) == "-" and not signed):
        raise ValueError(text)
    digits = m.group(2)
    if base == 10:
        v = int(digits)
    elif digits[:2] in ("0x", "0X"):
        v = int(digits, 16)
    elif digits.startswith("0"):
        v = int(digits, 8)
    else:
        v = int(digits)
    return -v if m.group(1) == "-" else v


def kstrtobool(text: str) -> bool:
    """lib/kstrtox.c kstrtobool(): judged by the first one or two characters."""
    first = text[:1].lower()
    if first in ("y", "t", "1"):
        return True
    if first in ("n", "f", "0"):
        return False
    if first == "o":
        second = text[1:2].lower()
        if second == "n":
            return True
        if second == "f":
            return False
    raise ValueError(text)


def convert_param(ptype: str, raw: Any) -> Any:
    """param_set_<ptype>(): the value ``raw`` gives a parameter of type ``ptype``.

    Raises ValueError where the kernel returns -EINVAL or -ERANGE.
    """
    if ptype in INT_TYPES:
        lo, hi = INT_TYPES[ptype]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError(raw)
        v = raw if isinstance(raw, int) else kstrtoll(raw, signed=lo < 0)
        if not lo <= v <= hi:
            raise ValueError(raw)
        return v
    if ptype in BOOL_TYPES:
        if isinstance(raw, bool):
            b = raw
        elif isinstance(raw, (int, str)):
            b = kstrtobool(str(raw))
        else:
            raise ValueError(raw)
        return (not b) if ptype == "invbool" else b
    if ptype in STRING_TYPES:
        return str(raw)
    raise ValueError(f"unknown parameter type {ptype}")


def param_text(raw: Any) -> str:
    """How a value appears on the insmod command line (for messages)."""
    if isinstance(raw, bool):
        return "Y" if raw else "N"
    return str(raw)
