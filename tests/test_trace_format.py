"""The irq:* tracepoints and the trace file match Linux byte for byte (reference §8)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bottomhalf import Kernel
from bottomhalf import trace as trace_mod
from bottomhalf.context import ExecCtx
from bottomhalf.errors import KernelFileError
from bottomhalf.linux import (
    BLOCK_SOFTIRQ,
    INIT_WORK,
    IRQ_HANDLED,
    IRQ_NONE,
    IRQ_WAKE_THREAD,
    NET_RX_SOFTIRQ,
    current,
    local_bh_disable,
    local_bh_enable,
    mdelay,
    ndelay,
    raise_softirq,
    request_irq,
    request_threaded_irq,
    schedule_work_on,
    spin_lock,
    spin_lock_bh,
    spin_lock_init,
    spin_unlock,
    spin_unlock_bh,
    spinlock_t,
    tasklet_schedule,
    tasklet_setup,
    tasklet_struct,
    work_struct,
)
from bottomhalf.trace_events import EVENTS

from .conftest import TRACE_HEADER, example

TRACE = "/sys/kernel/tracing/trace"
LINE = re.compile(r"(?P<task>.{16}-\d+ *) \[(?P<cpu>\d{3})\] (?P<flags>[.dDbX][.Nnp][.hsHzZ]"
                  r"[.0-9a-f][.0-9a-f]) +(?P<secs>\d+)\.(?P<usecs>\d{6}): (?P<event>.*)")


def body(k: Kernel) -> list[str]:
    return [line for line in k.read(TRACE).splitlines() if not line.startswith("#")]


def untimed(k: Kernel) -> list[str]:
    """Trace lines with the timestamp blanked, after checking each line's layout."""
    out = []
    stamps = []
    for line in body(k):
        m = LINE.fullmatch(line)
        assert m, line
        stamps.append(int(m["secs"]) * 1_000_000 + int(m["usecs"]))
        out.append(line[:m.end("flags")] + " <ts>" + line[m.end("usecs"):])
    assert stamps == sorted(stamps)
    return out


def block_device_irq(k: Kernel) -> None:
    """IRQ 36 raises BLOCK_SOFTIRQ under a spinlock, like the reference's virtio capture."""
    lock = spinlock_t()
    spin_lock_init(lock)

    def h(irq: int, dev: Any) -> int:
        spin_lock(lock)
        raise_softirq(BLOCK_SOFTIRQ)
        spin_unlock(lock)
        return IRQ_HANDLED

    assert k.call(request_irq, 36, h, 0, "virtio1-req.0", "d") == 0
    k.write("/sys/kernel/tracing/set_event", "irq:*")


def test_hard_irq_softirq_chain_exact_on_sim(sim: Kernel) -> None:
    """The whole trace file of an interrupt raising a softirq, as in the reference capture."""
    block_device_irq(sim)
    sim.run_for(294_646.269)
    sim.raise_irq(36, cpu=1)
    assert sim.read(TRACE) == TRACE_HEADER.format(n=5) + (
        "          <idle>-0       [001] d.h1.   294.646269: irq_handler_entry: irq=36 name=virtio1-req.0\n"
        "          <idle>-0       [001] d.h2.   294.646269: softirq_raise: vec=4 [action=BLOCK]\n"
        "          <idle>-0       [001] d.h1.   294.646269: irq_handler_exit: irq=36 ret=handled\n"
        "          <idle>-0       [001] ..s1.   294.646269: softirq_entry: vec=4 [action=BLOCK]\n"
        "          <idle>-0       [001] ..s1.   294.646269: softirq_exit: vec=4 [action=BLOCK]\n"
    )


