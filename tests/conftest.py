"""Shared fixtures: every conformance test can run on both engines."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator

import pytest

from bottomhalf import Kernel

# the runtime, boot and frozen fixtures of tests that boot kernels (bh boot)
pytest_plugins = ("tests.daemons",)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# pytest's `pythonpath` puts src/ on this process's path; the `python -m
# bottomhalf.cli` subprocesses the CLI tests start need it too.
if SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
EXAMPLES = os.path.join(ROOT, "examples")
MODULES = os.path.join(ROOT, "tests", "modules")


def example(name: str) -> str:
    return os.path.join(EXAMPLES, name)


def module_path(name: str) -> str:
    return os.path.join(MODULES, name)


def write_module(directory: str | os.PathLike[str], name: str, body: str) -> str:
    """Write module ``name`` (``body``, dedented, after ``from bottomhalf.linux
    import *``) into ``directory``; its path."""
    path = os.path.join(directory, f"{name}.py")
    with open(path, "w") as f:
        f.write("from bottomhalf.linux import *\n\n" + textwrap.dedent(body))
    return path


@pytest.fixture
def sim() -> Iterator[Kernel]:
    """A 2-CPU sim kernel, seed 0."""
    with Kernel(cpus=2, engine="sim", seed=0) as k:
        yield k


@pytest.fixture
def real() -> Iterator[Kernel]:
    """A 2-CPU real kernel."""
    with Kernel(cpus=2, engine="real", seed=0) as k:
        yield k


@pytest.fixture(params=["sim", "real"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """A 2-CPU kernel on each engine in turn."""
    with Kernel(cpus=2, engine=request.param, seed=0) as k:
        yield k


def messages(k: Kernel) -> list[str]:
    """dmesg without the timestamps."""
    return [line.split("] ", 1)[1] for line in k.dmesg()]


def unoffset(lines: list[str]) -> list[str]:
    """Call-trace offsets (+0xOFF/0xSIZE) depend on the Python version: blank them."""
    return [re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "+0x?/0x?", line) for line in lines]


# The bottom of a Call Trace for an interrupt taken by an idle CPU.
IRQ_FROM_IDLE = [" __common_interrupt", " common_interrupt", " </IRQ>", " <TASK>", " do_idle",
                 " cpu_startup_entry", " </TASK>"]


# The header of /sys/kernel/tracing/trace as in the reference's capture (§8),
# with entries-in-buffer and entries-written left as {n}: format it with the
# count a test expects when nothing was overwritten.
TRACE_HEADER = (
    "# tracer: nop\n"
    "#\n"
    "# entries-in-buffer/entries-written: {n}/{n}   #P:2\n"
    "#\n"
    "#                                _-----=> irqs-off/BH-disabled\n"
    "#                               / _----=> need-resched\n"
    "#                              | / _---=> hardirq/softirq\n"
    "#                              || / _--=> preempt-depth\n"
    "#                              ||| / _-=> migrate-disable\n"
    "#                              |||| /     delay\n"
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
    "#              | |         |   |||||     |         |\n"
)
