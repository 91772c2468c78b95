"""Virtual devices (bottomhalf's stand-in for hardware), bh irq and bh devices, and the
NAPI-style driver of examples/napi_driver.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bottomhalf import Kernel
from bottomhalf.errors import BottomHalfError

from .conftest import example, messages
from .daemons import Booted, one_error_line

TICK_MODULE = """\
from bottomhalf.linux import *

times = []

def tick_irq(irq, dev):
    times.append(ktime_get_ns())
    return IRQ_HANDLED

def tick_init():
    return request_irq(bh_device("tick").irq, tick_irq, 0, "tick", None)

def tick_exit():
    free_irq(bh_device("tick").irq, None)

module_init(tick_init)
module_exit(tick_exit)
MODULE_LICENSE("GPL")
"""


def test_periodic_device_interrupts_once_attached(sim: Kernel, tmp_path: Path) -> None:
    """A periodic device counts events from boot; interrupts reach a handler once it is attached."""
    dev = sim.add_device("tick=periodic:irq=30,period=10")
    sim.run_for(25)
    assert (dev.total, dev.delivered, dev.pending) == (3, 0, 3)
    path = f"{tmp_path}/tick.py"
    with open(path, "w") as f:
        f.write(TICK_MODULE)
    mod = sim.insmod(path)
    sim.run_for(30)
    assert mod.module.times == [30_000_000, 40_000_000, 50_000_000]
    assert (dev.total, dev.delivered) == (6, 3)


def test_read_takes_at_most_the_budget(sim: Kernel) -> None:
    """read(budget) drains part of the ring; read() all of it."""
    dev = sim.add_device("net0=bursty:irq=40,burst=8,spacing=0.01,gap=20", start=False)
    dev.pending = 10
    assert (dev.read(4), dev.pending) == (4, 6)
    assert (dev.read(0), dev.read(), dev.pending) == (0, 6, 0)


def event_times(seed: int) -> list[int]:
    with Kernel(cpus=1, engine="sim", seed=seed) as k:
        dev = k.add_device("net0=bursty:irq=40,burst=8,spacing=0.01,gap=5")
        times = []
        for _ in range(200):
            k.run_for(0.01)
            times.extend([k.now_ns] * (dev.total - len(times)))
        return times


def test_bursty_device_is_seeded() -> None:
    """Burst sizes vary with the seed, and the same seed repeats them exactly."""
    assert event_times(1) == event_times(1)
    assert event_times(1) != event_times(2)


@pytest.mark.parametrize("spec, message", [
    ("net0", "bad device 'net0': expected NAME=KIND:key=value,..."),
    ("net0=laser:irq=3", "unknown device kind 'laser' (periodic or bursty)"),
    ("net0=bursty:irq=x", "device 'net0': irq must be a number"),
    ("net0=bursty:irq=40,colour=red", "device 'net0': unknown option(s) colour"),
    ("net0=periodic:irq=300", "IRQ 300 does not exist (lines are 0..255)"),
    ("net0=periodic:irq=3,cpu=9", "CPU 9 does not exist (this kernel has 2 CPUs)"),
])
def test_bad_device_specs(sim: Kernel, spec: str, message: str) -> None:
    """Each malformed device is refused with a message naming the problem."""
    with pytest.raises(BottomHalfError) as e:
        sim.add_device(spec)
    assert str(e.value) == message


# ----------------------------------------------------------------------
# the NAPI-style driver


def napi_run(k: Kernel, ms: float, **params: object) -> list[str]:
    k.add_device("net0=bursty:irq=40,burst=8,spacing=0.01,gap=20")
    k.insmod(example("napi_driver.py"), **params)
    k.run_for(ms)
    k.rmmod("napi_driver")
    return messages(k)


def test_napi_driver_batches_interrupts(sim: Kernel) -> None:
    """Under bursts, the driver takes far fewer interrupts than packets, polling budget-sized."""
    log = napi_run(sim, 100, budget=4)
    assert log[-7:] == [
        "napi_driver: driving net0 on IRQ 40, budget 4",
        "napi_driver: burst of 6 packets done on CPU 0",
        "napi_driver: burst of 11 packets done on CPU 0",
        "napi_driver: burst of 9 packets done on CPU 0",
        "napi_driver: burst of 4 packets done on CPU 0",
        "napi_driver: burst of 7 packets done on CPU 0",
        "napi_driver: 37 packets in 5 bursts: 20 polls, 10 interrupts",
    ]


def test_napi_driver_on_real(real: Kernel) -> None:
    """On real threads every packet that arrived is processed, with fewer interrupts than packets."""
    real.add_device("net0=bursty:irq=40,burst=8,spacing=0.01,gap=20")
    mod = real.insmod(example("napi_driver.py"))
    real.run_for(200)
    real.rmmod("napi_driver")
    dev = real.devices["net0"]
    stats = mod.module.stats
    assert stats["packets"] + dev.pending == dev.total > 0
    assert stats["interrupts"] <= stats["packets"]


def test_napi_driver_needs_its_device(sim: Kernel) -> None:
    """Without the device, init fails with -ENODEV and says how to boot one."""
    from bottomhalf.errors import ModuleLoadError

    with pytest.raises(ModuleLoadError) as e:
        sim.insmod(example("napi_driver.py"))
    assert e.value.errno == 19
    assert messages(sim)[-1] == \
        "napi_driver: no device 'net0' (boot with: bh boot --device net0=bursty:irq=40)"


# ----------------------------------------------------------------------
# bh irq and bh devices


def test_bh_irq_counts_and_rate(frozen: Booted) -> None:
    """bh irq asserts a line K times at once, or at a rate spread over kernel time."""
    frozen.ok("insmod", "examples/irq_driver.py", "fires=0")
    frozen.ok("irq", "17", "--count", "2")
    frozen.ok("irq", "17", "--cpu", "1")
    row = frozen.ok("cat", "/proc/interrupts").splitlines()[1]
    assert row.split()[:3] == ["17:", "2", "1"]
    frozen.ok("trace", "record", "-e", "irq:irq_handler_entry", "--",
              "bh", "irq", "17", "--count", "3", "--rate", "1000")
    stamps = [line.split()[3] for line in frozen.ok("trace", "show").splitlines()
              if not line.startswith("#")]
    assert stamps == ["0.000000:", "0.001000:", "0.002000:"]


def test_bh_irq_errors(frozen: Booted) -> None:
    """A line without a handler, a bad count or rate: one clear line each."""
    assert one_error_line(frozen.bh("irq", "99")) == ("bh: error: IRQ 99 has no handler: "
                                                      "request_irq() it first (Linux keeps a "
                                                      "line without handlers masked)")
    frozen.ok("insmod", "examples/irq_driver.py", "fires=0")
    assert one_error_line(frozen.bh("irq", "17", "--cpu", "5")) == \
        "bh: error: CPU 5 does not exist (this kernel has 2 CPUs: 0..1)"
    for args, message in ((["--count", "0"], "--count must be finite and >= 1, not 0"),
                          (["--rate", "0"], "--rate must be finite and > 0, not 0")):
        r = frozen.bh("irq", "17", *args)
        assert r.returncode == 2 and message in r.stderr


def test_bh_devices(frozen: Booted) -> None:
    """bh devices lists the devices; --add plugs one in; a bad one is one error line."""
    assert frozen.ok("devices") == \
        "no virtual devices (add one with: bh devices --add net0=bursty:irq=40)\n"
    assert frozen.ok("devices", "--add", "net0=bursty:irq=40,burst=4,gap=10") == \
        "net0: bursty on IRQ 40, CPU 0, bursts of ~4 every 10 ms\n"
    assert frozen.ok("devices") == "net0: bursty on IRQ 40, CPU 0, bursts of ~4 every 10 ms\n"
    assert one_error_line(frozen.bh("devices", "--add", "net0=periodic:irq=41")) == \
        "bh: error: a device named 'net0' already exists"