def test_hard_irq_softirq_chain_on_both_engines(kernel: Kernel) -> None:
    """Same events, tasks and flags on real; timestamps non-decreasing."""
    block_device_irq(kernel)
    kernel.raise_irq(36, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert untimed(kernel) == [
        "          <idle>-0       [001] d.h1. <ts>: irq_handler_entry: irq=36 name=virtio1-req.0",
        "          <idle>-0       [001] d.h2. <ts>: softirq_raise: vec=4 [action=BLOCK]",
        "          <idle>-0       [001] d.h1. <ts>: irq_handler_exit: irq=36 ret=handled",
        "          <idle>-0       [001] ..s1. <ts>: softirq_entry: vec=4 [action=BLOCK]",
        "          <idle>-0       [001] ..s1. <ts>: softirq_exit: vec=4 [action=BLOCK]",
    ]


def test_irq_handler_exit_ret_text(kernel: Kernel) -> None:
    """ret=%s is "handled" for any nonzero result (IRQ_WAKE_THREAD too), else "unhandled"."""
    results = iter([IRQ_NONE, IRQ_HANDLED, IRQ_WAKE_THREAD])

    def h(irq: int, dev: Any) -> int:
        return next(results)

    kernel.call(request_threaded_irq, 17, h, lambda i, d: IRQ_HANDLED, 0, "mydev", "d")
    kernel.write("/sys/kernel/tracing/set_event", "irq:irq_handler_exit")
    for _ in range(3):
        kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert [line.split(": ", 1)[1] for line in body(kernel)] == [
        "irq_handler_exit: irq=17 ret=unhandled",
        "irq_handler_exit: irq=17 ret=handled",
        "irq_handler_exit: irq=17 ret=handled",
    ]


def test_process_context_raise_and_ksoftirqd_flags(kernel: Kernel) -> None:
    """A raise from a task has IRQs off (d....); ksoftirqd serves it (..s..)."""
    t = tasklet_struct()
    tasklet_setup(t, lambda tl: None)
    kernel.write("/sys/kernel/tracing/set_event", "irq:softirq_raise irq:softirq_entry")

    def schedule() -> int:
        tasklet_schedule(t)
        return int(current.pid)

    pid = kernel.call(schedule)
    kernel.run_until_idle(timeout_ms=5000)
    ksoftirqd = kernel.sched.find("ksoftirqd/0")[0]
    assert untimed(kernel) == [
        f"{'python3':>16s}-{pid:<7d} [000] d.... <ts>: softirq_raise: vec=6 [action=TASKLET]",
        f"{'ksoftirqd/0':>16s}-{ksoftirqd.pid:<7d} [000] ..s.. <ts>: "
        "softirq_entry: vec=6 [action=TASKLET]",
    ]


def test_bh_disabled_flags(kernel: Kernel) -> None:
    """Raised with BH and IRQs off the flag is D; with a spinlock too, depth 1; softirqs
    run from local_bh_enable keep one preempt count (..s1.)."""
    lock = spinlock_t()
    spin_lock_init(lock)
    t = tasklet_struct()
    tasklet_setup(t, lambda tl: None)
    kernel.write("/sys/kernel/tracing/set_event", "irq:softirq_raise irq:softirq_entry")

    def body_fn() -> None:
        local_bh_disable()
        tasklet_schedule(t)
        local_bh_enable()
        spin_lock_bh(lock)
        raise_softirq(NET_RX_SOFTIRQ)
        spin_unlock_bh(lock)

    kernel.call(body_fn)
    flags = [(line.split()[2], line.split(": ", 1)[1]) for line in body(kernel)]
    assert flags == [
        ("D....", "softirq_raise: vec=6 [action=TASKLET]"),
        ("..s1.", "softirq_entry: vec=6 [action=TASKLET]"),
        ("D..1.", "softirq_raise: vec=3 [action=NET_RX]"),
        ("..s1.", "softirq_entry: vec=3 [action=NET_RX]"),
    ]


def test_hard_irq_inside_softirq_shows_H(sim: Kernel) -> None:
    """An interrupt taken while a softirq runs on that CPU is marked H."""
    t = tasklet_struct()
    tasklet_setup(t, lambda tl: mdelay(1))

    def h17(irq: int, dev: Any) -> int:
        tasklet_schedule(t)
        return IRQ_HANDLED

    sim.call(request_irq, 17, h17, 0, "first", "a")
    sim.call(request_irq, 18, lambda i, d: IRQ_HANDLED, 0, "second", "b")
    sim.write("/sys/kernel/tracing/set_event", "irq:irq_handler_entry irq:tasklet_exit")
    sim.raise_irq(17)
    sim.run_for(0.5)
    sim.raise_irq(18)
    sim.run_until_idle()
    assert [line.split(None, 4)[2:] for line in body(sim)] == [
        ["d.h1.", "0.000000:", "irq_handler_entry: irq=17 name=first"],
        ["d.H1.", "0.000500:", "irq_handler_entry: irq=18 name=second"],
        ["..s1.", "0.001000:", "tasklet_exit: tasklet=0xffff888100000040 function=<lambda>"],
    ]


def test_need_resched_flag_after_waking_a_task_on_an_idle_cpu(sim: Kernel) -> None:
    """Queueing work from a softirq on an idle CPU sets need-resched (N) from then on,
    as in the reference capture; the woken kworker's own lines are clear."""
    w = work_struct()
    INIT_WORK(w, lambda work: None)
    t = tasklet_struct()
    tasklet_setup(t, lambda tl: schedule_work_on(1, w))

    def h(irq: int, dev: Any) -> int:
        tasklet_schedule(t)
        return IRQ_HANDLED

    sim.call(request_irq, 17, h, 0, "mydev", "d")
    sim.write("/sys/kernel/tracing/set_event", "irq:softirq_entry irq:softirq_exit "
                                               "workqueue:workqueue_execute_start")
    sim.raise_irq(17, cpu=1)
    sim.run_until_idle()
    lines = body(sim)
    assert [line.split()[2] for line in lines] == ["..s1.", ".Ns1.", "....."]
    assert lines[2].lstrip().startswith("kworker/1:")


def test_timestamps_round_to_the_nearest_microsecond(sim: Kernel) -> None:
    """The trace prints ns2usecs(ts): 1499 ns shows as 0.000001, 1500 ns as 0.000002."""
    sim.write("/sys/kernel/tracing/set_event", "irq:softirq_raise")

    def body_fn() -> None:
        ndelay(1499)
        raise_softirq(NET_RX_SOFTIRQ)
        ndelay(1)
        raise_softirq(NET_RX_SOFTIRQ)

    sim.call(body_fn)
    assert [line.split()[3] for line in body(sim)] == ["0.000001:", "0.000002:"]


def test_header_and_entry_counts(kernel: Kernel) -> None:
    """The header block of the trace file; clearing it resets both counts."""
    block_device_irq(kernel)
    kernel.raise_irq(36)
    kernel.run_until_idle(timeout_ms=5000)
    assert kernel.read(TRACE).startswith(TRACE_HEADER.format(n=5))
    kernel.write(TRACE, "")
    assert kernel.read(TRACE) == TRACE_HEADER.format(n=0)


def test_tasklet_events_name_module_symbols(sim: Kernel) -> None:
    """tasklet=%ps function=%ps print the module's symbols with [module]."""
    sim.write("/sys/kernel/tracing/set_event", "irq:tasklet_entry")
    sim.insmod(example("tasklet_driver.py"))
    sim.run_until_idle()
    assert body(sim) == [
        "     ksoftirqd/0-3       [000] ..s..     0.000000: tasklet_entry: "
        "tasklet=my_tasklet [tasklet_driver] function=my_tasklet_func [tasklet_driver]",
    ]


@pytest.mark.parametrize("preempt_count, irqs_off, flags", [
    (0x00000, False, "....."),
    (0x00000, True, "d...."),
    (0x00200, False, "b...."),
    (0x00200, True, "D...."),
    (0x00201, True, "D..1."),
    (0x00100, False, "..s.."),
    (0x00101, False, "..s1."),
    (0x10001, True, "d.h1."),
    (0x10101, True, "d.H1."),
    (0x10301, True, "D.H1."),
    (0x0000e, False, "...e."),
    (0x0001f, False, "...f."),
])
def test_flag_columns(sim: Kernel, preempt_count: int, irqs_off: bool, flags: str) -> None:
    """Each preempt_count/IRQ state prints the columns trace_output.c prints (depth capped at f)."""
    sim.run_until_idle()  # the boot's kthreads have run: need-resched is clear
    ctx = ExecCtx(sim, sim.sched.find("ksoftirqd/1")[0], 1, preempt_count)
    ctx.irqs_off = irqs_off
    assert sim.trace.context_flags(ctx) == flags


def test_softirq_format_file_lists_every_vector(sim: Kernel) -> None:
    """events/irq/softirq_entry/format: show_softirq_name() expanded, as Linux prints it."""
    text = sim.read("/sys/kernel/tracing/events/irq/softirq_entry/format")
    assert text.startswith("name: softirq_entry\n")
    assert "\tfield:unsigned int vec;\toffset:8;\tsize:4;\tsigned:0;\n" in text
    assert text.endswith(
        'print fmt: "vec=%u [action=%s]", REC->vec, __print_symbolic(REC->vec, { 0, "HI" }, '
        '{ 1, "TIMER" }, { 2, "NET_TX" }, { 3, "NET_RX" }, { 4, "BLOCK" }, { 5, "IRQ_POLL" }, '
        '{ 6, "TASKLET" }, { 7, "SCHED" }, { 8, "HRTIMER" }, { 9, "RCU" })\n')


TRACING_ON = "/sys/kernel/tracing/tracing_on"


def test_tracing_on_0_stops_recording_and_any_nonzero_resumes(sim: Kernel) -> None:
    """rb_simple_write(): base 10, 0 is off, every other value is on; events in between are lost."""
    block_device_irq(sim)
    sim.write(TRACING_ON, "0\n")
    assert sim.read(TRACING_ON) == "0\n"
    sim.raise_irq(36, cpu=1)
    assert body(sim) == []
    sim.write(TRACING_ON, "2\n")
    assert sim.read(TRACING_ON) == "1\n"
    sim.raise_irq(36, cpu=1)
    assert len(body(sim)) == 5
    sim.write(TRACING_ON, "0")
    sim.write(TRACING_ON, "010")  # decimal ten, not octal eight: on all the same
    assert sim.read(TRACING_ON) == "1\n"


@pytest.mark.parametrize("text", ["0x1", "on", "", "-1", "1 2"])
def test_tracing_on_refuses_what_is_not_a_decimal_number(sim: Kernel, text: str) -> None:
    """kstrtoul base 10: hex, words and signs are EINVAL; tracing stays as it was."""
    with pytest.raises(KernelFileError) as info:
        sim.write(TRACING_ON, text)
    assert info.value.errno == 22
    assert sim.read(TRACING_ON) == "1\n"


PIPE = "/sys/kernel/tracing/trace_pipe"


@pytest.fixture
def small_buffer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kernel]:
    """A sim kernel whose trace buffer holds 4 records."""
    monkeypatch.setattr(trace_mod, "TRACE_BUF_ENTRIES", 4)
    with Kernel(cpus=2, engine="sim", seed=0) as k:
        k.write("/sys/kernel/tracing/set_event", "irq:softirq_raise")
        yield k


