"""bh top as a real subprocess: wq_monitor.py's table and -j lines, softirq and IRQ rates."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bottomhalf.client import Client

from .daemons import Booted, one_error_line

WQ_HEADER = "                            total  infl  CPUtime CPUitsv CMW/RPR  mayday rescued"
WQ_KEYS = ["timestamp", "name", "unbound", "mem_reclaim", "started", "completed", "cpu_time",
           "cpu_intensive", "cm_wakeup", "repatriated", "mayday", "rescued"]


@pytest.fixture
def busy(frozen: Booted) -> Booted:
    """A frozen kernel after 1 s in which irq_driver's device fired three times."""
    frozen.ok("insmod", "examples/irq_driver.py", "fires=3")
    with Client(frozen.name) as c:
        c.call("run_for", ms=1000)
    return frozen


def test_top_once(busy: Booted) -> None:
    """-1: wq_monitor.py's round for the matching workqueues, then rates since boot."""
    assert busy.ok("top", "-1", "irq_driver") == (
        "\n"
        f"{WQ_HEADER}\n"
        "irq_driver_wq                   3     0      0.0       0       0       -       - \n"
        "\n"
        "softirqs/s            CPU0        CPU1\n"
        "           HI:         0.0         0.0\n"
        "        TIMER:         6.0         0.0\n"
        "       NET_TX:         0.0         0.0\n"
        "       NET_RX:         0.0         0.0\n"
        "        BLOCK:         0.0         0.0\n"
        "     IRQ_POLL:         0.0         0.0\n"
        "      TASKLET:         3.0         0.0\n"
        "        SCHED:         0.0         0.0\n"
        "      HRTIMER:         0.0         0.0\n"
        "          RCU:         0.0         0.0\n"
        "\n"
        "interrupts/s          CPU0        CPU1\n"
        "           17:         3.0         0.0  IO-APIC 17-edge my_device\n"
        "          LOC:         9.0         0.0  Local timer interrupts\n"
        "(rates per second of kernel time, since boot)\n")


def test_top_lists_every_workqueue_with_dashes(busy: Booted) -> None:
    """Without REGEX every workqueue has a row; '-' where a column does not apply."""
    rows = busy.ok("top", "-1").split("\n\n")[0].strip("\n").splitlines()
    assert rows[0] == WQ_HEADER
    by_name = {row[:24].strip(): row for row in rows[1:]}
    assert "irq_driver_wq" in by_name and "events_unbound" in by_name
    # unbound: no CPU-intensive count, RPR instead of CMW; no WQ_MEM_RECLAIM: no mayday/rescued
    assert by_name["events_unbound"][24:].split() == ["0", "0", "0.0", "-", "0", "-", "-"]


def test_top_json_lines(busy: Booted) -> None:
    """-j: wq_monitor.py -j's keys in its order per workqueue, then one line per CPU."""
    lines = [json.loads(line) for line in busy.ok("top", "-1", "-j", "irq_driver").splitlines()]
    assert list(lines[0]) == WQ_KEYS
    assert {k: lines[0][k] for k in WQ_KEYS[1:]} == {
        "name": "irq_driver_wq", "unbound": False, "mem_reclaim": False, "started": 3,
        "completed": 3, "cpu_time": 0, "cpu_intensive": 0, "cm_wakeup": 0, "repatriated": 0,
        "mayday": 0, "rescued": 0}
    assert [line["cpu"] for line in lines[1:]] == [0, 1]
    assert lines[1]["softirqs"]["TASKLET"] == 3.0 and lines[1]["interrupts"]["17"] == 3.0
    assert lines[2]["softirqs"]["TASKLET"] == 0.0
    assert lines[1]["since_boot"] is True and lines[1]["uptime"] == 1.0


def test_top_refreshes_with_rates_over_the_interval(boot: Callable[..., Booted]) -> None:
    """In a pipe, rounds follow one another, the later ones with rates over the interval."""
    k = boot("--rate", "5")
    footers = []
    with k.follow("top", "-i", "0.05") as out:
        while len(footers) < 3:
            line = out.line()
            assert "\033[" not in line  # no screen control codes in a pipe
            if line.startswith("(rates per second"):
                footers.append(line)
    assert footers[0] == "(rates per second of kernel time, since boot)\n"
    assert all(f.startswith("(rates per second of kernel time, over the last ") for f in footers[1:])


def test_top_errors(busy: Booted) -> None:
    """A bad REGEX or interval is refused."""
    assert one_error_line(busy.bh("top", "-1", "(")).startswith("bh: error: bad REGEX: ")
    r = busy.bh("top", "--interval=-1")
    assert r.returncode == 2 and "--interval must be finite and >= 0, not -1" in r.stderr
