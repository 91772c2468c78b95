"""Trace export for Perfetto UI and chrome://tracing (JSON trace events).

Turns the tracepoint records of ``/sys/kernel/tracing/trace`` (plus the
internal ``tasklet_schedule`` events, see :mod:`bottomhalf.trace`) into the
JSON Trace Event Format both viewers open:

* **Tracks.**  One per CPU (process "CPUs", thread "CPU N"): everything that
  ran in interrupt context there, whatever task it interrupted - hard IRQ
  handlers, softirqs, tasklets, BH work items.  One per task (process
  "tasks", thread named after the task's comm, e.g. ``kworker/0:1``):
  what ran in process context, such as work items on kworkers.  A record
  goes on its CPU's track when its hardirq/softirq flag column says
  interrupt context (``h``, ``H``, ``s``) or it comes from an idle task.
* **Slices** (complete ``X`` events) for ``irq_handler_entry/exit``,
  ``softirq_entry/exit``, ``tasklet_entry/exit`` and
  ``workqueue_execute_start/end``.  A slice whose start or end is not in the
  trace is drawn from the trace's start or to its end, and says so in its
  args.
* **Scheduling points** as zero-length slices: ``raise_softirq``,
  ``tasklet_schedule`` (``tasklet_hi_schedule``) and ``queue_work``, where
  they happened (``activate_work`` is an instant event).
* **Flow arrows** (``bind_id`` with ``flow_out`` on the scheduling point and
  ``flow_in`` on the slice it caused): a raise to the next run of that
  vector on that CPU (later raises while it is pending coalesce, as the
  pending bit does), a ``tasklet_schedule`` to that tasklet's next run, a
  ``queue_work`` to that work item's next execution.

Timestamps are microseconds (``ts``, ``dur``) with nanosecond decimals.
This module reads no kernel state: it works on plain record dicts (the
:func:`record_dict` shape), so ``bh trace export`` runs it in the client.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

# Only `bh trace export` imports this module on the client side, lazily: the
# softirq module it pulls in costs the other commands' start-up nothing.
from .softirq import SOFTIRQ_NAMES

if TYPE_CHECKING:
    from .kernel import Kernel
    from .trace import TraceRecord

CPU_PID = 0
TASK_PID = 1
CPU_TID_BASE = 1_000_000  # CPU tracks' tids, far from any task's pid

# entry event -> (exit event, category, key field)
SLICES = {
    "irq_handler_entry": ("irq_handler_exit", "hardirq", "irq"),
    "softirq_entry": ("softirq_exit", "softirq", "vec"),
    "tasklet_entry": ("tasklet_exit", "tasklet", "tasklet"),
    "workqueue_execute_start": ("workqueue_execute_end", "work", "work"),
}
EXITS = {exit_: entry for entry, (exit_, _, _) in SLICES.items()}


def record_dict(r: TraceRecord) -> dict[str, Any]:
    """A trace record as the export (and the bh wire protocol) carries it."""
    return {"seq": r.seq, "ts_ns": r.ts_ns, "cpu": r.cpu, "comm": r.comm, "pid": r.pid,
            "flags": r.flags, "event": r.event, "text": r.text, "args": r.args}


def kernel_records(kernel: Kernel) -> list[dict[str, Any]]:
    """A kernel's trace buffer with its internal events, for :func:`build_trace`."""
    return [record_dict(r) for r in kernel.trace.export_records()]


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


class _Open:
    """A slice whose entry was seen and whose exit was not yet."""

    __slots__ = ("entry", "kind", "key", "ts", "order", "name", "cat", "args", "bind_id")

    def __init__(self, entry: str, key: Any, ts: int, order: int, name: str, cat: str,
                 args: dict[str, Any]) -> None:
        self.entry = entry
        self.key = key
        self.ts = ts
        self.order = order
        self.name = name
        self.cat = cat
        self.args = args
        self.bind_id: int | None = None