def raise_vectors(k: Kernel, *vecs: int) -> None:
    def body_fn() -> None:
        for v in vecs:
            raise_softirq(v)

    k.call(body_fn)


def vectors(text: str) -> list[int]:
    return [int(line.split("vec=")[1].split()[0]) for line in text.splitlines()
            if not line.startswith("#")]


def entries_line(k: Kernel) -> str:
    return k.read(TRACE).splitlines()[2]


def test_full_buffer_keeps_the_newest_records(small_buffer: Kernel) -> None:
    """In overwrite mode the oldest records go: the buffer holds the newest 4 of 9."""
    raise_vectors(small_buffer, *range(9))
    assert vectors(small_buffer.read(TRACE)) == [5, 6, 7, 8]


def test_header_counts_right_after_overflow(small_buffer: Kernel) -> None:
    """entries-in-buffer/entries-written: what the buffer holds / all ever written."""
    raise_vectors(small_buffer, 0, 1, 2, 3)
    assert entries_line(small_buffer) == "# entries-in-buffer/entries-written: 4/4   #P:2"
    raise_vectors(small_buffer, 4)
    assert entries_line(small_buffer) == "# entries-in-buffer/entries-written: 4/5   #P:2"
    raise_vectors(small_buffer, 5, 6, 7)
    assert entries_line(small_buffer) == "# entries-in-buffer/entries-written: 4/8   #P:2"


