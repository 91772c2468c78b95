"""A kernel that stays up: the process behind ``bh boot``.

One kernel per process.  The main thread owns the kernel (a sim kernel is
bound to the thread that drives it) and executes requests one at a time;
connection threads only parse requests, hand them over and write answers.
A sim kernel's virtual time follows the wall clock at ``rate`` while nothing
else drives it, so ``bh dmesg -w`` and ``bh top`` see a live machine; at
rate 0 it stands still between the requests that run it (``run_for``,
``wait_idle``), which makes a session as repeatable as ``bh run``: after
each request it only runs what can run at that instant.

Security: the socket lives in the user's private runtime directory (see
:mod:`bottomhalf.client`), is created 0600, and every connection's peer uid
is checked with SO_PEERCRED; a peer with another uid gets one error line and
the connection is closed.

Run it with ``python -m bottomhalf.server --name NAME ...`` (``bh boot``
does, with ``--ready-fd``: the server writes ``ready`` to that pipe once it
listens, so ``bh boot`` returns exactly when commands can reach it).  The
request handlers are in :mod:`bottomhalf.server_ops`.
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
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from .client import (
    ClientError,
    check_name,
    check_path_length,
    pid_path,
    remove_runtime_files,
    runtime_dir,
    socket_path,
)
from .engines.realtime import WallPacer
from .errors import BottomHalfError
from .kernel import Kernel
from .server_ops import OPS, Chunked

STEP_S = 0.01  # how often a paced sim kernel catches up with the wall clock
IDLE_POLL_S = 0.2  # how often an unpaced server looks at its followers and stop flag
MAX_STEP_NS = 50_000_000  # never run more than this in one go (stay responsive)
PING_S = 0.2  # a following connection hears from us at least this often
END = object()  # marks the end of a finite stream
HALT_REPLY_S = 5.0  # how long a halting server waits to answer the "halt" request


class Request:
    __slots__ = ("op", "args", "done", "reply")

    def __init__(self, op: str, args: dict[str, Any]) -> None:
        self.op = op
        self.args = args
        self.done = threading.Event()
        self.reply: dict[str, Any] = {}


class KernelServer:
    def __init__(self, name: str, *, cpus: int = 2, engine: str = "sim", seed: int = 0,
                 rate: float = 1.0, console: str | TextIO | None = None,
                 devices: list[str] | None = None) -> None:
        check_name(name)
        if not 0 <= rate < float("inf"):
            raise ValueError(f"the rate must be a finite number >= 0, not {rate}")
        self.name = name
        self.kernel = Kernel(cpus=cpus, engine=engine, seed=seed)
        self.rate = rate
        self.console = console
        self.requests: queue.Queue[Request] = queue.Queue()
        self.stopping = False
        runtime_dir(create=True)
        self.sock_path = socket_path(name)
        self.pid_path = pid_path(name)
        self.listener: socket.socket | None = None
        self.pacer: WallPacer | None = None
        self._console_file: TextIO | None = None
        self.followers: list[Callable[[], None]] = []
        self.device_specs = list(devices or [])
        self.halt_requested = False  # by a "halt" request, whose answer is still to be sent
        self.halt_answered = threading.Event()

    # ------------------------------------------------------------------
    def start(self) -> None:
        check_path_length(self.sock_path)
        self._claim_socket()
        k = self.kernel
        try:
            k.boot()
            if isinstance(self.console, str):
                self._console_file = open(self.console, "w", buffering=1)  # noqa: SIM115
                k.attach_console(self._console_file)
            elif self.console is not None:
                k.attach_console(self.console)
            for spec in self.device_specs:
                k.add_device(spec)
            if k.engine_name == "sim" and self.rate > 0:
                self.pacer = WallPacer(self.rate, k.now_ns)
            with open(self.pid_path, "w") as f:
                f.write(f"{os.getpid()}\n")
        except BaseException:
            self.shutdown()
            raise
        threading.Thread(target=self._accept_loop, name="bh-accept", daemon=True).start()

    def _claim_socket(self) -> None:
        if os.path.lexists(self.sock_path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.sock_path)
            except OSError:
                os.unlink(self.sock_path)  # stale: its server is gone
            else:
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
                wait = STEP_S if self.pacer is not None or self.followers else IDLE_POLL_S
                try:
                    req: Request | None = self.requests.get(timeout=wait)
                except queue.Empty:
                    req = None
                if req is not None:
                    self._execute(req)
                    if self.pacer is not None:
                        self.pacer.rebase(k.now_ns)
                    elif k.engine_name == "sim" and k.booted and not self.stopping:
                        self._run(0)  # rate 0: what can run at this instant does
                if self.pacer is not None:
                    self._catch_up()
                for poll in list(self.followers):
                    poll()
        finally:
            self.shutdown()

    def _catch_up(self) -> None:
        k = self.kernel
        assert self.pacer is not None
        target = self.pacer.target_ns()
        while not self.stopping and self.pacer is not None and k.now_ns < target:
            step = min(target - k.now_ns, MAX_STEP_NS)
            self._run(step / 1e6)
            if self.requests.qsize():
                break

    def _run(self, ms: float) -> None:
        """Let the kernel run; if that fails (a bug), say so once and stop pacing,
        so the kernel can still be inspected and halted."""
        try:
            self.kernel.run_for(ms)
        except Exception:  # noqa: BLE001 - reported in the server's log
            traceback.print_exc(file=sys.stderr)
            sys.stderr.write(f"bh: kernel '{self.name}' could not run on; its time stands "
                             "still from here\n")
            sys.stderr.flush()
            self.pacer = None
            self.rate = 0.0

    def shutdown(self) -> None:
        self.stopping = True
        if self.listener is not None:
            try:
                self.listener.close()
            except OSError:
                pass
            self.listener = None
        remove_runtime_files(self.name)
        if self.kernel.booted:
            self.kernel.halt()
        if self._console_file is not None:
            try:
                self._console_file.close()
            except OSError:
                pass
            self._console_file = None
        # Wake any request still waiting, so its connection can close.
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                break
            req.reply = {"ok": False, "error": f"kernel '{self.name}' halted", "errno": 0}
            req.done.set()

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
            uid = peer_uid(conn)
            if uid is not None and uid != os.getuid():
                _write(f, {"ok": False, "error": f"permission denied: kernel '{self.name}' belongs "
                                                 f"to uid {os.getuid()}, not to uid {uid}",
                           "errno": 13})
                return
            for line in f:
                try:
                    msg = json.loads(line)
                    op = msg.pop("op")
                    if not isinstance(op, str) or op.startswith("_"):
                        raise ValueError(op)
                except (ValueError, KeyError, TypeError, AttributeError):
                    _write(f, {"ok": False, "error": "bad request", "errno": 22})
                    continue
                if msg.pop("follow", False):
                    self._follow(f, op, msg)
                    return
                reply = self.submit(op, msg)
                try:
                    _write(f, reply)
                finally:
                    if op == "halt":
                        self.halt_answered.set()
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

    def submit(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Hand a request to the kernel thread and wait for its answer."""
        req = Request(op, args)
        if self.stopping:
            return {"ok": False, "error": f"kernel '{self.name}' is halting", "errno": 0}
        self.requests.put(req)
        req.done.wait()
        return req.reply

    def _follow(self, f: Any, op: str, args: dict[str, Any]) -> None:
        """Stream items to a client until it goes away or the stream ends."""
        items: queue.Queue[Any] = queue.Queue()
        reply = self.submit(op + "_follow", dict(args, sink=items.put, end=lambda: items.put(END)))
        if not reply.get("ok"):
            _write(f, {"error": reply.get("error"), "errno": reply.get("errno", 0)})
            return
        cancel = reply["result"]
        try:
            while not self.stopping:
                try:
                    item = items.get(timeout=PING_S)
                except queue.Empty:
                    _write(f, {"ping": True})
                    continue
                if item is END:
                    _write(f, {"end": True})
                    return
                if isinstance(item, Chunked):
                    for chunk in item.chunks():
                        _write(f, {"item": chunk})
                    continue
                _write(f, {"item": item})
        except (OSError, ValueError):
            pass
        finally:
            if cancel is not None:
                self.submit("_cancel", {"fn": cancel})

    # ------------------------------------------------------------------
    # requests (run in the kernel thread)
    def _execute(self, req: Request) -> None:
        handler = OPS.get(req.op)
        try:
            if handler is None:
                raise BottomHalfError(f"unknown request '{req.op}'")
            req.reply = {"ok": True, "result": handler(self, **req.args)}
        except (FileNotFoundError, IsADirectoryError) as e:  # a kernel file's path
            req.reply = {"ok": False, "error": f"{e.filename}: {e.strerror}",
                         "errno": e.errno}
        except (BottomHalfError, ValueError, TypeError, OSError) as e:
            text = str(e) or type(e).__name__
            req.reply = {"ok": False, "error": text.splitlines()[0],
                         "errno": getattr(e, "errno", 0) or 0,
                         "detail": getattr(e, "detail", "") or ""}
        except Exception as e:  # noqa: BLE001 - a bug here must not take the kernel down
            traceback.print_exc(file=sys.stderr)
            req.reply = {"ok": False, "errno": 0,
                         "error": f"internal error in '{req.op}': {type(e).__name__}: {e}"}
        finally:
            req.done.set()


