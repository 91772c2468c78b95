"""examples/wq_mistakes.py: the classic mistakes get the kernel's reports."""

from __future__ import annotations

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import KernelHang

from .conftest import example, messages


def test_unloaded_with_work_pending_page_faults_in_the_kworker(kernel: Kernel) -> None:
    """A delayed work left armed at rmmod makes its kworker fault in the freed module."""
    kernel.insmod(example("wq_mistakes.py"), mistake="unload_pending")
    kernel.rmmod("wq_mistakes")
    kernel.run_until_idle(timeout_ms=5000)
    msgs = messages(kernel)
    assert any(m.startswith("BUG: unable to handle page fault for address: ") for m in msgs)
    i = next(i for i, m in enumerate(msgs) if m.startswith("Oops: 0010 [#1]"))
    assert msgs[i + 1].startswith("CPU: ") and " Comm: kworker/" in msgs[i + 1]
    assert "wq_mistakes: late work ran" not in msgs
    assert msgs[-1] == ("bottomhalf: the work late_work_fn() belongs to module wq_mistakes, which "
                        "was unloaded while it was still queued or registered")


def test_unloaded_with_work_pending_exact_on_sim(sim: Kernel) -> None:
    """On sim the fault comes at 1.024 s: HZ jiffies later, at the next tick."""
    sim.insmod(example("wq_mistakes.py"), mistake="unload_pending")
    sim.rmmod("wq_mistakes")
    sim.run_until_idle()
    faults = [line for line in sim.dmesg() if "page fault" in line]
    assert faults[0].startswith("[    1.024000] BUG: unable to handle page fault for address: ")


def test_work_flushing_its_own_ordered_queue_hangs(sim: Kernel) -> None:
    """Flushing its own queue from a work item: lockdep's report, then the hung kworker."""
    sim.insmod(example("wq_mistakes.py"), mistake="flush_own_queue")
    with pytest.raises(KernelHang) as info:
        sim.run_until_idle()
    assert "blocked in flush_workqueue(mistakes_wq)" in str(info.value)
    msgs = messages(sim)
    i = msgs.index("WARNING: possible recursive locking detected")
    assert msgs[i + 3].endswith(" is trying to acquire lock:")
    assert "((wq_completion)mistakes_wq){+.+.}-{0:0}, at: touch_wq_lockdep_map" in msgs[i + 4]
    assert "wq_mistakes: never printed" not in msgs
    hung = [line for line in sim.dmesg() if "blocked for more than 120 seconds" in line]
    assert len(hung) == 1 and " INFO: task kworker/u8:" in hung[0]


def test_lockdep_reports_once_per_boot_then_turns_itself_off(sim: Kernel) -> None:
    """Two items each flushing their own ordered queue: one lockdep report, then debug_locks off."""
    queues = [sim.call(lambda n=n: L.alloc_ordered_workqueue("selfflush%d", 0, n)) for n in (1, 2)]
    works = []
    for wq in queues:
        works.append(L.DECLARE_WORK(lambda w, wq=wq: L.flush_workqueue(wq)))
        sim.call(lambda wq=wq, w=works[-1]: L.queue_work(wq, w))
    with pytest.raises(KernelHang):
        sim.run_until_idle()
    msgs = messages(sim)
    assert msgs.count("WARNING: possible recursive locking detected") == 1
    assert sum("flushes its own workqueue selfflush" in m for m in msgs) == 1
    assert not sim.debug_locks
