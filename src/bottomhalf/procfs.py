"""The kernel's files: /proc, /sys and tracefs, as text built from live state.

Views never print; they return the text Linux would (reference §2.3, §3.5,
§8, §9.3, §10.2, §11), built from each subsystem's counters when read.
``/sys/kernel/debug/workqueue`` is bottomhalf's own: Linux has no such file
(reference §9.4), and its first line says so.

Unknown paths raise ``FileNotFoundError``, directories ``IsADirectoryError``
(reading the workqueue sysfs device directories is the one exception: it
lists the WQ_SYSFS queues); writes to read-only files and bad values raise
:class:`~bottomhalf.errors.KernelFileError` with Linux's errno.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from .errnos import EACCES, EINVAL, EISDIR, ENOENT, ERANGE, strerror
from .errors import KernelFileError
from .params import INT_TYPES, convert_param, kstrtoll
from .softirq import SOFTIRQ_NAMES
from .trace import EVENTS

if TYPE_CHECKING:
    from .kernel import Kernel
    from .workqueue import workqueue_struct

Reader = Callable[[], str]
Writer = Callable[[str], None]

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# where WQ_SYSFS workqueues appear (kernel/workqueue.c wq_subsys, a bus "workqueue")
ULONG_MAX = INT_TYPES["ulong"][1]
WQ_SYSFS_DIRS = ("/sys/bus/workqueue/devices/", "/sys/devices/virtual/workqueue/")

# show_softirq_name() in include/trace/events/irq.h, as the format file prints
# it: each softirq_name(X) expanded to { X_SOFTIRQ's value, "X" }
_SOFTIRQ_FMT = ('"vec=%u [action=%s]", REC->vec, __print_symbolic(REC->vec, '
                + ", ".join(f'{{ {nr}, "{name}" }}' for nr, name in enumerate(SOFTIRQ_NAMES))
                + ")")

_EVENT_FORMATS = {
    "irq_handler_entry": ('"irq=%d name=%s", REC->irq, __get_str(name)',
                          ["int irq", "__data_loc char[] name"]),
    "irq_handler_exit": ('"irq=%d ret=%s", REC->irq, REC->ret ? "handled" : "unhandled"',
                         ["int irq", "int ret"]),
    "softirq_raise": (_SOFTIRQ_FMT, ["unsigned int vec"]),
    "softirq_entry": (_SOFTIRQ_FMT, ["unsigned int vec"]),
    "softirq_exit": (_SOFTIRQ_FMT, ["unsigned int vec"]),
    "tasklet_entry": ('"tasklet=%ps function=%ps", REC->tasklet, REC->func',
                      ["void * tasklet", "void * func"]),
    "tasklet_exit": ('"tasklet=%ps function=%ps", REC->tasklet, REC->func',
                     ["void * tasklet", "void * func"]),
    "workqueue_queue_work": ('"work struct=%p function=%ps workqueue=%s req_cpu=%d cpu=%d", '
                             'REC->work, REC->function, __get_str(workqueue), REC->req_cpu, '
                             'REC->cpu',
                             ["void * work", "void * function", "__data_loc char[] workqueue",
                              "int req_cpu", "int cpu"]),
    "workqueue_activate_work": ('"work struct %p function=%ps ", REC->work, REC->function',
                                ["void * work", "void * function"]),
    "workqueue_execute_start": ('"work struct %p: function %ps", REC->work, REC->function',
                                ["void * work", "void * function"]),
    "workqueue_execute_end": ('"work struct %p: function %ps", REC->work, REC->function',
                              ["void * work", "void * function"]),
}


class KernelFiles:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        k = kernel
        self.files: dict[str, tuple[Reader, Writer | None]] = {
            "/proc/interrupts": (k.irq.proc_interrupts, None),
            "/proc/softirqs": (k.softirq.proc_softirqs, None),
            "/proc/stat": (self._proc_stat, None),
            "/proc/modules": (k.modules.proc_modules, None),
            "/proc/version": (self._proc_version, None),
            "/proc/uptime": (self._proc_uptime, None),
            "/proc/sys/kernel/printk": (k.log.read_sysctl, k.log.write_sysctl),
            "/proc/sys/kernel/tainted": (lambda: f"{k.taint_mask()}\n", None),
            "/sys/kernel/debug/workqueue": (self._debug_workqueue, None),
            "/sys/kernel/debug/bottomhalf/fail_worker_creation": (
                lambda: f"{1 if k.wq.fail_worker_creation else 0}\n", self._write_fail_create),
            "/sys/kernel/debug/bottomhalf/wq_monitor": (self._wq_monitor, None),
        }
        self.files.update(self._wq_params())
        for root in TRACEFS:
            self.files[f"{root}/trace"] = (k.trace.read_trace, self._write_trace)
            self.files[f"{root}/trace_pipe"] = (k.trace.read_pipe, None)
            self.files[f"{root}/set_event"] = (k.trace.set_event_text, self._write_set_event)
            self.files[f"{root}/tracing_on"] = (self._tracing_on, self._write_tracing_on)
            self.files[f"{root}/available_events"] = (self._available_events, None)
            self.files[f"{root}/events/enable"] = (
                partial(self._enable_state, list(EVENTS)),
                partial(self._write_enable, "*:*", f"{root}/events/enable"))
            for system in ("irq", "workqueue"):
                evs = [e for e, s in EVENTS.items() if s == system]
                self.files[f"{root}/events/{system}/enable"] = (
                    partial(self._enable_state, evs),
                    partial(self._write_enable, f"{system}:*", f"{root}/events/{system}/enable"))
                for ev in evs:
                    base = f"{root}/events/{system}/{ev}"
                    self.files[f"{base}/enable"] = (
                        partial(self._enable_state, [ev]),
                        partial(self._write_enable, ev, f"{base}/enable"))
                    self.files[f"{base}/format"] = (partial(self._format, ev), None)

    # ------------------------------------------------------------------
    def _dynamic(self, path: str) -> tuple[Reader, Writer | None] | None:
        for p in WQ_SYSFS_DIRS:
            if (path + "/").startswith(p):
                rest = path[len(p):]
                if rest == "cpumask" and p == WQ_SYSFS_DIRS[1]:
                    return (lambda: f"{self._cpumask_hex()}\n", None)
                name, _, attr = rest.partition("/")
                if name == "":
                    # bottomhalf's one directory read: the WQ_SYSFS queues, as ls lists them
                    names = [w.name for w in self.kernel.wq.workqueues if w.sysfs]
                    if p == WQ_SYSFS_DIRS[1]:
                        names.append("cpumask")
                    listing = "".join(n + "\n" for n in sorted(names))
                    return (partial(str, listing), None)
                wq = self._sysfs_wq(name)
                if wq is None:
                    return None
                return self._wq_attrs(wq).get(attr)
        return None

    def _sysfs_wq(self, name: str) -> workqueue_struct | None:
        for wq in self.kernel.wq.workqueues:
            if wq.name == name and wq.sysfs:
                return wq
        return None

    def _wq_attrs(self, wq: workqueue_struct) -> dict[str, tuple[Reader, Writer | None]]:
        k = self.kernel

        def write_max_active(v: str) -> None:
            try:
                n = int(v.strip())
            except ValueError:
                raise KernelFileError(f"max_active of {wq.name}", EINVAL, "not a number") from None
            if n <= 0:
                raise KernelFileError(f"max_active of {wq.name}", EINVAL, "must be positive")
            k.call(lambda: k.wq.set_max_active(k.current_ctx(), wq, n))

        attrs: dict[str, tuple[Reader, Writer | None]] = {
            "per_cpu": (lambda: "0\n" if wq.unbound else "1\n", None),
            "max_active": (lambda: f"{wq.saved_max_active}\n", write_max_active),
        }
        if wq.unbound:
            attrs["nice"] = (lambda: f"{wq.pwqs[0].pool.nice}\n", None)
            attrs["cpumask"] = (lambda: f"{self._cpumask_hex()}\n", None)
            attrs["affinity_scope"] = (lambda: "default (cache)\n", None)
            attrs["affinity_strict"] = (lambda: "0\n", None)
        return attrs

    def _cpumask_hex(self) -> str:
        return f"{(1 << self.kernel.ncpus) - 1:x}"

    def lookup(self, path: str) -> tuple[Reader, Writer | None]:
        """The reader and writer of a file; a directory is ``IsADirectoryError``
        (EISDIR), anything else unknown ``FileNotFoundError`` (ENOENT)."""
        norm = path.rstrip("/") if path != "/" else path
        entry = self.files.get(norm) or self._dynamic(norm)
        if entry is not None:
            return entry
        below = norm.rstrip("/") + "/"
        if any(p.startswith(below) for p in self.paths() + list(WQ_SYSFS_DIRS)):
            raise IsADirectoryError(EISDIR, strerror(EISDIR), path)
        raise FileNotFoundError(ENOENT, strerror(ENOENT), path)

    def read(self, path: str) -> str:
        reader, _ = self.lookup(path)
        return reader()

    def write(self, path: str, text: str) -> None:
        _, writer = self.lookup(path)
        if writer is None:
            raise KernelFileError(path, EACCES, "the file is read-only")
        writer(str(text))

    def paths(self) -> list[str]:
        """Every file there is now."""
        out = list(self.files) + [WQ_SYSFS_DIRS[1] + "cpumask"]
        for wq in self.kernel.wq.workqueues:
            if wq.sysfs:
                out.extend(f"{d}{wq.name}/{a}" for d in WQ_SYSFS_DIRS for a in self._wq_attrs(wq))
        return sorted(out)

    # ------------------------------------------------------------------
    def _proc_stat(self) -> str:
        k = self.kernel
        n = k.ncpus
        up_ticks = k.now_ns // 10_000_000  # USER_HZ = 100
        busy = [k.sched.cpu_busy_ns(c) // 10_000_000 for c in range(n)]
        lines = []
        tot_sys = sum(busy)
        tot_idle = max(0, up_ticks * n - tot_sys)
        lines.append(f"cpu  0 0 {tot_sys} {tot_idle} 0 0 0 0 0 0")
        for c in range(n):
            lines.append(f"cpu{c} 0 0 {busy[c]} {max(0, up_ticks - busy[c])} 0 0 0 0 0 0")
        per_irq = [0] * 256
        for irq, d in k.irq.descs.items():
            per_irq[irq] = sum(d.kstat)
        intr_total = sum(per_irq) + sum(k.irq.loc)
        lines.append("intr " + " ".join(str(v) for v in [intr_total, *per_irq]))
        lines.append(f"ctxt {k.sched.context_switches()}")
        lines.append("btime 0")
        lines.append(f"processes {k.sched.forks()}")
        lines.append(f"procs_running {max(1, k.sched.nr_running())}")
        lines.append("procs_blocked 0")
        lines.append(k.softirq.stat_line())
        return "\n".join(lines) + "\n"

    def _proc_version(self) -> str:
        from .report import UTS_RELEASE, UTS_VERSION

        v = sys.version.split()[0]
        return (f"Linux version {UTS_RELEASE} (bottomhalf@{self.kernel.engine.name}) "
                f"(Python {v}) {UTS_VERSION} SMP PREEMPT_DYNAMIC\n")

    def _proc_uptime(self) -> str:
        k = self.kernel
        up = k.now_ns / 1e9
        idle = max(0.0, up * k.ncpus - sum(k.sched.cpu_busy_ns(c) for c in range(k.ncpus)) / 1e9)
        return f"{up:.2f} {idle:.2f}\n"

    def _debug_workqueue(self) -> str:
        from .wqview import debug_workqueue

        return debug_workqueue(self.kernel)

    def _wq_monitor(self) -> str:
        from .wqview import wq_monitor

        return wq_monitor(self.kernel)

    def _wq_params(self) -> dict[str, tuple[Reader, Writer | None]]:
        """/sys/module/workqueue/parameters/ (kernel/workqueue.c module_param)."""
        k = self.kernel
        base = "/sys/module/workqueue/parameters/"
        params = k.params
        params.setdefault("workqueue.cpu_intensive_warning_thresh", 4)
        params.setdefault("workqueue.panic_on_stall", 0)
        params.setdefault("workqueue.debug_force_rr_cpu", False)

        def ulong(name: str, setter: Callable[[int], None] | None = None) -> tuple[Reader, Writer]:
            def write(text: str) -> None:
                try:
                    n = convert_param("ulong", text)  # param_set_ulong(): kstrtoul, base 0
                except ValueError:
                    raise KernelFileError(base + name, EINVAL,
                                          "not an unsigned long (kstrtoul, base 0)") from None
                if setter is not None:
                    setter(n)
                else:
                    params[f"workqueue.{name}"] = n
            return (lambda: f"{params[f'workqueue.{name}']}\n", write)

        def set_thresh(n: int) -> None:
            k.call(lambda: k.wq.set_watchdog_thresh(k.current_ctx(), n))

        def write_rr(text: str) -> None:
            try:
                on = convert_param("bool", text)  # param_set_bool(): kstrtobool
            except ValueError:
                raise KernelFileError(base + "debug_force_rr_cpu", EINVAL,
                                      "write Y, N, 1, 0, on or off") from None
            params["workqueue.debug_force_rr_cpu"] = on

        return {
            base + "watchdog_thresh": ulong("watchdog_thresh", set_thresh),
            base + "cpu_intensive_thresh_us": ulong("cpu_intensive_thresh_us"),
            base + "cpu_intensive_warning_thresh": ulong("cpu_intensive_warning_thresh"),
            base + "panic_on_stall": ulong("panic_on_stall"),
            base + "power_efficient": (
                lambda: "Y\n" if params["workqueue.power_efficient"] else "N\n", None),
            base + "debug_force_rr_cpu": (
                lambda: "Y\n" if params["workqueue.debug_force_rr_cpu"] else "N\n", write_rr),
            base + "default_affinity_scope": (lambda: "cache\n", None),
        }

    def _write_fail_create(self, text: str) -> None:
        v = text.strip()
        if v not in ("0", "1"):
            raise KernelFileError("fail_worker_creation", EINVAL, "write 0 or 1")
        self.kernel.wq.fail_worker_creation = v == "1"

    # tracefs ----------------------------------------------------------
    def _write_trace(self, text: str) -> None:
        # "echo > trace" (any write, even empty, with O_TRUNC) clears the buffer
        self.kernel.trace.clear()

    def _write_set_event(self, text: str) -> None:
        self.kernel.trace.write_set_event(text)

    def _write_tracing_on(self, text: str) -> None:
        """rb_simple_write(): a base-10 unsigned long; any nonzero value turns tracing on."""
        try:
            v = kstrtoll(text, signed=False, base=10)
        except ValueError:
            raise KernelFileError("tracing_on", EINVAL, "not a decimal number") from None
        if v > ULONG_MAX:
            raise KernelFileError("tracing_on", ERANGE, "does not fit in an unsigned long")
        self.kernel.trace.set_tracing_on(v != 0)

    def _enable_state(self, evs: list[str]) -> str:
        on = [e in self.kernel.trace.enabled for e in evs]
        if all(on):
            return "1\n"
        if not any(on):
            return "0\n"
        return "X\n"

    def _tracing_on(self) -> str:
        return "1\n" if self.kernel.trace.tracing_on else "0\n"

    def _available_events(self) -> str:
        return "".join(f"{s}:{e}\n" for e, s in EVENTS.items())

    def _write_enable(self, what: str, path: str, text: str) -> None:
        v = text.strip()
        if v not in ("0", "1"):
            raise KernelFileError(path, EINVAL, "write 0 or 1")
        self.kernel.trace.enable(what, v == "1")

    def _format(self, ev: str) -> str:
        fmt, fields = _EVENT_FORMATS[ev]
        eid = list(EVENTS).index(ev) + 100
        out = [f"name: {ev}", f"ID: {eid}", "format:",
               "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;",
               "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;",
               "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;",
               "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;", ""]
        off = 8
        for f in fields:
            size = 8 if "*" in f or "long" in f else 4
            signed = 1 if f.startswith("int") else 0
            out.append(f"\tfield:{f};\toffset:{off};\tsize:{size};\tsigned:{signed};")
            off += size
        out.append("")
        out.append(f"print fmt: {fmt}")
        return "\n".join(out) + "\n"
