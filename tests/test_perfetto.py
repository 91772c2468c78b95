"""The Perfetto / chrome://tracing export: tracks, slices and flow arrows of
real sim runs, checked event by event, and the JSON it writes."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

from bottomhalf import Kernel
from bottomhalf.perfetto import (
    CPU_PID,
    CPU_TID_BASE,
    TASK_PID,
    build_trace,
    kernel_records,
    write_trace,
)

from .conftest import example

CPU0 = (CPU_PID, CPU_TID_BASE)


def irq_chain(k: Kernel, events: str = "irq workqueue") -> dict[str, Any]:
    """One IRQ -> tasklet -> work chain of examples/irq_driver.py, exported."""
    k.insmod(example("irq_driver.py"), fires=0)
    k.write("/sys/kernel/tracing/set_event", events)
    k.raise_irq(17)
    k.run_until_idle()
    return build_trace(kernel_records(k), ncpus=k.ncpus)


def slices(trace: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(track, name, ts, dur, flow) of every complete event, in file order."""
    out = []
    for ev in trace["traceEvents"]:
        if ev["ph"] == "X":
            flow = ("out" if ev.get("flow_out") else "in", ev["bind_id"]) if "bind_id" in ev else None
            out.append(((ev["pid"], ev["tid"]), ev["name"], ev["ts"], ev["dur"], flow))
    return out


def names(trace: dict[str, Any]) -> dict[tuple[int, int], str]:
    return {(ev["pid"], ev["tid"]): ev["args"]["name"] for ev in trace["traceEvents"]
            if ev["ph"] == "M" and ev["name"] == "thread_name"}


def test_irq_chain_slices_and_flows(sim: Kernel) -> None:
    """The chain is a hard-IRQ slice, a TASKLET softirq holding the tasklet, a work slice on
    its kworker, with arrows schedule -> tasklet, raise -> softirq, queue_work -> work."""
    trace = irq_chain(sim)
    kworker = (TASK_PID, 5)
    assert names(trace) == {CPU0: "CPU 0", (CPU_PID, CPU_TID_BASE + 1): "CPU 1",
                            kworker: "kworker/0:0"}
    assert slices(trace) == [
        (CPU0, "irq 17: my_device", 0.0, 0.0, None),
        (CPU0, "tasklet_schedule my_tasklet_func [irq_driver]", 0.0, 0, ("out", 1)),
        (CPU0, "raise_softirq TASKLET", 0.0, 0, ("out", 2)),
        (CPU0, "softirq TASKLET", 0.0, 0.0, ("in", 2)),
        (CPU0, "tasklet my_tasklet_func [irq_driver]", 0.0, 0.0, ("in", 1)),
        (CPU0, "queue_work my_work_func [irq_driver]", 0.0, 0, ("out", 3)),
        (kworker, "work my_work_func [irq_driver]", 0.0, 16000.0, ("in", 3)),
        (CPU0, "raise_softirq TIMER", 16000.0, 0, ("out", 4)),
        (CPU0, "softirq TIMER", 16000.0, 0.0, ("in", 4)),
    ]
    work = next(ev for ev in trace["traceEvents"] if ev["name"].startswith("work "))
    assert work["args"]["workqueue"] == "irq_driver_wq"
    assert work["args"]["comm"] == "kworker/0:0"
    irq = next(ev for ev in trace["traceEvents"] if ev["name"].startswith("irq 17"))
    assert irq["args"]["ret"] == "handled"
    assert trace["otherData"]["flows"] == 4


def test_every_flow_has_one_start_and_one_end(sim: Kernel) -> None:
    """Over many chains, each bind_id is one flow_out and one flow_in, the end not before the start."""
    sim.insmod(example("irq_driver.py"), fires=20)
    sim.write("/sys/kernel/tracing/set_event", "irq workqueue")
    sim.run_for(600)
    trace = build_trace(kernel_records(sim), ncpus=2)
    ends: dict[int, list[tuple[str, float]]] = {}
    for ev in trace["traceEvents"]:
        if "bind_id" in ev:
            ends.setdefault(ev["bind_id"], []).append(("out" if ev.get("flow_out") else "in",
                                                       ev["ts"]))
    kinds = Counter(ev["name"].split()[0] for ev in trace["traceEvents"] if ev.get("flow_in"))
    assert kinds == {"tasklet": 20, "work": 20, "softirq": kinds["softirq"]}
    for flow in ends.values():
        assert sorted(k for k, _ in flow) == ["in", "out"]
        start = next(ts for k, ts in flow if k == "out")
        assert next(ts for k, ts in flow if k == "in") >= start


def test_slices_nest_on_each_track(sim: Kernel) -> None:
    """On every track, two slices are either disjoint or one contains the other."""
    sim.insmod(example("irq_driver.py"), fires=10)
    sim.write("/sys/kernel/tracing/set_event", "*:*")
    sim.run_for(300)
    by_track: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for ev in build_trace(kernel_records(sim))["traceEvents"]:
        if ev["ph"] == "X":
            by_track.setdefault((ev["pid"], ev["tid"]), []).append((ev["ts"], ev["ts"] + ev["dur"]))
    for spans in by_track.values():
        for a0, a1 in spans:
            for b0, b1 in spans:
                assert a1 <= b0 or b1 <= a0 or (a0 <= b0 and b1 <= a1) or (b0 <= a0 and a1 <= b1)


