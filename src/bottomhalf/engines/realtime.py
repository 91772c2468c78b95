"""Wall-clock pacing for a sim kernel that serves a terminal.

``bh boot`` keeps a sim kernel up between commands; to feel live, its virtual
time follows the wall clock at a settable rate (1.0 = real time, 0.1 = ten
times slower).  This is the only place outside the engines' core that reads
the wall clock, so it lives here, with the few wall-clock helpers the ``bh``
command needs (``dmesg -T``, ``top``'s interval, waits with no event to wait on).
"""

from __future__ import annotations

import time


class WallPacer:
    """Maps wall-clock time onto a virtual-time target."""

    def __init__(self, rate: float, virt_start_ns: int) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self._wall0 = time.monotonic_ns()
        self._virt0 = virt_start_ns

    def target_ns(self) -> int:
        """Where virtual time should be now."""
        return self._virt0 + int((time.monotonic_ns() - self._wall0) * self.rate)

    def rebase(self, virt_now_ns: int) -> None:
        """Virtual time jumped ahead (a request ran it): follow the wall from here."""
        if virt_now_ns > self.target_ns():
            self._wall0 = time.monotonic_ns()
            self._virt0 = virt_now_ns

    def set_rate(self, rate: float, virt_now_ns: int) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self._wall0 = time.monotonic_ns()
        self._virt0 = virt_now_ns


def wall_seconds() -> float:
    """Seconds since the epoch, for uptime-independent bookkeeping (dmesg -T)."""
    return time.time()


def wall_sleep(seconds: float) -> None:
    """Sleep on the wall clock (the bh command's waits where no event exists)."""
    time.sleep(seconds)