class TraceBuilder:
    """Builds the trace events from records given in the order they were recorded."""

    def __init__(self, ncpus: int | None = None) -> None:
        self.ncpus = ncpus
        self.events: list[tuple[int, int, dict[str, Any]]] = []  # (ts_ns, order, event)
        self.open: dict[tuple[int, int], list[_Open]] = {}
        self.cpus: set[int] = set(range(ncpus)) if ncpus else set()
        self.tasks: dict[int, str] = {}
        self.first_ns: int | None = None
        self.last_ns = 0
        self.order = 0
        self.next_flow = 1
        self.raised: dict[tuple[int, Any], int] = {}  # (cpu, vec) -> flow id of the raise
        self.tasklets: dict[Any, deque[int]] = {}
        self.works: dict[Any, deque[tuple[int, str]]] = {}
        self.flows = 0

    # ------------------------------------------------------------------
    def track(self, rec: dict[str, Any]) -> tuple[int, int]:
        flags = rec.get("flags") or "....."
        if rec["pid"] == 0 or (len(flags) > 2 and flags[2] in "hHsz"):
            self.cpus.add(rec["cpu"])
            return CPU_PID, CPU_TID_BASE + rec["cpu"]
        self.tasks[rec["pid"]] = rec["comm"]
        return TASK_PID, rec["pid"]

    def add(self, rec: dict[str, Any]) -> None:
        ts = rec["ts_ns"]
        if self.first_ns is None:
            self.first_ns = ts
        self.last_ns = max(self.last_ns, ts)
        self.order += 1
        event = rec["event"]
        args = rec.get("args") or {}
        pid, tid = self.track(rec)
        context = {"comm": rec["comm"], "pid": rec["pid"], "cpu": rec["cpu"],
                   "flags": rec.get("flags", "")}
        if event in SLICES:
            self._begin(rec, pid, tid, ts, args, context)
        elif event in EXITS:
            self._end(rec, pid, tid, ts, args)
        elif event == "softirq_raise":
            vec = args.get("vec", 0)
            flow = self._marker(pid, tid, ts, f"raise_softirq {_vec_name(vec)}", "raise",
                                dict(args, **context), flow=(rec["cpu"], vec) not in self.raised)
            if flow is not None:
                self.raised[(rec["cpu"], vec)] = flow
        elif event == "tasklet_schedule":
            what = "tasklet_hi_schedule" if args.get("hi") else "tasklet_schedule"
            flow = self._marker(pid, tid, ts, f"{what} {args.get('function', '?')}", "schedule",
                                dict(args, **context), flow=True)
            assert flow is not None
            self.tasklets.setdefault(args.get("tasklet"), deque()).append(flow)
        elif event == "workqueue_queue_work":
            flow = self._marker(pid, tid, ts, f"queue_work {args.get('function', '?')}", "queue",
                                dict(args, **context), flow=True)
            assert flow is not None
            self.works.setdefault(args.get("work"), deque()).append(
                (flow, str(args.get("workqueue", ""))))
        elif event == "workqueue_activate_work":
            self._emit(ts, {"ph": "i", "s": "t", "pid": pid, "tid": tid,
                            "name": f"activate_work {args.get('function', '?')}",
                            "cat": "queue", "ts": _us(ts), "args": dict(args, **context)})

    def _emit(self, ts: int, ev: dict[str, Any], order: int | None = None) -> None:
        self.events.append((ts, self.order if order is None else order, ev))

    def _marker(self, pid: int, tid: int, ts: int, name: str, cat: str, args: dict[str, Any],
                flow: bool) -> int | None:
        ev: dict[str, Any] = {"ph": "X", "pid": pid, "tid": tid, "name": name, "cat": cat,
                              "ts": _us(ts), "dur": 0, "args": args}
        flow_id = None
        if flow:
            flow_id = self.next_flow
            self.next_flow += 1
            ev["bind_id"] = flow_id
            ev["flow_out"] = True
        self._emit(ts, ev)
        return flow_id

    def _begin(self, rec: dict[str, Any], pid: int, tid: int, ts: int, args: dict[str, Any],
               context: dict[str, Any]) -> None:
        event = rec["event"]
        _, cat, key_field = SLICES[event]
        key = args.get(key_field)
        slice_args = dict(args, **context)
        if event == "irq_handler_entry":
            name = f"irq {key}: {args.get('name', '?')}"
        elif event == "softirq_entry":
            name = f"softirq {_vec_name(key)}"
        elif event == "tasklet_entry":
            name = f"tasklet {args.get('function', '?')}"
        else:
            name = f"work {args.get('function', '?')}"
        sl = _Open(event, key, ts, self.order, name, cat, slice_args)
        if event == "softirq_entry":
            sl.bind_id = self.raised.pop((rec["cpu"], key), None)
        elif event == "tasklet_entry":
            pending = self.tasklets.get(key)
            sl.bind_id = pending.popleft() if pending else None
        elif event == "workqueue_execute_start":
            queued = self.works.get(key)
            if queued:
                sl.bind_id, wq = queued.popleft()
                sl.args["workqueue"] = wq
        self.open.setdefault((pid, tid), []).append(sl)

    def _end(self, rec: dict[str, Any], pid: int, tid: int, ts: int, args: dict[str, Any]) -> None:
        entry = EXITS[rec["event"]]
        key = args.get(SLICES[entry][2])
        stack = self.open.get((pid, tid), [])
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].entry == entry and stack[i].key == key:
                while len(stack) > i + 1:  # not properly nested: close them here
                    self._close(pid, tid, stack.pop(), ts, "ended by an outer slice's exit")
                sl = stack.pop()
                if rec["event"] == "irq_handler_exit":
                    sl.args["ret"] = args.get("ret")
                self._close(pid, tid, sl, ts, None)
                return
        # An exit whose entry is not in the trace: from the start of the trace.
        start = self.first_ns if self.first_ns is not None else ts
        name = {"irq_handler_entry": f"irq {key}", "softirq_entry": f"softirq {_vec_name(key)}",
                "tasklet_entry": f"tasklet {args.get('function', '?')}",
                "workqueue_execute_start": f"work {args.get('function', '?')}"}[entry]
        sl = _Open(entry, key, start, 0, name, SLICES[entry][1], dict(args))
        self._close(pid, tid, sl, ts, "began before the trace")

    def _close(self, pid: int, tid: int, sl: _Open, end: int, note: str | None) -> None:
        if note:
            sl.args["note"] = note
        ev: dict[str, Any] = {"ph": "X", "pid": pid, "tid": tid, "name": sl.name, "cat": sl.cat,
                              "ts": _us(sl.ts), "dur": round((end - sl.ts) / 1000, 3),
                              "args": sl.args}
        if sl.bind_id is not None:
            ev["bind_id"] = sl.bind_id
            ev["flow_in"] = True
            self.flows += 1
        self._emit(sl.ts, ev, order=sl.order)

    # ------------------------------------------------------------------
    def finish(self) -> list[dict[str, Any]]:
        for (pid, tid), stack in self.open.items():
            while stack:
                self._close(pid, tid, stack.pop(), self.last_ns, "still running when the trace ended")
        self.open.clear()
        meta: list[dict[str, Any]] = [
            {"ph": "M", "name": "process_name", "pid": CPU_PID, "tid": 0,
             "args": {"name": "CPUs (interrupt context)"}},
            {"ph": "M", "name": "process_sort_index", "pid": CPU_PID, "tid": 0,
             "args": {"sort_index": 0}},
            {"ph": "M", "name": "process_name", "pid": TASK_PID, "tid": 0,
             "args": {"name": "tasks (process context)"}},
            {"ph": "M", "name": "process_sort_index", "pid": TASK_PID, "tid": 0,
             "args": {"sort_index": 1}},
        ]
        for cpu in sorted(self.cpus):
            meta.append({"ph": "M", "name": "thread_name", "pid": CPU_PID,
                         "tid": CPU_TID_BASE + cpu, "args": {"name": f"CPU {cpu}"}})
            meta.append({"ph": "M", "name": "thread_sort_index", "pid": CPU_PID,
                         "tid": CPU_TID_BASE + cpu, "args": {"sort_index": cpu}})
        for pid in sorted(self.tasks):
            meta.append({"ph": "M", "name": "thread_name", "pid": TASK_PID, "tid": pid,
                         "args": {"name": self.tasks[pid]}})
            meta.append({"ph": "M", "name": "thread_sort_index", "pid": TASK_PID, "tid": pid,
                         "args": {"sort_index": pid}})
        self.events.sort(key=lambda e: (e[0], e[1]))
        return meta + [ev for _, _, ev in self.events]


