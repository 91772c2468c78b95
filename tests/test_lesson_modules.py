"""The lesson's two modules load, run and unload in the order Linux gives."""

from __future__ import annotations

from bottomhalf import Kernel

from .conftest import example, messages


def test_tasklet_driver_order(kernel: Kernel) -> None:
    """Init prints before the tasklet runs; exit kills it and prints last."""
    kernel.insmod(example("tasklet_driver.py"))
    kernel.run_until_idle(timeout_ms=5000)
    kernel.rmmod("tasklet_driver")
    lines = [m for m in messages(kernel) if "Tasklet" in m]
    assert lines == ["Tasklet scheduled", "Tasklet executed with data: 1234", "Tasklet removed"]


def test_workqueue_driver_order(kernel: Kernel) -> None:
    """queue_work returns before the work runs on a kworker; exit flushes and destroys."""
    kernel.insmod(example("workqueue_driver.py"))
    kernel.run_until_idle(timeout_ms=5000)
    kernel.rmmod("workqueue_driver")
    lines = [m for m in messages(kernel) if "Workqueue" in m]
    assert lines == ["Workqueue scheduled", "Workqueue executed in process context",
                     "Workqueue removed"]


def test_lesson_dmesg_exact_on_sim(sim: Kernel) -> None:
    """On sim the whole log, timestamps included, is exactly this."""
    sim.run_for(1000)
    sim.insmod(example("tasklet_driver.py"))
    sim.run_until_idle()
    sim.rmmod("tasklet_driver")
    sim.run_for(1000)
    sim.insmod(example("workqueue_driver.py"))
    sim.run_until_idle()
    sim.rmmod("workqueue_driver")
    assert sim.dmesg()[3:] == [
        "[    1.000000] tasklet_driver: loading out-of-tree module taints kernel.",
        "[    1.000000] Tasklet scheduled",
        "[    1.000000] Tasklet executed with data: 1234",
        "[    1.000000] Tasklet removed",
        "[    2.000000] Workqueue scheduled",
        "[    2.000000] Workqueue executed in process context",
        "[    2.000000] Workqueue removed",
    ]
