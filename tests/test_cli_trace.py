"""bh trace record/show/export as real subprocesses: the IRQ -> tasklet -> work chain of
examples/irq_driver.py in Linux's trace layout, line by line, and its Perfetto export."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile

import pytest

from .conftest import TRACE_HEADER
from .daemons import Booted, one_error_line

HEADER = TRACE_HEADER.format(n=14)

# kernel/trace/trace_output.c: "%16s-%-7d [%03d] " + 5 flag columns + " %5lu.%06lu: "
LINE = re.compile(r"^(?P<comm>[ -~]{16})-(?P<pid>\d+) *\[(?P<cpu>\d{3})\] "
                  r"(?P<flags>[.dbDX][.Nnp][.hHsZz][.\da-f][.\da-f]) +"
                  r"(?P<ts>\d+\.\d{6}): (?P<event>\w+): (?P<fields>.*)$")
SOFTIRQS = "HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU".split()
PTR = "[0-9a-f]{16}"
SYM = r"\w+ \[irq_driver\]"
# the TP_printk of each event (include/trace/events/irq.h, workqueue.h)
FIELDS = {
    "irq_handler_entry": r"irq=17 name=my_device",
    "irq_handler_exit": r"irq=17 ret=handled",
    "softirq_raise": r"vec=(\d) \[action=(\w+)\]",
    "softirq_entry": r"vec=(\d) \[action=(\w+)\]",
    "softirq_exit": r"vec=(\d) \[action=(\w+)\]",
    "tasklet_entry": r"tasklet=my_tasklet \[irq_driver\] function=my_tasklet_func \[irq_driver\]",
    "tasklet_exit": r"tasklet=my_tasklet \[irq_driver\] function=my_tasklet_func \[irq_driver\]",
    "workqueue_queue_work": rf"work struct={PTR} function={SYM} workqueue=irq_driver_wq "
                            r"req_cpu=8192 cpu=0",
    "workqueue_activate_work": rf"work struct {PTR} function={SYM} ",
    "workqueue_execute_start": rf"work struct {PTR}: function {SYM}",
    "workqueue_execute_end": rf"work struct {PTR}: function {SYM}",
}
# (task, event, softirq vector, hardirq/softirq flag column, timestamp)
CHAIN = [
    ("<idle>-0", "irq_handler_entry", None, "h", "0.000000"),
    ("<idle>-0", "softirq_raise", "TASKLET", "h", "0.000000"),
    ("<idle>-0", "irq_handler_exit", None, "h", "0.000000"),
    ("<idle>-0", "softirq_entry", "TASKLET", "s", "0.000000"),
    ("<idle>-0", "tasklet_entry", None, "s", "0.000000"),
    ("<idle>-0", "workqueue_queue_work", None, "s", "0.000000"),
    ("<idle>-0", "workqueue_activate_work", None, "s", "0.000000"),
    ("<idle>-0", "tasklet_exit", None, "s", "0.000000"),
    ("<idle>-0", "softirq_exit", "TASKLET", "s", "0.000000"),
    ("kworker/0:0-5", "workqueue_execute_start", None, ".", "0.000000"),
    ("<idle>-0", "softirq_raise", "TIMER", "h", "0.016000"),  # msleep(5)'s timer
    ("<idle>-0", "softirq_entry", "TIMER", "s", "0.016000"),
    ("<idle>-0", "softirq_exit", "TIMER", "s", "0.016000"),
    ("kworker/0:0-5", "workqueue_execute_end", None, ".", "0.016000"),
]


@pytest.fixture
def chain(frozen: Booted) -> Booted:
    """A frozen kernel with irq_driver loaded and one IRQ 17 chain recorded."""
    frozen.ok("insmod", "examples/irq_driver.py", "fires=0")
    r = frozen.bh("trace", "record", "-e", "irq", "-e", "workqueue", "--", "bh", "irq", "17")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("bh: recorded 14 events (see them: bh trace show; for Perfetto: "
                        "bh trace export --perfetto trace.json)\n")
    return frozen


def test_irq_chain_in_linux_trace_layout(chain: Booted) -> None:
    """Every line has trace_output.c's columns and its event's TP_printk fields, in chain order."""
    text = chain.ok("trace", "show")
    assert text.startswith(HEADER)
    lines = text[len(HEADER):].splitlines()
    assert len(lines) == len(CHAIN)
    for line, (task, event, vec, ctx, ts) in zip(lines, CHAIN, strict=True):
        m = LINE.match(line)
        assert m, line
        assert f"{m['comm'].strip()}-{m['pid']}" == task and m["comm"].endswith(task.split("-")[0])
        assert line[17:25] == f"{task.split('-')[1]:<7} ", line  # pid left-aligned in 7
        assert (m["cpu"], m["event"], m["ts"]) == ("000", event, ts), line
        f = re.fullmatch(FIELDS[event], m["fields"])
        assert f, line
        if vec is not None:
            assert (int(f[1]), f[2]) == (SOFTIRQS.index(vec), vec)
        flags = m["flags"]
        assert flags[2] == ctx, line
        if ctx == "h":
            assert flags[0] == "d", line  # hard IRQs run with interrupts off
        if task.startswith("kworker"):
            assert flags == ".....", line


def test_record_restores_the_tracing_controls(chain: Booted) -> None:
    """After recording, set_event and tracing_on are as they were; the buffer keeps the events."""
    assert chain.ok("cat", "/sys/kernel/tracing/set_event") == ""
    assert chain.ok("cat", "/sys/kernel/tracing/tracing_on") == "1\n"
    chain.ok("irq", "17")
    assert chain.ok("trace", "show").count("irq_handler_entry") == 1


def test_perfetto_export_of_the_chain(chain: Booted) -> None:
    """The export is valid JSON trace events with the chain's slices and its three arrows."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "chain.json")
        r = chain.bh("trace", "export", "--perfetto", out)
        assert r.returncode == 0, r.stderr
        assert r.stderr == (f"bh: wrote 15 records as 20 events (9 slices, 4 flows) to {out}; "
                            "open it in https://ui.perfetto.dev or chrome://tracing\n")
        with open(out) as f:
            trace = json.load(f)
    events = trace["traceEvents"]
    assert all(ev["ph"] in "MXi" and isinstance(ev["pid"], int) and isinstance(ev["tid"], int)
               for ev in events)
    tracks = {(ev["pid"], ev["tid"]): ev["args"]["name"] for ev in events
              if ev["ph"] == "M" and ev["name"] == "thread_name"}
    assert sorted(tracks.values()) == ["CPU 0", "CPU 1", "kworker/0:0"]
    xs = [ev for ev in events if ev["ph"] == "X"]
    assert [(tracks[(ev["pid"], ev["tid"])], ev["name"]) for ev in xs] == [
        ("CPU 0", "irq 17: my_device"),
        ("CPU 0", "tasklet_schedule my_tasklet_func [irq_driver]"),
        ("CPU 0", "raise_softirq TASKLET"),
        ("CPU 0", "softirq TASKLET"),
        ("CPU 0", "tasklet my_tasklet_func [irq_driver]"),
        ("CPU 0", "queue_work my_work_func [irq_driver]"),
        ("kworker/0:0", "work my_work_func [irq_driver]"),
        ("CPU 0", "raise_softirq TIMER"),
        ("CPU 0", "softirq TIMER"),
    ]
    flows: dict[int, dict[str, str]] = {}
    for ev in xs:
        if "bind_id" in ev:
            flows.setdefault(ev["bind_id"], {})["out" if ev.get("flow_out") else "in"] = ev["name"]
    assert sorted((f["out"], f["in"]) for f in flows.values()) == [
        ("queue_work my_work_func [irq_driver]", "work my_work_func [irq_driver]"),
        ("raise_softirq TASKLET", "softirq TASKLET"),
        ("raise_softirq TIMER", "softirq TIMER"),
        ("tasklet_schedule my_tasklet_func [irq_driver]", "tasklet my_tasklet_func [irq_driver]"),
    ]
    work = next(ev for ev in xs if ev["name"].startswith("work "))
    assert (work["ts"], work["dur"]) == (0.0, 16000.0)


