"""Virtual devices: something outside the kernel that raises interrupts.

Linux has hardware; bottomhalf has these (none of this exists in Linux):

* :class:`IrqPulse` - assert a line ``count`` times at a rate (``bh irq``).
* :class:`PeriodicDevice` - a timer chip: one interrupt every ``period``.
* :class:`BurstyDevice` - a network-like device: packets arrive in bursts
  (seeded, so sim runs repeat), one interrupt per packet while its line is
  enabled, and a receive counter the driver drains with ``read(budget)``,
  as it would an RX ring (examples/napi_driver.py polls it NAPI-style).

A module finds a device with ``bh_device(name)`` and attaches with
``request_irq(dev.irq, ...)``.  Interrupts are delivered only while the line
has a handler (Linux keeps a line without handlers masked); a device keeps
counting events meanwhile.  Each event is an interrupt at an exact time, so
on sim the runs are deterministic.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .context import ExecCtx
from .engines.base import HrTimer
from .errors import BottomHalfError

if TYPE_CHECKING:
    from .kernel import Kernel

MAX_RATE_HZ = 1_000_000


class _Source:
    """An interrupt source driven by an hrtimer-like event on one CPU."""

    def __init__(self, kernel: Kernel, irq: int, cpu: int) -> None:
        if not isinstance(irq, int) or not 0 <= irq < 256:
            raise BottomHalfError(f"IRQ {irq!r} does not exist (lines are 0..255)")
        if not isinstance(cpu, int) or not 0 <= cpu < kernel.ncpus:
            raise BottomHalfError(f"CPU {cpu!r} does not exist (this kernel has {kernel.ncpus} CPUs)")
        self.kernel = kernel
        self.irq = irq
        self.cpu = cpu
        self.timer = HrTimer(self._fire, cpu, f"irq{irq}-source")
        self.running = False

    def _arm(self, delay_ns: int) -> None:
        engine = self.kernel.engine
        engine.hrtimer_start(self.timer, engine.now_ns() + max(0, delay_ns))

    def start(self, delay_ns: int = 0) -> None:
        self.running = True
        self._arm(delay_ns)

    def stop(self) -> None:
        self.running = False
        self.kernel.engine.hrtimer_cancel(self.timer)

    def _assert(self, ctx: ExecCtx) -> bool:
        """Assert the line now: an interrupt of its own on ``self.cpu``, taken
        as soon as the event that models the device has returned."""
        irq = self.kernel.irq
        desc = irq.descs.get(self.irq)
        if desc is None or not desc.actions:
            return False
        irq.raise_irq(self.irq, self.cpu)
        return True

    def _fire(self, ctx: ExecCtx, timer: HrTimer) -> None:
        raise NotImplementedError


class IrqPulse(_Source):
    """Assert a line ``count`` times, ``interval_ns`` apart."""

    def __init__(self, kernel: Kernel, irq: int, cpu: int, count: int, interval_ns: int) -> None:
        super().__init__(kernel, irq, cpu)
        self.left = count
        self.interval_ns = interval_ns
        self.asserted = 0

    def _fire(self, ctx: ExecCtx, timer: HrTimer) -> None:
        if not self.running:
            return
        if self._assert(ctx):
            self.asserted += 1
        self.left -= 1
        if self.left > 0:
            self._arm(self.interval_ns)
        else:
            self.running = False


class VirtualDevice(_Source):
    """Common state of the devices a module can attach to."""

    kind = "device"

    def __init__(self, kernel: Kernel, name: str, irq: int, cpu: int) -> None:
        super().__init__(kernel, irq, cpu)
        self.name = name
        self.pending = 0  # events not read by the driver yet
        self.total = 0
        self.delivered = 0

    def read(self, budget: int | None = None) -> int:
        """Take up to ``budget`` events (all without one) off the device, as a
        driver drains an RX ring; returns how many it took."""
        n = self.pending if budget is None else max(0, min(self.pending, budget))
        self.pending -= n
        return n

    def _event(self, ctx: ExecCtx) -> None:
        self.pending += 1
        self.total += 1
        if self._assert(ctx):
            self.delivered += 1

    def describe(self) -> str:
        return f"{self.name}: {self.kind} on IRQ {self.irq}, CPU {self.cpu}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} irq={self.irq}>"


class PeriodicDevice(VirtualDevice):
    """A timer chip: one event and interrupt every ``period_ns``."""

    kind = "periodic"

    def __init__(self, kernel: Kernel, name: str, irq: int, cpu: int, period_ns: int) -> None:
        super().__init__(kernel, name, irq, cpu)
        if period_ns <= 0:
            raise BottomHalfError("a periodic device needs a period > 0")
        self.period_ns = period_ns

    def _fire(self, ctx: ExecCtx, timer: HrTimer) -> None:
        if not self.running:
            return
        self._event(ctx)
        self._arm(self.period_ns)

    def describe(self) -> str:
        return super().describe() + f", every {self.period_ns / 1e6:g} ms"


class BurstyDevice(VirtualDevice):
    """A network-like device: bursts of ``burst`` packets ``spacing_ns`` apart,
    then a quiet ``gap_ns``; burst sizes vary around ``burst`` (seeded)."""

    kind = "bursty"

    def __init__(self, kernel: Kernel, name: str, irq: int, cpu: int, burst: int,
                 spacing_ns: int, gap_ns: int) -> None:
        super().__init__(kernel, name, irq, cpu)
        if burst < 1 or spacing_ns < 0 or gap_ns <= 0:
            raise BottomHalfError("a bursty device needs burst >= 1, spacing >= 0, gap > 0")
        self.burst = burst
        self.spacing_ns = spacing_ns
        self.gap_ns = gap_ns
        self.rng = random.Random(f"{kernel.seed}:{name}")
        self.left_in_burst = 0

    def _fire(self, ctx: ExecCtx, timer: HrTimer) -> None:
        if not self.running:
            return
        if self.left_in_burst <= 0:
            self.left_in_burst = max(1, round(self.rng.uniform(0.5, 1.5) * self.burst))
        self._event(ctx)
        self.left_in_burst -= 1
        if self.left_in_burst > 0:
            self._arm(self.spacing_ns)
        else:
            self._arm(self.gap_ns)

    def describe(self) -> str:
        return (super().describe() + f", bursts of ~{self.burst} every "
                f"{self.gap_ns / 1e6:g} ms")


def assert_irq(kernel: Kernel, irq: int, cpu: int | None, count: int,
               rate_hz: float | None) -> int:
    """``bh irq``: assert a line now, or ``count`` times at ``rate_hz``."""
    if count < 1:
        raise BottomHalfError("--count must be at least 1")
    desc = kernel.irq.descs.get(irq) if isinstance(irq, int) else None
    if desc is None or not desc.actions:
        kernel.irq.raise_irq(irq, cpu)  # raises the clear "no handler" error
    target = desc.affinity if cpu is None else cpu  # type: ignore[union-attr]
    if rate_hz is None:
        for _ in range(count):
            kernel.raise_irq(irq, target)
        return count
    if not 0 < rate_hz <= MAX_RATE_HZ:
        raise BottomHalfError(f"--rate must be between 0 and {MAX_RATE_HZ} Hz")
    pulse = IrqPulse(kernel, irq, target, count, int(1e9 / rate_hz))
    kernel.devices_running.append(pulse)
    pulse.start()
    return count


def make_device(kernel: Kernel, spec: str) -> VirtualDevice:
    """Parse ``NAME=KIND:irq=N[,cpu=C][,period=MS][,burst=N,spacing=MS,gap=MS]``."""
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise BottomHalfError(f"bad device '{spec}': expected NAME=KIND:key=value,...")
    kind, _, opts_text = rest.partition(":")
    opts: dict[str, str] = {}
    for item in filter(None, opts_text.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise BottomHalfError(f"bad device option '{item}' in '{spec}'")
        opts[key.strip()] = value.strip()

    def num(key: str, default: float | None = None) -> float:
        if key not in opts:
            if default is None:
                raise BottomHalfError(f"device '{name}' needs {key}=...")
            return default
        try:
            return float(opts.pop(key))
        except ValueError:
            raise BottomHalfError(f"device '{name}': {key} must be a number") from None

    irq = int(num("irq"))
    cpu = int(num("cpu", 0))
    dev: VirtualDevice
    if kind == "periodic":
        dev = PeriodicDevice(kernel, name, irq, cpu, int(num("period", 10) * 1e6))
    elif kind == "bursty":
        dev = BurstyDevice(kernel, name, irq, cpu, int(num("burst", 8)),
                           int(num("spacing", 0.05) * 1e6), int(num("gap", 20) * 1e6))
    else:
        raise BottomHalfError(f"unknown device kind '{kind}' (periodic or bursty)")
    if opts:
        raise BottomHalfError(f"device '{name}': unknown option(s) {', '.join(sorted(opts))}")
    return dev


