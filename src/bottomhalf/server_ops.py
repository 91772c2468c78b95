"""The requests a kernel that stays up answers (see :mod:`bottomhalf.server`).

Each ``op_NAME(server, **args)`` runs in the kernel's thread, one at a time,
and returns something JSON can carry.  ``op_NAME_follow(server, sink, end,
...)`` starts a stream: it hands items to ``sink`` (from any thread) and
returns a function that stops the stream, or ``None`` for a finite stream,
which calls ``end()`` after its last item.

Errors are raised as the library raises them (``ModuleLoadError``,
``FileNotFoundError``, ``KernelFileError``...); the server turns them into
``{"ok": false, "error": ..., "errno": ...}`` and the ``bh`` command into the
messages Linux's tools print.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import BottomHalfError, IdleTimeout
from .perfetto import record_dict
from .wqview import monitor_stats

if TYPE_CHECKING:
    from .printk import LogRecord
    from .server import KernelServer

Sink = Callable[[Any], None]
CHUNK = 5000  # trace records per streamed message


class Chunked:
    """A finite list sent in pieces, each converted in the connection's thread
    (so a big trace export does not stall the kernel)."""

    def __init__(self, items: list[Any], convert: Callable[[Any], Any], size: int = CHUNK) -> None:
        self.items = items
        self.convert = convert
        self.size = size

    def chunks(self) -> Iterator[dict[str, Any]]:
        total = len(self.items)
        for start in range(0, total, self.size):
            piece = self.items[start:start + self.size]
            yield {"total": total, "done": start + len(piece),
                   "records": [self.convert(r) for r in piece]}
        if total == 0:
            yield {"total": 0, "done": 0, "records": []}


# ----------------------------------------------------------------------
# the machine


def op_status(srv: KernelServer) -> dict[str, Any]:
    k = srv.kernel
    return {"name": srv.name, "engine": k.engine_name, "cpus": k.ncpus, "seed": k.seed,
            "pid": os.getpid(), "uptime_ns": k.now_ns,
            "rate": srv.rate if k.engine_name == "sim" else None,
            "modules": [m.name for m in k.lsmod()], "taint": "".join(sorted(k.taint)),
            "devices": [d.describe() for d in k.devices.values()],
            "console_loglevel": k.log.console_loglevel, "socket": srv.sock_path,
            "trace_entries": len(k.trace.records)}


def op_halt(srv: KernelServer) -> str:
    srv.stopping = True
    srv.halt_requested = True
    return "halted"


def op_run_for(srv: KernelServer, ms: float) -> int:
    srv.kernel.run_for(float(ms))
    return srv.kernel.now_ns


def op_wait_idle(srv: KernelServer, timeout_ms: float) -> bool:
    """Let the kernel run until nothing is pending (at most ``timeout_ms``)."""
    try:
        srv.kernel.run_until_idle(timeout_ms=float(timeout_ms))
    except IdleTimeout:
        return False
    return True


def op_set_rate(srv: KernelServer, rate: float) -> None:
    from .engines.realtime import WallPacer

    k = srv.kernel
    if k.engine_name != "sim":
        raise BottomHalfError("only a sim kernel has a rate (a real kernel runs on the wall clock)")
    rate = float(rate)
    if not 0 <= rate < float("inf"):
        raise ValueError(f"the rate must be a finite number >= 0, not {rate}")
    if rate == 0:
        srv.pacer = None
    elif srv.pacer is None:
        srv.pacer = WallPacer(rate, k.now_ns)
    else:
        srv.pacer.set_rate(rate, k.now_ns)
    srv.rate = rate


# ----------------------------------------------------------------------
# modules


def op_insmod(srv: KernelServer, path: str, params: dict[str, Any] | None = None) -> str:
    return srv.kernel.insmod(path, **(params or {})).name


def op_rmmod(srv: KernelServer, name: str) -> None:
    srv.kernel.rmmod(name)


def op_lsmod(srv: KernelServer) -> str:
    return srv.kernel.modules.lsmod_text()


# ----------------------------------------------------------------------
# the log


def _record(r: LogRecord) -> dict[str, Any]:
    return {"seq": r.seq, "ts_ns": r.ts_ns, "level": r.level, "facility": r.facility,
            "text": r.text}


def op_dmesg(srv: KernelServer, clear: bool = False, read_clear: bool = False) -> dict[str, Any]:
    """The records (a record still open for KERN_CONT shows what it has so far)."""
    log = srv.kernel.log
    recs = [] if clear else [_record(r) for r in log.snapshot()]
    if clear or read_clear:
        log.clear()
    return {"records": recs, "uptime_ns": srv.kernel.now_ns}


def op_dmesg_follow(srv: KernelServer, sink: Sink, end: Callable[[], None],
                    new_only: bool = False) -> Callable[[], None]:
    """Every finished record (none of the old ones with ``new_only``), then
    each new one as it is finished."""
    log = srv.kernel.log
    lock = threading.Lock()
    snap: set[int] | None = None
    early: set[int] = set()  # sent by the listener before the snapshot was taken

    def listener(rec: LogRecord) -> None:
        with lock:
            if snap is None:
                early.add(rec.seq)
            elif rec.seq in snap:
                return
        sink(_record(rec))

    log.listeners.append(listener)
    with lock:
        old = [] if new_only else [r for r in log.snapshot() if not r.open]
        snap = {r.seq for r in old} if not new_only else {r.seq for r in log.snapshot()}
    for r in old:
        if r.seq not in early:
            sink(_record(r))

    def cancel() -> None:
        if listener in log.listeners:
            log.listeners.remove(listener)

    return cancel


def op_console_level(srv: KernelServer, level: int) -> None:
    srv.kernel.write("/proc/sys/kernel/printk", str(int(level)))


# ----------------------------------------------------------------------
# kernel files


def op_read(srv: KernelServer, path: str) -> str:
    return srv.kernel.read(path)


def op_write(srv: KernelServer, path: str, value: str) -> None:
    srv.kernel.write(path, value)


# ----------------------------------------------------------------------
# interrupts and devices


def op_irq(srv: KernelServer, line: int, cpu: int | None = None, count: int = 1,
           rate_hz: float | None = None) -> int:
    from .devices import assert_irq

    return assert_irq(srv.kernel, line, cpu, count, rate_hz)


def op_devices(srv: KernelServer) -> list[str]:
    return [d.describe() for d in srv.kernel.devices.values()]


def op_add_device(srv: KernelServer, spec: str) -> str:
    return str(srv.kernel.add_device(spec).describe())


# ----------------------------------------------------------------------
# tracing


def op_trace_records_follow(srv: KernelServer, sink: Sink, end: Callable[[], None]) -> None:
    """The whole buffer with the internal events, for the Perfetto export."""
    sink(Chunked(srv.kernel.trace.export_records(), record_dict))
    end()


def op_trace_pipe_follow(srv: KernelServer, sink: Sink, end: Callable[[], None]
                         ) -> Callable[[], None]:
    """trace_pipe: each line once, as it is recorded (reading consumes it)."""
    trace = srv.kernel.trace

    def poll() -> None:
        for line in trace.read_pipe().splitlines():
            sink(line)

    poll()
    srv.followers.append(poll)

    def cancel() -> None:
        if poll in srv.followers:
            srv.followers.remove(poll)

    return cancel


def op__cancel(srv: KernelServer, fn: Callable[[], None]) -> None:
    fn()


# ----------------------------------------------------------------------
# live views (bh top)


def op_top_sample(srv: KernelServer) -> dict[str, Any]:
    k = srv.kernel
    # wq_monitor.py -j's rows (bh top keeps the wqmonitor.KEYS of each)
    return {"uptime_ns": k.now_ns, "cpus": k.ncpus, "workqueues": monitor_stats(k),
            "softirqs": k.read("/proc/softirqs"), "interrupts": k.read("/proc/interrupts")}


OPS: dict[str, Callable[..., Any]] = {
    "status": op_status,
    "halt": op_halt,
    "run_for": op_run_for,
    "wait_idle": op_wait_idle,
    "set_rate": op_set_rate,
    "insmod": op_insmod,
    "rmmod": op_rmmod,
    "lsmod": op_lsmod,
    "dmesg": op_dmesg,
    "dmesg_follow": op_dmesg_follow,
    "console_level": op_console_level,
    "read": op_read,
    "write": op_write,
    "irq": op_irq,
    "devices": op_devices,
    "add_device": op_add_device,
    "trace_records_follow": op_trace_records_follow,
    "trace_pipe_follow": op_trace_pipe_follow,
    "_cancel": op__cancel,
    "top_sample": op_top_sample,
}