def _vec_name(vec: Any) -> str:
    if isinstance(vec, int) and 0 <= vec < len(SOFTIRQ_NAMES):
        return SOFTIRQ_NAMES[vec]
    return str(vec)


def build_trace(records: Iterable[dict[str, Any]], ncpus: int | None = None,
                title: str = "bottomhalf") -> dict[str, Any]:
    """The JSON object of a trace: ``{"traceEvents": [...], ...}``."""
    builder = TraceBuilder(ncpus)
    for rec in sorted(records, key=lambda r: r.get("seq", 0)):
        builder.add(rec)
    events = builder.finish()
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"source": title, "flows": builder.flows}}


def write_trace(f: IO[str], trace: dict[str, Any],
                progress: Callable[[int, int], None] | None = None) -> None:
    """Write ``trace`` as JSON, one event per line, reporting ``progress(done, total)``."""
    events = trace["traceEvents"]
    total = len(events)
    f.write('{"traceEvents": [\n')
    step = max(1, total // 100)
    for i, ev in enumerate(events):
        f.write(json.dumps(ev, separators=(",", ":")))
        f.write(",\n" if i + 1 < total else "\n")
        if progress is not None and (i + 1) % step == 0:
            progress(i + 1, total)
    rest = {k: v for k, v in trace.items() if k != "traceEvents"}
    f.write("]")
    for k, v in rest.items():
        f.write(f", {json.dumps(k)}: {json.dumps(v)}")
    f.write("}\n")
    if progress is not None:
        progress(total, total)