def test_export_to_stdout_and_into_a_pipe(chain: Booted) -> None:
    """--perfetto - writes the JSON to stdout; a reader that stops early is no error."""
    r = chain.bh("trace", "export", "--perfetto", "-")
    assert r.returncode == 0 and r.stderr == ""
    assert len(json.loads(r.stdout)["traceEvents"]) == 20
    env = dict(os.environ, BH_NAME=chain.name)
    p = subprocess.run(f"{sys.executable} -m bottomhalf.cli trace export --perfetto - | head -c 10",
                       shell=True, capture_output=True, text=True, env=env, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
    assert p.stdout == '{"traceEve' and p.stderr == ""


def test_record_for_a_time_without_command(frozen: Booted) -> None:
    """Without a COMMAND, --for MS records that much kernel time (here, a periodic device)."""
    k = frozen
    k.ok("devices", "--add", "tick=periodic:irq=30,period=10")
    module = os.path.join(k.runtime, "tick_irq.py")
    with open(module, "w") as f:
        f.write("from bottomhalf.linux import *\n"
                "def h(irq, dev):\n    return IRQ_HANDLED\n"
                "def tick_irq_init():\n    return request_irq(bh_device('tick').irq, h, 0, 'tick', None)\n"
                "def tick_irq_exit():\n    free_irq(bh_device('tick').irq, None)\n"
                "module_init(tick_irq_init)\nmodule_exit(tick_irq_exit)\nMODULE_LICENSE('GPL')\n")
    k.ok("insmod", module)
    r = k.bh("trace", "record", "-e", "irq:irq_handler_entry", "--for", "50")
    assert r.returncode == 0, r.stderr
    lines = [line for line in k.ok("trace", "show").splitlines() if not line.startswith("#")]
    assert [line.split(": ", 1)[1] for line in lines] == ["irq_handler_entry: irq=30 name=tick"] * 5


def test_record_passes_on_the_command_status(frozen: Booted) -> None:
    """trace record exits with its command's status; a command that does not exist is an error."""
    assert frozen.bh("trace", "record", "--", "false").returncode == 1
    assert one_error_line(frozen.bh("trace", "record", "--", "no-such-command-bh")) == \
        "bh: error: no-such-command-bh: command not found"


@pytest.mark.parametrize("args, message", [
    (["record", "-e", "irq:nope", "--", "true"],
     "bh: error: no event 'irq:nope' (see: bh cat /sys/kernel/tracing/available_events)"),
    (["record", "--for", "10", "--", "true"],
     "bh: error: --for is for recording without a COMMAND; with one, the recording lasts as "
     "long as the command (and --settle)"),
    (["export", "--perfetto", "out.json"],
     "bh: error: the trace buffer is empty: record something first (bh trace record -- COMMAND)"),
])
def test_trace_errors(frozen: Booted, args: list[str], message: str) -> None:
    """Each bad trace request is one error line; nothing is left enabled."""
    assert one_error_line(frozen.bh("trace", *args)) == message
    assert frozen.ok("cat", "/sys/kernel/tracing/set_event") == ""


def test_export_to_an_unwritable_file(chain: Booted) -> None:
    """A file that cannot be written is one error line naming it."""
    assert one_error_line(chain.bh("trace", "export", "--perfetto", "/nonexistent/out.json")) == \
        "bh: error: /nonexistent/out.json: No such file or directory"


def test_show_follow_reads_trace_pipe(chain: Booted) -> None:
    """trace show -f prints trace_pipe's lines as they come (and consumes them)."""
    with chain.follow("trace", "show", "-f") as out:
        assert out.line().endswith(": irq_handler_entry: irq=17 name=my_device\n")
        for _ in range(13):
            out.line()
        chain.ok("write", "/sys/kernel/tracing/set_event", "irq:irq_handler_exit")
        chain.ok("irq", "17")
        assert out.line().endswith(": irq_handler_exit: irq=17 ret=handled\n")


def test_record_until_interrupted(chain: Booted) -> None:
    """Without COMMAND or --for, record runs until Ctrl-C, then restores the controls."""
    env = dict(os.environ, BH_NAME=chain.name)
    proc = subprocess.Popen([sys.executable, "-m", "bottomhalf.cli", "trace", "record", "-e",
                             "irq:irq_handler_entry"], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.stderr is not None
    assert proc.stderr.readline() == "bh: recording; press Ctrl-C to stop\n"
    chain.ok("irq", "17")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read().startswith("bh: recorded 1 event (")
    assert chain.ok("trace", "show").splitlines()[-1].endswith(
        ": irq_handler_entry: irq=17 name=my_device")
    assert chain.ok("cat", "/sys/kernel/tracing/set_event") == ""
