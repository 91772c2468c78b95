"""Progress on a terminal, silence in a pipe: bh run --for, and the Progress line itself."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from bottomhalf import Kernel
from bottomhalf.cli.common import Progress
from bottomhalf.cli.run import run_with_progress

from .conftest import ROOT, example


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_is_silent_off_a_terminal() -> None:
    """A pipe or file gets nothing at all."""
    out = io.StringIO()
    p = Progress(out)
    p.update("bh: half way")
    p.done()
    assert (p.enabled, out.getvalue()) == (False, "")


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    """On a terminal each update overwrites the line, and done() erases it."""
    out = Tty()
    p = Progress(out)
    p.update("bh: 1/2")
    p.update("bh: 2/2")
    p.done()
    assert out.getvalue() == "\r\033[Kbh: 1/2\r\033[Kbh: 2/2\r\033[K"


def test_progress_respects_dumb_terminals(monkeypatch: pytest.MonkeyPatch) -> None:
    """TERM=dumb cannot move the cursor: no progress there either."""
    monkeypatch.setenv("TERM", "dumb")
    assert Progress(Tty()).enabled is False


def run_irq_driver(progress: Progress) -> tuple[list[str], str]:
    with Kernel(cpus=2, engine="sim", seed=1) as k:
        k.write("/sys/kernel/tracing/set_event", "*:*")
        k.insmod(example("irq_driver.py"), fires=30)
        run_with_progress(k, 1000, progress)
        return k.dmesg(), k.read("/sys/kernel/tracing/trace")


def test_progress_does_not_change_a_sim_run() -> None:
    """Running in pieces to report progress gives the very run one run_for gives."""
    out = Tty()
    shown = run_irq_driver(Progress(out))
    assert out.getvalue().count("\r\033[Kbh: running ") == 20
    assert "bh: running 1,000/1,000 ms (100%)" in out.getvalue()
    assert shown == run_irq_driver(Progress(io.StringIO()))


def test_bh_run_in_a_pipe_prints_no_progress() -> None:
    """bh run --for in a pipe: the log on stdout, nothing on stderr."""
    r = subprocess.run([sys.executable, "-m", "bottomhalf.cli", "run", example("irq_driver.py"),
                        "--for", "500"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines()[-1].endswith("irq_driver: removed after 3 interrupts")


def test_bh_run_on_a_terminal_shows_progress() -> None:
    """With stderr on a terminal, bh run --for shows how far it got, then clears the line."""
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "bottomhalf.cli", "run",
                             example("irq_driver.py"), "--for", "500"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"\r\x1b[Kbh: running 500/500 ms (100%)" in shown
    assert shown.endswith(b"\r\x1b[K")
    assert out.splitlines()[-1].endswith("irq_driver: removed after 3 interrupts")