def _write(f: Any, obj: dict[str, Any]) -> None:
    f.write(json.dumps(obj).encode() + b"\n")
    f.flush()


def peer_uid(conn: socket.socket) -> int | None:
    """SO_PEERCRED: the uid of the process at the other end (Linux)."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def run(server: KernelServer, ready_fd: int | None = None) -> int:
    """Start ``server``, say so, and serve until halted or signalled."""
    try:
        server.start()
    except (BottomHalfError, ClientError, ValueError, OSError) as e:
        sys.stderr.write(f"bh: error: {e}\n")
        sys.stderr.flush()
        return 1

    def stop(signum: int, frame: Any) -> None:
        server.stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    k = server.kernel
    sys.stderr.write(f"bh: kernel '{server.name}' up ({k.engine_name}, {k.ncpus} CPUs, seed "
                     f"{k.seed}), pid {os.getpid()}, listening on {server.sock_path}\n")
    sys.stderr.flush()
    if ready_fd is not None:
        try:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        except OSError:
            pass
    server.serve_forever()
    if server.halt_requested:
        server.halt_answered.wait(HALT_REPLY_S)  # let "bh halt" hear that it worked
    sys.stderr.write(f"bh: kernel '{server.name}' halted\n")
    sys.stderr.flush()
    return 0


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
    p.add_argument("--ready-fd", type=int, default=None,
                   help="write 'ready' to this file descriptor once listening")
    a = p.parse_args(argv)
    try:
        server = KernelServer(a.name, cpus=a.cpus, engine=a.engine, seed=a.seed, rate=a.rate,
                              console=a.console, devices=a.device)
    except (BottomHalfError, ClientError, ValueError, OSError) as e:
        sys.stderr.write(f"bh: error: {e}\n")
        return 1
    return run(server, a.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
