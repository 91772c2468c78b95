"""A CPU that spins for ever is reported by the lockup detectors of
kernel/watchdog.c, not by the hung-task detector (reference §1.4: a lock
shared with a hard IRQ handler taken without disabling interrupts)."""

from __future__ import annotations

import pytest

from bottomhalf import Kernel, KernelHang
from bottomhalf import linux as L

from .conftest import messages


def stamped(k: Kernel, needle: str) -> list[str]:
    """The dmesg lines (with their timestamps) that contain ``needle``."""
    return [line for line in k.dmesg() if needle in line]


def test_spin_lock_twice_in_process_context_is_a_soft_lockup(sim: Kernel) -> None:
    """spin_lock twice: spinlock recursion, then the soft-lockup report at the
    first watchdog sample past 20 s (24 s: stuck for (24e9 >> 30) = 22 s), taint L."""
    lock = L.spinlock_t()

    def body() -> None:
        L.spin_lock_init(lock)
        L.spin_lock(lock)
        L.spin_lock(lock)

    with pytest.raises(KernelHang):
        sim.call(body)
    msgs = messages(sim)
    assert "BUG: spinlock recursion on CPU#0, python3/1000" in msgs
    assert stamped(sim, "soft lockup") == [
        "[   24.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [python3:1000]"]
    i = msgs.index("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [python3:1000]")
    assert msgs[i + 1] == "Modules linked in:"
    assert msgs[i + 2] == "CPU: 0 UID: 0 PID: 1000 Comm: python3 Not tainted 6.12.0-bottomhalf #1"
    assert "L" in sim.taint
    assert not stamped(sim, "blocked for more than")


def test_soft_lockup_counts_from_the_last_watchdog_sample(sim: Kernel) -> None:
    """A spin that starts at 5 s was last touched by the 4 s sample: reported at
    28 s, stuck for (28e9 >> 30) - (4e9 >> 30) = 23 s."""
    lock = L.spinlock_t()

    def body() -> None:
        L.spin_lock_init(lock)
        L.mdelay(5000)
        L.spin_lock(lock)
        L.spin_lock(lock)

    with pytest.raises(KernelHang):
        sim.call(body)
    assert stamped(sim, "soft lockup") == [
        "[   28.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [python3:1000]"]


def test_lock_shared_with_an_irq_handler_is_a_hard_lockup(sim: Kernel) -> None:
    """spin_lock in process context, then the same lock in a hard-IRQ handler on
    that CPU: spinlock recursion, then (interrupts off, so no soft-lockup check
    can run) the hard-lockup NMI watchdog at its first period, 10 s."""
    lock = L.spinlock_t()

    def handler(irq: int, dev: object) -> int:
        L.spin_lock(lock)
        L.spin_unlock(lock)
        return L.IRQ_HANDLED

    def body() -> None:
        L.spin_lock_init(lock)
        L.request_irq(5, handler, 0, "mydev", None)
        L.spin_lock(lock)
        sim.raise_irq(5, cpu=0)
        L.spin_unlock(lock)

    with pytest.raises(KernelHang):
        sim.call(body)
    msgs = messages(sim)
    rec = msgs.index("BUG: spinlock recursion on CPU#0, python3/1000")
    hard = msgs.index("watchdog: CPU0: Watchdog detected hard LOCKUP on cpu 0")
    assert rec < hard
    assert stamped(sim, "hard LOCKUP") == [
        "[   10.000000] watchdog: CPU0: Watchdog detected hard LOCKUP on cpu 0"]
    assert msgs[hard + 1] == "Modules linked in:"
    assert not stamped(sim, "soft lockup")
    assert not stamped(sim, "blocked for more than")
    assert "L" not in sim.taint
