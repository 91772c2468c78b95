"""docs/API.md is the public contract: every name it promises exists."""

from __future__ import annotations

import os
import re

import bottomhalf
import bottomhalf.errors
import bottomhalf.linux as linux

from .conftest import ROOT

PROSE = {"CONFIG_DEBUG_ATOMIC_SLEEP", "None", "bool", "data", "insmod", "rmmod", "sim", "int"}


def _section(title: str, end: str) -> str:
    with open(os.path.join(ROOT, "docs", "API.md"), encoding="utf-8") as f:
        text = f.read()
    return text[text.index(title):text.index(end)]


def test_every_kernel_api_name_is_exported() -> None:
    """Each `name` in API.md section 3 comes with `from bottomhalf.linux import *`."""
    names = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", _section("## 3.", "## 4."))) - PROSE
    assert names, "found no names in API.md section 3"
    assert sorted(n for n in names if n not in linux.__all__) == []
    for n in names:
        assert getattr(linux, n) is not None


def test_kernel_members_exist() -> None:
    """The Kernel members of API.md section 1 exist."""
    members = set(re.findall(r"^\| `([a-z_]+)", _section("## 1.", "## 2."), re.M))
    assert {"insmod", "rmmod", "lsmod", "run_for", "run_until_idle", "raise_irq", "dmesg",
            "read", "write", "now_ns"} <= members
    for m in members:
        assert hasattr(bottomhalf.Kernel, m), m


def test_exceptions_derive_from_bottomhalf_error() -> None:
    """Every exception in bottomhalf.errors derives from BottomHalfError."""
    errs = [v for v in vars(bottomhalf.errors).values()
            if isinstance(v, type) and issubclass(v, BaseException)
            and v.__module__ == "bottomhalf.errors"]
    assert errs and all(issubclass(e, bottomhalf.errors.BottomHalfError) for e in errs)
