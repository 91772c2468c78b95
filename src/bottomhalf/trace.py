"""Tracepoints and the tracefs ``trace`` file.

Mirrors include/trace/events/{irq,workqueue}.h and kernel/trace/trace_output.c
(reference §8).  Eleven events, with Linux's ``TP_printk`` formats:

==========================  =====================================================
irq:irq_handler_entry       ``irq=%d name=%s``
irq:irq_handler_exit        ``irq=%d ret=%s`` (handled / unhandled)
irq:softirq_raise/entry/exit ``vec=%u [action=%s]``
irq:tasklet_entry/exit      ``tasklet=%ps function=%ps``
workqueue:workqueue_queue_work  ``work struct=%p function=%ps workqueue=%s req_cpu=%d cpu=%d``
workqueue:workqueue_activate_work  ``work struct %p function=%ps `` (trailing space)
workqueue:workqueue_execute_start/end  ``work struct %p: function %ps``
==========================  =====================================================

``cpu=`` of workqueue_queue_work is the pool's CPU, as the kernel's
``__entry->cpu = pwq->pool->cpu`` records it: ``-1`` for unbound pools.

A record keeps the raw fields too (``args``), for the Perfetto export.

Internal events are bottomhalf's, not Linux's: Linux has no tracepoint where
a tasklet is scheduled, yet the Perfetto export draws an arrow from that
point to the tasklet's run.  So while ``irq:tasklet_entry`` is enabled,
``tasklet_schedule`` is recorded in a separate list that the ``trace`` and
``trace_pipe`` files never show and the header never counts; only
:meth:`Trace.export_records` returns it, merged in order by ``seq``.

Guards: ``Trace.lock`` protects the buffers, ``seq`` and the enable switches.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import HARDIRQ_MASK, SOFTIRQ_MASK, SOFTIRQ_OFFSET, ExecCtx
from .errors import KernelFileError
from .softirq import SOFTIRQ_NAMES
from .trace_events import EVENTS as EVENTS  # re-exported
from .trace_events import match_events

if TYPE_CHECKING:
    from .kernel import Kernel

# bottomhalf's own events, recorded for the Perfetto export only (see above),
# each while the Linux event named here is enabled
INTERNAL_EVENTS: dict[str, str] = {
    "tasklet_schedule": "tasklet_entry",
}

# Capacity of the buffer in records; when full the oldest record is overwritten
# (Linux's default overwrite mode), and the header's entries-in-buffer stays
# here while entries-written keeps counting.
TRACE_BUF_ENTRIES = 1 << 20


@dataclass(slots=True)
class TraceRecord:
    ts_ns: int
    cpu: int
    comm: str
    pid: int
    flags: str
    event: str
    text: str
    args: dict[str, Any]
    seq: int = 0  # order of recording, shared by the trace and the internal events

    def line(self) -> str:
        usec = (self.ts_ns + 500) // 1000  # ns2usecs() rounds to the nearest
        return (f"{self.comm:>16s}-{self.pid:<7d} [{self.cpu:03d}] {self.flags} "
                f"{usec // 1_000_000:5d}.{usec % 1_000_000:06d}: {self.event}: {self.text}")


class Trace:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.lock = threading.Lock()
        self.enabled: set[str] = set()
        self.tracing_on = True
        self.on = False  # fast path: some event enabled and tracing on
        self.internal_on = False  # record the internal events (see INTERNAL_EVENTS)
        self.records: deque[TraceRecord] = deque(maxlen=TRACE_BUF_ENTRIES)
        self.internal: deque[TraceRecord] = deque()
        self.seq = 0
        self.written = 0

    def _update(self) -> None:
        self.on = bool(self.enabled) and self.tracing_on
        self.internal_on = self.on and any(ev in self.enabled for ev in INTERNAL_EVENTS.values())

    # ------------------------------------------------------------------
    # controls
    def enable(self, name: str, on: bool = True) -> None:
        """Enable an event (``irq:tasklet_entry``, ``tasklet_entry``), a system
        (``irq:*``, ``workqueue``) or everything (``*:*``): see
        :func:`~bottomhalf.trace_events.match_events`."""
        names = match_events(name)
        if not names:
            raise KernelFileError("/sys/kernel/tracing/set_event", 22, f"no event '{name}'")
        with self.lock:
            if on:
                self.enabled.update(names)
            else:
                self.enabled.difference_update(names)
            self._update()

    def set_tracing_on(self, on: bool) -> None:
        with self.lock:
            self.tracing_on = on
            self._update()

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.internal.clear()
            self.written = 0

    # ------------------------------------------------------------------
    def context_flags(self, ctx: ExecCtx) -> str:
        """The five flag columns of a trace line (trace_output.c trace_print_lat_fmt):
        irqs-off/BH-off, need-resched, hardirq/softirq, preempt depth, migrate-disable."""
        pc = ctx.preempt_count
        bh_off = (pc & SOFTIRQ_MASK) >> 9
        irqs = ctx.irqs_off
        c1 = "D" if irqs and bh_off else "d" if irqs else "b" if bh_off else "."
        c2 = "N" if self.kernel.engine.need_resched(ctx.cpu) else "."
        hard = pc & HARDIRQ_MASK
        soft = pc & SOFTIRQ_OFFSET
        c3 = "H" if hard and soft else "h" if hard else "s" if soft else "."
        depth = pc & 0xFF
        c4 = "." if depth == 0 else format(min(depth, 15), "x")
        return f"{c1}{c2}{c3}{c4}."

    def _emit(self, ctx: ExecCtx, event: str, text: str, args: dict[str, Any]) -> None:
        if event not in self.enabled:
            return
        task = ctx.task
        rec = TraceRecord(0, ctx.cpu, task.trace_comm(), task.pid,
                          self.context_flags(ctx), event, text, args)
        with self.lock:
            # Stamped under the lock, so the buffer is in timestamp order as
            # Linux's merge of its per-CPU buffers would show it.
            rec.ts_ns = self.kernel.now_ns
            self.seq += 1
            rec.seq = self.seq
            records = self.records
            if len(records) == records.maxlen:
                # the append below overwrites the oldest record: the internal
                # events older than the new oldest one go with it
                internal = self.internal
                first = records[1].seq if len(records) > 1 else rec.seq
                while internal and internal[0].seq < first:
                    internal.popleft()
            records.append(rec)
            self.written += 1

    def _emit_internal(self, ctx: ExecCtx, event: str, args: dict[str, Any]) -> None:
        task = ctx.task
        rec = TraceRecord(self.kernel.now_ns, ctx.cpu, task.trace_comm(), task.pid,
                          self.context_flags(ctx), event, "", args)
        with self.lock:
            self.seq += 1
            rec.seq = self.seq
            self.internal.append(rec)

    # ------------------------------------------------------------------
    # the events
    def irq_handler_entry(self, ctx: ExecCtx, irq: int, name: str) -> None:
        self._emit(ctx, "irq_handler_entry", f"irq={irq} name={name}", {"irq": irq, "name": name})

    def irq_handler_exit(self, ctx: ExecCtx, irq: int, ret: Any) -> None:
        # __entry->ret ? "handled" : "unhandled": IRQ_WAKE_THREAD counts as handled
        handled = "handled" if ret else "unhandled"
        self._emit(ctx, "irq_handler_exit", f"irq={irq} ret={handled}", {"irq": irq, "ret": handled})

    def softirq_raise(self, ctx: ExecCtx, nr: int) -> None:
        self._emit(ctx, "softirq_raise", f"vec={nr} [action={SOFTIRQ_NAMES[nr]}]", {"vec": nr})

    def softirq_entry(self, ctx: ExecCtx, nr: int) -> None:
        self._emit(ctx, "softirq_entry", f"vec={nr} [action={SOFTIRQ_NAMES[nr]}]", {"vec": nr})

    def softirq_exit(self, ctx: ExecCtx, nr: int) -> None:
        self._emit(ctx, "softirq_exit", f"vec={nr} [action={SOFTIRQ_NAMES[nr]}]", {"vec": nr})

    def tasklet_entry(self, ctx: ExecCtx, t: Any) -> None:
        self._tasklet(ctx, "tasklet_entry", t)

    def tasklet_exit(self, ctx: ExecCtx, t: Any) -> None:
        self._tasklet(ctx, "tasklet_exit", t)

    def _tasklet(self, ctx: ExecCtx, event: str, t: Any) -> None:
        if event not in self.enabled:
            return
        sym = self.kernel.symbols
        fn = t.handler
        self._emit(ctx, event, f"tasklet={sym.symbol(t)} function={sym.symbol(fn)}",
                   {"tasklet": sym.pointer(t), "function": sym.symbol(fn)})

    def tasklet_schedule(self, ctx: ExecCtx, t: Any, hi: bool) -> None:
        """Internal event (Linux has no such tracepoint): ``t`` was put on this
        CPU's tasklet list."""
        sym = self.kernel.symbols
        self._emit_internal(ctx, "tasklet_schedule",
                            {"tasklet": sym.pointer(t), "name": sym.symbol(t),
                             "function": sym.symbol(t.handler), "hi": hi})

    def workqueue_queue_work(self, ctx: ExecCtx, work: Any, wq: Any, req_cpu: int,
                             cpu: int) -> None:
        if "workqueue_queue_work" not in self.enabled:
            return
        sym = self.kernel.symbols
        p = sym.pointer(work)
        fn = sym.symbol(work.func)
        self._emit(ctx, "workqueue_queue_work",
                   f"work struct={p} function={fn} workqueue={wq.name} req_cpu={req_cpu} cpu={cpu}",
                   {"work": p, "function": fn, "workqueue": wq.name, "req_cpu": req_cpu,
                    "cpu": cpu})

    def workqueue_activate_work(self, ctx: ExecCtx, work: Any) -> None:
        if "workqueue_activate_work" not in self.enabled:
            return
        sym = self.kernel.symbols
        p = sym.pointer(work)
        fn = sym.symbol(work.func)
        self._emit(ctx, "workqueue_activate_work", f"work struct {p} function={fn} ",
                   {"work": p, "function": fn})

    def workqueue_execute_start(self, ctx: ExecCtx, work: Any) -> None:
        if "workqueue_execute_start" not in self.enabled:
            return
        sym = self.kernel.symbols
        p = sym.pointer(work)
        fn = sym.symbol(work.func)
        self._emit(ctx, "workqueue_execute_start", f"work struct {p}: function {fn}",
                   {"work": p, "function": fn})

    def workqueue_execute_end(self, ctx: ExecCtx, work: Any, func: Any) -> None:
        if "workqueue_execute_end" not in self.enabled:
            return
        sym = self.kernel.symbols
        p = sym.pointer(work)
        fn = sym.symbol(func)
        self._emit(ctx, "workqueue_execute_end", f"work struct {p}: function {fn}",
                   {"work": p, "function": fn})

    # ------------------------------------------------------------------
    # files
    def header(self) -> str:
        with self.lock:
            n = len(self.records)
            w = self.written
        return (
            "# tracer: nop\n"
            "#\n"
            f"# entries-in-buffer/entries-written: {n}/{w}   #P:{self.kernel.ncpus}\n"
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

    def read_trace(self) -> str:
        with self.lock:
            recs = list(self.records)
        return self.header() + "".join(r.line() + "\n" for r in recs)

    def read_pipe(self) -> str:
        """trace_pipe: a consuming read (never blocks here).

        As on Linux, what trace_pipe returns is gone from the buffer: the
        ``trace`` file and its entries-in-buffer count no longer show it, while
        entries-written keeps counting.
        """
        with self.lock:
            recs = list(self.records)
            self.records.clear()
            if recs:  # the internal events of what was consumed go with it
                internal = self.internal
                while internal and internal[0].seq < recs[-1].seq:
                    internal.popleft()
        return "".join(r.line() + "\n" for r in recs)

    def export_records(self) -> list[TraceRecord]:
        """The buffer and the internal events, in the order they were recorded."""
        with self.lock:
            recs = list(self.records)
            internal = list(self.internal)
        if not internal:
            return recs
        return list(heapq.merge(recs, internal, key=lambda r: r.seq))

    def lines(self) -> list[str]:
        with self.lock:
            return [r.line() for r in self.records]

    def set_event_text(self) -> str:
        with self.lock:
            names = sorted(self.enabled, key=list(EVENTS).index)
        return "".join(f"{EVENTS[n]}:{n}\n" for n in names)

    def write_set_event(self, text: str, append: bool = False) -> None:
        if not append:
            with self.lock:
                self.enabled.clear()
                self._update()
        for word in text.split():
            if word.startswith("!"):
                self.enable(word[1:], False)
            else:
                self.enable(word, True)
