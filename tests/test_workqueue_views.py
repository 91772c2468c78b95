"""Workqueue files: /sys/bus/workqueue/devices, module parameters, the debugfs view
and the wq_monitor table (reference §9)."""

from __future__ import annotations

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import KernelFileError


def test_sysfs_only_for_wq_sysfs_queues(kernel: Kernel) -> None:
    """WQ_SYSFS queues appear under /sys/bus/workqueue/devices; others do not."""
    kernel.call(lambda: (L.alloc_workqueue("visible", L.WQ_SYSFS | L.WQ_UNBOUND, 0),
                         L.alloc_workqueue("hidden", L.WQ_UNBOUND, 0),
                         L.alloc_workqueue("pcpu", L.WQ_SYSFS, 8)))
    d = "/sys/bus/workqueue/devices/"
    assert kernel.read(d + "visible/per_cpu") == "0\n"
    assert kernel.read(d + "visible/max_active") == "1024\n"
    assert kernel.read(d + "visible/affinity_scope") == "default (cache)\n"
    assert kernel.read(d + "pcpu/per_cpu") == "1\n"
    assert kernel.read("/sys/devices/virtual/workqueue/pcpu/max_active") == "8\n"
    with pytest.raises(FileNotFoundError):
        kernel.read(d + "hidden/max_active")
    with pytest.raises(FileNotFoundError):
        kernel.read(d + "pcpu/nice")


def test_sysfs_max_active_is_writable(kernel: Kernel) -> None:
    """Writing max_active sets it (clamped like workqueue_set_max_active); 0 is EINVAL."""
    kernel.call(lambda: L.alloc_workqueue("tunable", L.WQ_SYSFS, 4))
    p = "/sys/bus/workqueue/devices/tunable/max_active"
    kernel.write(p, "16\n")
    assert kernel.read(p) == "16\n"
    kernel.write(p, "9999")
    assert kernel.read(p) == "2048\n"
    with pytest.raises(KernelFileError):
        kernel.write(p, "0")
    with pytest.raises(KernelFileError):
        kernel.write(p, "many")


def test_ordered_queue_cannot_be_sysfs(kernel: Kernel) -> None:
    """alloc_ordered_workqueue with WQ_SYSFS fails with a WARN, as workqueue_sysfs_register does."""
    assert kernel.call(lambda: L.alloc_ordered_workqueue("ord", L.WQ_SYSFS)) is None
    assert any(line.split("] ", 1)[1].startswith("WARNING:") for line in kernel.dmesg())


def test_destroyed_queue_leaves_sysfs(kernel: Kernel) -> None:
    """destroy_workqueue removes the sysfs directory first."""
    kernel.call(lambda: L.destroy_workqueue(L.alloc_workqueue("gone", L.WQ_SYSFS, 0)))
    with pytest.raises(FileNotFoundError):
        kernel.read("/sys/bus/workqueue/devices/gone/max_active")


def test_module_parameters(kernel: Kernel) -> None:
    """/sys/module/workqueue/parameters holds Linux's defaults."""
    p = "/sys/module/workqueue/parameters/"
    assert [kernel.read(p + n) for n in ("watchdog_thresh", "cpu_intensive_thresh_us",
                                         "power_efficient", "panic_on_stall",
                                         "default_affinity_scope", "debug_force_rr_cpu")] == [
        "30\n", "10000\n", "N\n", "0\n", "cache\n", "N\n"]
    with pytest.raises(KernelFileError):
        kernel.write(p + "power_efficient", "Y")
    with pytest.raises(KernelFileError):
        kernel.write(p + "watchdog_thresh", "-1")


def test_debugfs_view_says_linux_lacks_it(kernel: Kernel) -> None:
    """/sys/kernel/debug/workqueue is ours: it says so and lists pools, workers and queues."""
    text = kernel.read("/sys/kernel/debug/workqueue")
    assert text.startswith("# bottomhalf's live view of every workqueue, pool and worker.\n"
                           "# Linux has no /sys/kernel/debug/workqueue")
    assert "pool[02] flags=0x00 ref= 1 nice=  0 idle/workers=  1/  1 cpu=  0 nr_running=0" in text
    assert "kworker/u8:0" in text
    assert "events_bh                bh            0   4   -" in text


def test_wq_monitor_table(sim: Kernel) -> None:
    """The wq_monitor file has wq_monitor.py's exact columns and counts."""
    w = L.DECLARE_WORK(lambda work: None)
    sim.call(lambda: (L.alloc_workqueue("reclaimer", L.WQ_MEM_RECLAIM, 0),
                      L.schedule_work(w)))
    sim.run_until_idle()
    sim.call(lambda: L.queue_work(L.system_dfl_wq, w))  # the second events_unbound row
    sim.run_until_idle()
    lines = sim.read("/sys/kernel/debug/bottomhalf/wq_monitor").split("\n")
    assert lines[0] == ""
    assert lines[1] == ("                            total  infl  CPUtime CPUitsv CMW/RPR  mayday "
                        "rescued")
    rows = {ln[:24].strip(): ln for ln in lines[2:] if ln}
    assert rows["events"] == ("events                          1     0      0.0       0       0"
                              "       -       - ")
    assert rows["events_unbound"] == ("events_unbound                  1     0      0.0       -       0"
                                      "       -       - ")
    assert rows["reclaimer"].endswith("      0       0 ")
    assert rows["_freezable_pwr_efficient"].startswith("_freezable_pwr_efficient        0")


def test_monitor_stats_from_python(kernel: Kernel) -> None:
    """monitor_stats() gives wq_monitor.py -j's keys per workqueue."""
    from bottomhalf.wqview import monitor_stats

    w = L.DECLARE_WORK(lambda work: None)
    kernel.call(lambda: L.queue_work(L.system_highpri_wq, w))
    kernel.run_until_idle(timeout_ms=5000)
    row = [s for s in monitor_stats(kernel) if s["name"] == "events_highpri"][0]
    assert set(row) == {"timestamp", "name", "unbound", "mem_reclaim", "started", "completed",
                        "cpu_time", "cpu_intensive", "cm_wakeup", "repatriated", "mayday",
                        "rescued"}
    assert (row["started"], row["completed"], row["unbound"]) == (1, 1, False)


def test_sysfs_devices_directory_lists_sysfs_queues(kernel: Kernel) -> None:
    """Reading the devices directory lists the WQ_SYSFS queues."""
    kernel.call(lambda: (L.alloc_workqueue("zeta", L.WQ_SYSFS, 0),
                         L.alloc_workqueue("alpha", L.WQ_SYSFS | L.WQ_UNBOUND, 0)))
    assert kernel.read("/sys/bus/workqueue/devices/") == "alpha\nzeta\n"
    assert kernel.read("/sys/devices/virtual/workqueue") == "alpha\ncpumask\nzeta\n"