def test_trace_pipe_consumes_across_overflow(small_buffer: Kernel) -> None:
    """trace_pipe returns each kept record once: the unread ones that were overwritten are lost,
    the ones still in the buffer come next, then only what is new."""
    raise_vectors(small_buffer, 0, 1)
    assert vectors(small_buffer.read(PIPE)) == [0, 1]
    raise_vectors(small_buffer, 2, 3, 4, 5, 6, 7)
    assert vectors(small_buffer.read(PIPE)) == [4, 5, 6, 7]
    assert small_buffer.read(PIPE) == ""
    raise_vectors(small_buffer, 8)
    assert vectors(small_buffer.read(PIPE)) == [8]
    raise_vectors(small_buffer, 9, 0)
    assert vectors(small_buffer.read(PIPE)) == [9, 0]


def test_trace_pipe_read_is_gone_from_the_trace_file(small_buffer: Kernel) -> None:
    """Reading trace_pipe consumes: trace no longer shows those records and its header
    counts them as written but not in the buffer; what comes later shows again."""
    raise_vectors(small_buffer, 0, 1, 2)
    assert vectors(small_buffer.read(PIPE)) == [0, 1, 2]
    after = small_buffer.read(TRACE)
    assert "# entries-in-buffer/entries-written: 0/3 " in after
    assert vectors(after) == []
    raise_vectors(small_buffer, 3)
    after = small_buffer.read(TRACE)
    assert "# entries-in-buffer/entries-written: 1/4 " in after
    assert vectors(after) == [3]


