"""Fixtures for tests that boot kernels that stay up (``bh boot``).

Every test gets a private runtime directory of its own (``XDG_RUNTIME_DIR``
under /tmp, short enough for a Unix socket path), so kernel names never
clash between tests and the user's real runtime directory is never touched.
Whatever a test booted is halted afterwards: ``bh halt`` first, then SIGTERM
and SIGKILL for any server whose pid file is still there.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from .conftest import ROOT

BH_TIMEOUT = 60


def bh(*args: str, name: str | None = None, timeout: float = BH_TIMEOUT,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bottomhalf.cli ARGS`` in the source tree (``BH_NAME=name``)."""
    return subprocess.run([sys.executable, "-m", "bottomhalf.cli", *args], cwd=ROOT,
                          env=_bh_env(name), capture_output=True, text=True, timeout=timeout,
                          input=input)


def _bh_env(name: str | None) -> dict[str, str]:
    """This environment for a bh subprocess: uncoloured, talking to kernel ``name``."""
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env.pop("BH_NAME", None)
    if name is not None:
        env["BH_NAME"] = name
    return env


class Follower:
    """The stdout of a ``bh`` command that runs until stopped (``dmesg -w``,
    ``trace show -f``, ``top``), read line by line with a timeout.

    A reader thread feeds a queue, so a test never blocks on a silent child,
    and the end of the output (the child exited) fails the test with the
    child's exit status and stderr instead of spinning on empty reads.
    """

    _EOF = None

    def __init__(self, proc: subprocess.Popen[str], stderr: IO[str]) -> None:
        self.proc = proc
        self._stderr = stderr
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for line in stdout:
                self._lines.put(line)
            self._lines.put(self._EOF)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def poll(self, timeout: float) -> str | None:
        """The next line (with its newline), or None if none came within ``timeout``."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is self._EOF:
            self._lines.put(self._EOF)  # stays at the end for later reads
            status = self.proc.wait(timeout=BH_TIMEOUT)
            self._stderr.seek(0)
            raise AssertionError(f"{self.proc.args[3:]} ended (exit {status}) before the "
                                 f"line the test waits for; stderr: {self._stderr.read()!r}")
        return line

    def line(self, timeout: float = BH_TIMEOUT) -> str:
        """The next line (with its newline); fails after ``timeout`` seconds without one."""
        line = self.poll(timeout)
        assert line is not None, f"{self.proc.args[3:]}: no line within {timeout} s"
        return line


@contextlib.contextmanager
def follow(*args: str, name: str | None = None) -> Iterator[Follower]:
    """Start ``python -m bottomhalf.cli ARGS`` (``BH_NAME=name``) and read its stdout;
    the command is terminated (killed if it lingers) when the block ends."""
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bottomhalf.cli", *args], cwd=ROOT,
                                env=_bh_env(name), stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
        follower = Follower(proc, stderr)
        try:
            yield follower
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            follower.reader.join(timeout=10)  # the pipe is at its end now
            assert proc.stdout is not None
            proc.stdout.close()


def one_error_line(r: subprocess.CompletedProcess[str], prefix: str = "bh: error: ") -> str:
    """A failed command: non-zero exit, exactly one stderr line, no traceback."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(prefix), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_servers(runtime: str) -> None:
    """SIGTERM, then SIGKILL, every server that left a pid file in ``runtime``."""
    for path in glob.glob(os.path.join(runtime, "bottomhalf", "*.pid")):
        try:
            with open(path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _alive(pid):
                break
            os.kill(pid, sig)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                fd = os.pidfd_open(pid) if _alive(pid) else None
                if fd is not None:
                    import select

                    select.select([fd], [], [], 10)
                    os.close(fd)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private XDG_RUNTIME_DIR for this test; servers left in it are stopped."""
    path = tempfile.mkdtemp(prefix="bh", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", path)
    monkeypatch.delenv("BH_NAME", raising=False)
    try:
        yield path
    finally:
        stop_servers(path)
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Booted:
    """A kernel booted with ``bh boot`` for a test."""

    name: str
    runtime: str

    def bh(self, *args: str, timeout: float = BH_TIMEOUT,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        return bh(*args, name=self.name, timeout=timeout, input=input)

    def ok(self, *args: str) -> str:
        """Run a bh command that must exit 0; its stdout.  Its stderr is not checked:
        some commands that succeed report there (``bh trace record`` says what it
        recorded)."""
        r = self.bh(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def follow(self, *args: str) -> contextlib.AbstractContextManager[Follower]:
        """``with k.follow("dmesg", "-w") as f: f.line()``: see :func:`follow`."""
        return follow(*args, name=self.name)

    @property
    def sock(self) -> str:
        return os.path.join(self.runtime, "bottomhalf", f"{self.name}.sock")

    @property
    def pid(self) -> int:
        with open(os.path.join(self.runtime, "bottomhalf", f"{self.name}.pid")) as f:
            return int(f.read())


@pytest.fixture
def boot(runtime: str) -> Iterator[Callable[..., Booted]]:
    """``boot(*bh_boot_args)`` boots a kernel with a unique name; all are halted after."""
    booted: list[Booted] = []

    def start(*args: str, name: str | None = None) -> Booted:
        kname = name or f"t{uuid.uuid4().hex[:8]}"
        r = bh("boot", "--name", kname, *args)
        assert r.returncode == 0, r.stderr
        k = Booted(kname, runtime)
        booted.append(k)
        return k

    yield start
    for k in booted:
        if os.path.exists(k.sock):
            bh("halt", name=k.name, timeout=30)


@pytest.fixture
def frozen(boot: Callable[..., Booted]) -> Booted:
    """A 2-CPU sim kernel whose time moves only when a command runs it (--rate 0)."""
    return boot("--rate", "0")
