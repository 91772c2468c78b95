"""The kernel that stays up (bottomhalf.server), through its protocol: requests,
streams, pacing, signals and the peer-credentials check."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
from collections.abc import Callable

import pytest

from bottomhalf.client import Client, ClientError

from .conftest import ROOT, example
from .daemons import Booted

OTHER_UID = 54321


def raw(k: Booted, line: bytes) -> dict:
    """Send one raw line on a fresh connection and return the first answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(k.sock)
    with s, s.makefile("rwb") as f:
        f.write(line)
        f.flush()
        return json.loads(f.readline())


def test_status_answers(frozen: Booted) -> None:
    """status names the kernel, its engine, CPUs, seed, rate and pid."""
    with Client(frozen.name) as c:
        st = c.call("status")
    assert {k: st[k] for k in ("name", "engine", "cpus", "seed", "rate", "pid", "uptime_ns",
                               "modules")} == {
        "name": frozen.name, "engine": "sim", "cpus": 2, "seed": 0, "rate": 0.0,
        "pid": frozen.pid, "uptime_ns": 0, "modules": []}


def test_bad_requests_get_error_answers(frozen: Booted) -> None:
    """A line that is not JSON, a private op or an unknown op is refused; the connection lives on."""
    assert raw(frozen, b"not json\n") == {"ok": False, "error": "bad request", "errno": 22}
    assert raw(frozen, b'{"op": "_cancel", "fn": 1}\n') == \
        {"ok": False, "error": "bad request", "errno": 22}
    with Client(frozen.name) as c:
        with pytest.raises(ClientError, match="^unknown request 'nope'$"):
            c.call("nope")
        with pytest.raises(ClientError, match="got an unexpected keyword argument"):
            c.call("lsmod", bogus=1)
        assert c.call("lsmod").startswith("Module")


def test_module_errors_carry_errno_and_detail(frozen: Booted) -> None:
    """A failed insmod answers with the errno kmod needs and the kernel's detail."""
    with Client(frozen.name) as c:
        with pytest.raises(ClientError) as e:
            c.call("insmod", path=os.path.join(ROOT, "examples", "nope.py"))
    assert e.value.errno == 2
    assert e.value.detail.endswith("nope.py: no such module file")
    with Client(frozen.name) as c:
        with pytest.raises(ClientError) as e:
            c.call("rmmod", name="nope")
    assert (e.value.errno, str(e.value)) == (2, "Module nope is not currently loaded")
    with Client(frozen.name) as c:
        with pytest.raises(ClientError) as e:
            c.call("write", path="/proc/sys/kernel/printk", value="x")
    assert (e.value.errno, e.value.detail) == (22, "'x' is not an integer; nothing was changed")


def test_dmesg_follow_streams_new_records(frozen: Booted) -> None:
    """A dmesg stream yields the log, then each record printed later, in order."""
    follower = Client(frozen.name)
    stream = follower.stream("dmesg")
    assert next(stream)["text"].startswith("Linux version")  # the stream is set up
    got: list[str] = []
    done = threading.Event()

    def read() -> None:
        for rec in stream:
            got.append(rec["text"])
            if rec["text"] == "Tasklet executed with data: 1234":
                break
        done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    with Client(frozen.name) as c:
        c.call("insmod", path=example("tasklet_driver.py"))
    assert done.wait(30)
    follower.close()
    assert got[-3:] == ["tasklet_driver: loading out-of-tree module taints kernel.",
                        "Tasklet scheduled", "Tasklet executed with data: 1234"]
    assert got[:2] == ["Command line: bottomhalf.engine=sim bottomhalf.seed=0 nr_cpus=2 HZ=250",
                       "smp: Brought up 1 node, 2 CPUs"]


def test_trace_records_stream_in_chunks(frozen: Booted) -> None:
    """A big trace comes in chunks of 5000 records, then the stream ends."""
    frozen.ok("insmod", "examples/irq_driver.py", "fires=0")
    frozen.ok("write", "/sys/kernel/tracing/set_event", "irq:*")
    frozen.ok("irq", "17", "--count", "1500")
    with Client(frozen.name) as c:
        expected = c.call("status")["trace_entries"]
        chunks = list(c.stream("trace_records"))
    assert expected > 5000
    assert [ch["done"] for ch in chunks][-1] == sum(len(ch["records"]) for ch in chunks)
    assert all(len(ch["records"]) == 5000 for ch in chunks[:-1])
    visible = [r for ch in chunks for r in ch["records"] if r["event"] != "tasklet_schedule"]
    assert len(visible) == expected
    seqs = [r["seq"] for ch in chunks for r in ch["records"]]
    assert seqs == sorted(seqs)


