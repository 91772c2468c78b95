"""A kernel that stays up: the process behind ``bh boot``.

One kernel per process.  The main thread owns the kernel (a sim kernel is
bound to the thread that drives it) and executes requests one at a time;
connection threads only parse requests, hand them over and write answers.
A sim kernel's virtual time follows the wall clock at ``rate`` while nothing
else drives it, so ``bh dmesg -w`` and ``bh top`` see a live machine.

Security: the socket lives in the user's private runtime directory (see
:mod:`bottomhalf.client`), is created 0600, and every connection's peer uid
is checked with SO_PEERCRED; a peer with another uid gets one error line and
the connection is closed.

Run it with ``python -m bottomhalf.server --name NAME ...`` (``bh boot`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

from .client import check_name, runtime_dir
from .engines.realtime import WallPacer
from .errors import BottomHalfError
from .kernel import Kernel

STEP_S = 0.01  # how often a paced sim kernel catches up with the wall clock
MAX_STEP_NS = 50_000_000  # never run more than this in one go (stay responsive)


class Request:
    __slots__ = ("op", "args", "done", "reply")

    def __init__(self, op: str, args: dict[str, Any]) -> None:
        self.op = op
        self.args = args
        self.done = threading.Event()
        self.reply: dict[str, Any] = {}


class KernelServer:
    def __init__(self, name: str, *, cpus: int = 2, engine: str = "sim", seed: int = 0,
                 rate: float = 1.0, console: str | None = None,
                 devices: list[str] | None = None) -> None:
        check_name(name)
        self.name = name
        self.kernel = Kernel(cpus=cpus, engine=engine, seed=seed)
        self.rate = rate
        self.console_path = console
        self.requests: queue.Queue[Request] = queue.Queue()
        self.stopping = False
        self.base = runtime_dir(create=True)
        self.sock_path = os.path.join(self.base, f"{name}.sock")
        self.pid_path = os.path.join(self.base, f"{name}.pid")
        self.listener: socket.socket | None = None
        self.pacer: WallPacer | None = None
        self._console_file: Any = None
        self.followers: list[Callable[[], None]] = []
        self.device_specs = list(devices or [])

    # ------------------------------------------------------------------
    def start(self) -> None:
        self._claim_socket()
        k = self.kernel
        k.boot()
        if self.console_path:
            self._console_file = open(self.console_path, "w", buffering=1)  # noqa: SIM115
            k.log.attach_console(self._console_file)
        for spec in self.device_specs:
            k.add_device(spec)
        if k.engine_name == "sim":
            self.pacer = WallPacer(self.rate, k.now_ns)
        with open(self.pid_path, "w") as f:
            f.write(f"{os.getpid()}\n")
        threading.Thread(target=self._accept_loop, name="bh-accept", daemon=True).start()

    def _claim_socket(self) -> None:
        if os.path.exists(self.sock_path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.sock_path)
            except OSError:
                os.unlink(self.sock_path)  # stale: its server is gone
            else:
                probe.close()
                raise BottomHalfError(f"a kernel named '{self.name}' is already running")
            finally:
                probe.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(self.sock_path)
        finally:
            os.umask(old)
        os.chmod(self.sock_path, 0o600)
        s.listen(16)
        self.listener = s

    def serve_forever(self) -> None:
        """The kernel thread: run requests and, for sim, keep time moving."""
        k = self.kernel
        try:
            while not self.stopping:
                try:
                    req = self.requests.get(timeout=STEP_S if self.pacer else None)
                except queue.Empty:
                    req = None
                if self.pacer is not None:
                    self._catch_up()
                if req is not None:
                    self._execute(req)
                    if self.pacer is not None:
                        self.pacer.rebase(k.now_ns)
                for poll in list(self.followers):
                    poll()
        finally:
            self.shutdown()

    def _catch_up(self) -> None:
        k = self.kernel
        assert self.pacer is not None
        target = self.pacer.target_ns()
        while not self.stopping and k.now_ns < target:
            step = min(target - k.now_ns, MAX_STEP_NS)
            k.run_for(step / 1e6)
            if self.requests.qsize():
                break

    def shutdown(self) -> None:
        self.stopping = True
        if self.listener is not None:
            try:
                self.listener.close()
            except OSError:
                pass
            self.listener = None
        for path in (self.sock_path, self.pid_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.kernel.booted:
            self.kernel.halt()
        if self._console_file is not None:
            try:
                self._console_file.close()
            except OSError:
                pass

    # ------------------------------------------------------------------
    # connections
    def _accept_loop(self) -> None:
        while not self.stopping and self.listener is not None:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), name="bh-conn",
                             daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")
        try:
            uid = _peer_uid(conn)
            if uid is not None and uid != os.getuid():
                _write(f, {"ok": False, "error": f"permission denied: this kernel belongs to uid "
                                                 f"{os.getuid()}", "errno": 13})
                return
            for line in f:
                try:
                    msg = json.loads(line)
                    op = msg.pop("op")
                except (ValueError, KeyError, TypeError):
                    _write(f, {"ok": False, "error": "bad request", "errno": 22})
                    continue
                if msg.pop("follow", False):
                    self._follow(f, op, msg)
                    return
                req = Request(op, msg)
                self.requests.put(req)
                req.done.wait()
                _write(f, req.reply)
                if op == "halt":
                    return
        except (OSError, ValueError):
            pass
        finally:
            try:
                f.close()
            except OSError:
                pass
            conn.close()

    def _follow(self, f: Any, op: str, args: dict[str, Any]) -> None:
        """Stream items to a client until it goes away."""
        items: queue.Queue[Any] = queue.Queue()
        req = Request(op + "_follow", dict(args, sink=items.put))
        self.requests.put(req)
        req.done.wait()
        if not req.reply.get("ok"):
            _write(f, {"error": req.reply.get("error"), "errno": req.reply.get("errno", 0)})
            return
        cancel = req.reply["result"]
        try:
            while not self.stopping:
                try:
                    item = items.get(timeout=0.2)
                except queue.Empty:
                    _write(f, {"ping": True})
                    continue
                _write(f, {"item": item})
        except (OSError, ValueError):
            pass
        finally:
            self.requests.put(Request("_cancel", {"fn": cancel}))

    # ------------------------------------------------------------------
    # requests (run in the kernel thread)
    def _execute(self, req: Request) -> None:
        handler = OPS.get(req.op)
        try:
            if handler is None:
                raise BottomHalfError(f"unknown request '{req.op}'")
            req.reply = {"ok": True, "result": handler(self, **req.args)}
        except FileNotFoundError as e:
            req.reply = {"ok": False, "error": f"{e.filename}: No such file or directory",
                         "errno": 2}
        except (BottomHalfError, ValueError, TypeError, OSError) as e:
            req.reply = {"ok": False, "error": str(e).splitlines()[0] if str(e) else type(e).__name__,
                         "errno": getattr(e, "errno", 0) or 0, "detail": str(e)}
        finally:
            req.done.set()

    def op_status(self) -> dict[str, Any]:
        k = self.kernel
        return {"name": self.name, "engine": k.engine_name, "cpus": k.ncpus, "seed": k.seed,
                "pid": os.getpid(), "uptime_ns": k.now_ns, "rate": self.rate,
                "modules": [m.name for m in k.lsmod()], "taint": "".join(sorted(k.taint))}

    def op_halt(self) -> str:
        self.stopping = True
        return "halted"

    def op_insmod(self, path: str, params: dict[str, Any] | None = None) -> str:
        return self.kernel.insmod(path, **(params or {})).name

    def op_rmmod(self, name: str) -> None:
        self.kernel.rmmod(name)

    def op_lsmod(self) -> str:
        return self.kernel.modules.lsmod_text()

    def op_dmesg(self, clear: bool = False, read_clear: bool = False) -> list[dict[str, Any]]:
        log = self.kernel.log
        log.flush_open()
        recs = [_record(r) for r in log.snapshot()]
        if clear or read_clear:
            log.clear()
        return recs

    def op_dmesg_follow(self, sink: Callable[[Any], None], since: int = 0) -> Callable[[], None]:
        log = self.kernel.log

        def listener(rec: Any) -> None:
            sink(_record(rec))

        for r in log.snapshot():
            if r.seq > since and not r.open:
                sink(_record(r))
        log.listeners.append(listener)

        def cancel() -> None:
            if listener in log.listeners:
                log.listeners.remove(listener)

        return cancel

    def op_trace_pipe_follow(self, sink: Callable[[Any], None]) -> Callable[[], None]:
        trace = self.kernel.trace

        def poll() -> None:
            text = trace.read_pipe()
            for line in text.splitlines():
                sink(line)

        self.followers.append(poll)

        def cancel() -> None:
            if poll in self.followers:
                self.followers.remove(poll)

        return cancel

    def op__cancel(self, fn: Callable[[], None]) -> None:
        fn()

    def op_console_level(self, level: int) -> None:
        self.kernel.write("/proc/sys/kernel/printk", str(int(level)))

    def op_read(self, path: str) -> str:
        return self.kernel.read(path)

    def op_write(self, path: str, value: str) -> None:
        self.kernel.write(path, value)

    def op_irq(self, line: int, cpu: int | None = None, count: int = 1,
               rate_hz: float | None = None) -> int:
        from .devices import assert_irq

        return assert_irq(self.kernel, line, cpu, count, rate_hz)

    def op_devices(self) -> list[str]:
        return [d.describe() for d in self.kernel.devices.values()]

    def op_add_device(self, spec: str) -> str:
        return str(self.kernel.add_device(spec).describe())

    def op_run_for(self, ms: float) -> int:
        self.kernel.run_for(ms)
        return self.kernel.now_ns

    def op_set_rate(self, rate: float) -> None:
        if self.pacer is None:
            raise BottomHalfError("only a sim kernel has a rate")
        self.pacer.set_rate(rate, self.kernel.now_ns)
        self.rate = rate


OPS: dict[str, Callable[..., Any]] = {
    "status": KernelServer.op_status,
    "halt": KernelServer.op_halt,
    "insmod": KernelServer.op_insmod,
    "rmmod": KernelServer.op_rmmod,
    "lsmod": KernelServer.op_lsmod,
    "dmesg": KernelServer.op_dmesg,
    "dmesg_follow": KernelServer.op_dmesg_follow,
    "trace_pipe_follow": KernelServer.op_trace_pipe_follow,
    "_cancel": KernelServer.op__cancel,
    "console_level": KernelServer.op_console_level,
    "read": KernelServer.op_read,
    "write": KernelServer.op_write,
    "irq": KernelServer.op_irq,
    "devices": KernelServer.op_devices,
    "add_device": KernelServer.op_add_device,
    "run_for": KernelServer.op_run_for,
    "set_rate": KernelServer.op_set_rate,
}


def _record(r: Any) -> dict[str, Any]:
    return {"seq": r.seq, "ts_ns": r.ts_ns, "level": r.level, "facility": r.facility,
            "text": r.text}


def _write(f: Any, obj: dict[str, Any]) -> None:
    f.write(json.dumps(obj).encode() + b"\n")
    f.flush()


def _peer_uid(conn: socket.socket) -> int | None:
    """SO_PEERCRED: the uid of the process at the other end (Linux)."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bottomhalf.server",
                                description="Run a bottomhalf kernel that stays up.")
    p.add_argument("--name", default="default")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--engine", choices=("sim", "real"), default="sim")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--console", default=None, help="a file or tty that shows the console")
    p.add_argument("--device", action="append", default=[],
                   help="NAME=KIND:irq=N,... (see bottomhalf.devices)")
    a = p.parse_args(argv)
    try:
        server = KernelServer(a.name, cpus=a.cpus, engine=a.engine, seed=a.seed, rate=a.rate,
                              console=a.console, devices=a.device)
        server.start()
    except (BottomHalfError, ValueError, OSError) as e:
        sys.stderr.write(f"bh: error: {e}\n")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stopping", True))
    sys.stderr.write(f"bh: kernel '{a.name}' up ({a.engine}, {a.cpus} CPUs, seed {a.seed}), "
                     f"listening on {server.sock_path}\n")
    sys.stderr.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