def test_overwritten_records_take_older_internal_events_with_them(small_buffer: Kernel) -> None:
    """The export keeps only the internal events recorded after the oldest kept record."""
    small_buffer.write("/sys/kernel/tracing/set_event", "irq:softirq_raise irq:tasklet_entry")
    t = tasklet_struct()
    tasklet_setup(t, lambda tl: None)

    def body_fn() -> None:
        for _ in range(6):
            local_bh_disable()
            tasklet_schedule(t)  # internal tasklet_schedule, then softirq_raise
            local_bh_enable()  # tasklet_entry

    small_buffer.call(body_fn)
    assert [r.event for r in small_buffer.trace.export_records()] == [
        "softirq_raise", "tasklet_entry",
        "tasklet_schedule", "softirq_raise", "tasklet_entry"]


SET_EVENT = "/sys/kernel/tracing/set_event"
IRQ_EVENTS = ["irq_handler_entry", "irq_handler_exit", "softirq_raise", "softirq_entry",
              "softirq_exit", "tasklet_entry", "tasklet_exit"]
WQ_EVENTS = ["workqueue_queue_work", "workqueue_activate_work", "workqueue_execute_start",
             "workqueue_execute_end"]


@pytest.mark.parametrize("word, events", [
    ("irq:tasklet_entry", ["tasklet_entry"]),
    ("tasklet_entry", ["tasklet_entry"]),  # no ':': an event's name...
    ("workqueue", WQ_EVENTS),  # ... or a system's
    (":tasklet_entry", ["tasklet_entry"]),  # ':EVENT' and '*:EVENT': in any system
    ("*:tasklet_entry", ["tasklet_entry"]),
    ("irq:*", IRQ_EVENTS),  # 'SYSTEM:*' and 'SYSTEM:': the whole system
    ("irq:", IRQ_EVENTS),
    ("*:*", IRQ_EVENTS + WQ_EVENTS),
    (":", IRQ_EVENTS + WQ_EVENTS),
    ("*", IRQ_EVENTS + WQ_EVENTS),
    (":irq", None),  # after a ':' a system name is no event's name
    ("irq:workqueue_queue_work", None),
    ("workqueue:", WQ_EVENTS),
    ("nope", None),
    ("irq:nope", None),
    ("nope:*", None),
])
def test_set_event_words_as_ftrace_set_clr_event_splits_them(sim: Kernel, word: str,
                                                             events: list[str] | None) -> None:
    """set_event and `bh trace record -e` accept the same words and enable the same events."""
    from bottomhalf.cli.common import CliError
    from bottomhalf.cli.trace import resolve_events

    available = sim.read("/sys/kernel/tracing/available_events").split()
    if events is None:
        with pytest.raises(KernelFileError) as info:
            sim.write(SET_EVENT, word)
        assert info.value.errno == 22
        with pytest.raises(CliError, match="no event"):
            resolve_events([word], available)
    else:
        sim.write(SET_EVENT, word)
        assert sim.read(SET_EVENT).split() == [f"{EVENTS[e]}:{e}" for e in events]
        assert resolve_events([word], available) == [word]