def test_wait_idle(boot: Callable[..., Booted]) -> None:
    """wait_idle is True once nothing is pending, False while a device keeps firing."""
    k = boot("--rate", "0", "--device", "tick=periodic:irq=30,period=1")
    with Client(k.name) as c:
        assert c.call("wait_idle", timeout_ms=50) is False
        assert 50_000_000 <= c.call("status")["uptime_ns"] <= 51_000_000
    quiet = boot("--rate", "0")
    with Client(quiet.name) as c:
        c.call("insmod", path=example("irq_driver.py"), params={"fires": "1"})
        assert c.call("wait_idle", timeout_ms=1000) is True
        assert "irq_driver: work done" in [r["text"] for r in c.call("dmesg")["records"]]


def test_rate_paces_virtual_time(boot: Callable[..., Booted]) -> None:
    """A paced sim kernel's time moves between requests; at rate 0 it stands still."""
    k = boot("--rate", "1000")
    with Client(k.name) as c:
        t1 = c.call("status")["uptime_ns"]
        t2 = c.call("status")["uptime_ns"]
        assert t2 > t1
        c.call("set_rate", rate=0)
        t3 = c.call("status")["uptime_ns"]
        assert c.call("status")["uptime_ns"] == t3
        c.call("run_for", ms=5)
        assert c.call("status")["uptime_ns"] == t3 + 5_000_000
        with pytest.raises(ClientError, match="the rate must be a finite number >= 0"):
            c.call("set_rate", rate=-1)


def test_real_engine_server(boot: Callable[..., Booted]) -> None:
    """A real kernel serves the same requests; a rate does not apply to it."""
    k = boot("--engine", "real")
    with Client(k.name) as c:
        c.call("insmod", path=example("tasklet_driver.py"))
        assert c.call("wait_idle", timeout_ms=5000) is True
        texts = [r["text"] for r in c.call("dmesg")["records"]]
        assert texts.index("Tasklet scheduled") >= 0
        assert "Tasklet executed with data: 1234" in texts
        with pytest.raises(ClientError, match="only a sim kernel has a rate"):
            c.call("set_rate", rate=2)
        c.call("rmmod", name="tasklet_driver")


def test_sigterm_halts_cleanly(frozen: Booted) -> None:
    """SIGTERM halts the kernel: the socket and pid file go, the log says so."""
    pid = frozen.pid
    fd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGTERM)
    assert select.select([fd], [], [], 30)[0]
    os.close(fd)
    assert not os.path.exists(frozen.sock)
    with open(os.path.join(frozen.runtime, "bottomhalf", f"{frozen.name}.log")) as f:
        assert f.read().splitlines()[-1] == f"bh: kernel '{frozen.name}' halted"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another uid")
def test_peer_of_another_uid_is_refused(frozen: Booted) -> None:
    """Even with the file modes opened up, a peer of another uid is refused (SO_PEERCRED)."""
    for path in (frozen.runtime, os.path.dirname(frozen.sock)):
        os.chmod(path, 0o711)
    os.chmod(frozen.sock, 0o666)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other user: only socket calls, then _exit
        try:
            os.setuid(OTHER_UID)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(frozen.sock)
            try:  # the server may already have answered and hung up: EPIPE
                s.sendall(b'{"op": "lsmod"}\n')
            except BrokenPipeError:
                pass
            os.write(w, s.makefile("rb").readline())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, repr(e).encode())
        finally:
            os._exit(0)
    os.close(w)
    answer = b""
    while chunk := os.read(r, 4096):
        answer += chunk
    os.close(r)
    os.waitpid(pid, 0)
    os.chmod(frozen.sock, 0o600)
    for path in (frozen.runtime, os.path.dirname(frozen.sock)):
        os.chmod(path, 0o700)
    assert json.loads(answer) == {
        "ok": False, "errno": 13,
        "error": f"permission denied: kernel '{frozen.name}' belongs to uid 0, not to uid "
                 f"{OTHER_UID}"}
    assert frozen.ok("lsmod").startswith("Module")