def test_coalesced_raises_draw_one_arrow() -> None:
    """Raises while the vector is already pending coalesce: only the first gets the arrow."""
    recs = [
        {"seq": 1, "ts_ns": 1000, "cpu": 0, "comm": "insmod", "pid": 1000, "flags": "d....",
         "event": "softirq_raise", "args": {"vec": 6}},
        {"seq": 2, "ts_ns": 2000, "cpu": 0, "comm": "insmod", "pid": 1000, "flags": "d....",
         "event": "softirq_raise", "args": {"vec": 6}},
        {"seq": 3, "ts_ns": 3000, "cpu": 0, "comm": "ksoftirqd/0", "pid": 3, "flags": "..s..",
         "event": "softirq_entry", "args": {"vec": 6}},
        {"seq": 4, "ts_ns": 4000, "cpu": 0, "comm": "ksoftirqd/0", "pid": 3, "flags": "..s..",
         "event": "softirq_exit", "args": {"vec": 6}},
    ]
    trace = build_trace(recs)
    assert slices(trace) == [
        ((TASK_PID, 1000), "raise_softirq TASKLET", 1.0, 0, ("out", 1)),
        ((TASK_PID, 1000), "raise_softirq TASKLET", 2.0, 0, None),
        (CPU0, "softirq TASKLET", 3.0, 1.0, ("in", 1)),
    ]


def test_slices_cut_by_the_trace_edges() -> None:
    """An exit without its entry starts at the trace's start; an entry without exit ends at its end."""
    recs = [
        {"seq": 1, "ts_ns": 5000, "cpu": 1, "comm": "<idle>", "pid": 0, "flags": "..s1.",
         "event": "tasklet_exit", "args": {"tasklet": "t1", "function": "f"}},
        {"seq": 2, "ts_ns": 7000, "cpu": 1, "comm": "kworker/1:1", "pid": 9, "flags": ".....",
         "event": "workqueue_execute_start", "args": {"work": "w1", "function": "g"}},
        {"seq": 3, "ts_ns": 9500, "cpu": 0, "comm": "<idle>", "pid": 0, "flags": "d.h1.",
         "event": "irq_handler_entry", "args": {"irq": 3, "name": "dev"}},
        {"seq": 4, "ts_ns": 9500, "cpu": 0, "comm": "<idle>", "pid": 0, "flags": "d.h1.",
         "event": "irq_handler_exit", "args": {"irq": 3, "ret": "unhandled"}},
    ]
    trace = build_trace(recs)
    assert slices(trace) == [
        ((CPU_PID, CPU_TID_BASE + 1), "tasklet f", 5.0, 0.0, None),
        ((TASK_PID, 9), "work g", 7.0, 2.5, None),
        (CPU0, "irq 3: dev", 9.5, 0.0, None),
    ]
    notes = {ev["name"]: ev["args"].get("note") for ev in trace["traceEvents"] if ev["ph"] == "X"}
    assert notes == {"tasklet f": "began before the trace",
                     "work g": "still running when the trace ended", "irq 3: dev": None}


def test_internal_events_stay_out_of_the_trace_file(sim: Kernel) -> None:
    """tasklet_schedule is recorded for the export only: trace shows it nowhere, nor counts it."""
    irq_chain(sim)
    text = sim.read("/sys/kernel/tracing/trace")
    assert "tasklet_schedule" not in text
    assert "# entries-in-buffer/entries-written: 14/14   #P:2" in text
    events = [r["event"] for r in kernel_records(sim)]
    assert events.count("tasklet_schedule") == 1 and len(events) == 15


def test_no_internal_events_without_tasklet_tracing(sim: Kernel) -> None:
    """With irq:tasklet_entry off there are no internal events, hence no tasklet arrows."""
    trace = irq_chain(sim, events="workqueue")
    assert [r["event"] for r in kernel_records(sim)] == [
        "workqueue_queue_work", "workqueue_activate_work", "workqueue_execute_start",
        "workqueue_execute_end"]
    assert [s[1] for s in slices(trace)] == ["queue_work my_work_func [irq_driver]",
                                             "work my_work_func [irq_driver]"]


def test_written_json_is_the_trace(sim: Kernel) -> None:
    """write_trace writes valid JSON equal to the trace, reporting progress up to the total."""
    trace = irq_chain(sim)
    out = io.StringIO()
    seen: list[tuple[int, int]] = []
    write_trace(out, trace, lambda done, total: seen.append((done, total)))
    assert json.loads(out.getvalue()) == json.loads(json.dumps(trace))
    total = len(trace["traceEvents"])
    assert seen[-1] == (total, total) and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_export_is_deterministic_on_sim() -> None:
    """The same seed gives the same export, byte for byte."""
    def run() -> str:
        with Kernel(cpus=2, engine="sim", seed=5) as k:
            k.insmod(example("irq_driver.py"), fires=5)
            k.write("/sys/kernel/tracing/set_event", "*:*")
            k.run_for(200)
            return json.dumps(build_trace(kernel_records(k), ncpus=2))

    assert run() == run()
