"""real: delayed-work lateness vs a single heapq timer thread, on an idle machine.

Ours: queue_delayed_work(wq, dwork, D jiffies) from this thread; the work
function reads ktime_get_ns() first thing.  The instant it is due is the tick
at which Linux's timer wheel runs the timer: a level-0 timer due at jiffy E
runs at the tick that makes jiffies E + 1 (calc_index rounds up so that a
timer never fires early), i.e. ``jiffy_ns(timer.expires + 1)``.  Lateness =
start - due: the hrtimer thread's wake-up, the TIMER softirq, the
delayed_work timer function queueing the work, and the kworker's wake-up.
A negative lateness (an early start) is an error, not a fast sample.

Baseline: one thread with a heapq and a Condition runs a callback at its due
time; for each sample it gets the same distance to its due time as the
sample of ours before it, and reports start - due the same way.

Samples are taken one at a time (the machine is otherwise idle), the two
sides alternating.  Goal (issue 3): p50 within 2x of the baseline's, p99
under 1 ms.
"""

from __future__ import annotations

import argparse
import threading
import time

import harness
from baselines import HeapqTimerThread
from harness import Result

from bottomhalf import Kernel
from bottomhalf.linux import INIT_DELAYED_WORK, alloc_workqueue, delayed_work, queue_delayed_work
from bottomhalf.timer import INITIAL_JIFFIES, TICK_NSEC


class DelayedProbe:
    def __init__(self, k: Kernel, delay: int) -> None:
        self.k = k
        self.delay = delay
        self.wq = alloc_workqueue("bench", 0, 0)
        self.dw = delayed_work()
        self.started = 0
        self.done = threading.Event()

        def func(work: object) -> None:
            self.started = k.now_ns
            self.done.set()

        INIT_DELAYED_WORK(self.dw, func)

    def sample(self) -> tuple[int, int]:
        """(lateness, distance from the call to the due instant), in ns."""
        self.done.clear()
        called = self.k.now_ns
        queue_delayed_work(self.wq, self.dw, self.delay)
        t = self.dw.timer
        due_jiffy = getattr(t, "bucket", t.expires + 1)
        due = (due_jiffy - INITIAL_JIFFIES) * TICK_NSEC
        if not self.done.wait(10):
            raise RuntimeError("the delayed work did not run within 10 s")
        late = self.started - due
        if late < 0:
            raise RuntimeError(f"the delayed work started {-late} ns before its tick")
        return late, due - called


class HeapqProbe:
    def __init__(self) -> None:
        self.timers = HeapqTimerThread()
        self.started = 0
        self.done = threading.Event()

    def _fire(self) -> None:
        self.started = time.monotonic_ns()
        self.done.set()

    def sample(self, distance: int) -> int:
        self.done.clear()
        due = time.monotonic_ns() + distance
        self.timers.add(due, self._fire)
        if not self.done.wait(10):
            raise RuntimeError("the heapq timer did not fire within 10 s")
        return self.started - due


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--samples", type=int, default=400, help="samples per side")
    p.add_argument("--delay", type=int, default=1, help="delay in jiffies (4 ms each)")
    p.add_argument("--cpus", type=int, default=2)


def run(args: argparse.Namespace) -> list[Result]:
    base = HeapqProbe()
    a: list[float] = []
    b: list[float] = []
    with Kernel(cpus=args.cpus, engine="real") as k:
        ours = DelayedProbe(k, args.delay)
        for i in range(args.samples + 5 * args.warmup):
            late, distance = ours.sample()
            blate = base.sample(distance)
            if i >= 5 * args.warmup:
                a.append(late / 1000)
                b.append(blate / 1000)
    base.timers.close()
    p50a, p50b = harness.percentile(a, 50), harness.percentile(b, 50)
    p99a, p99b = harness.percentile(a, 99), harness.percentile(b, 99)
    note = f"{args.samples} samples per side, delay {args.delay} jiffy, one at a time"
    extra = {"ours": f"min {min(a):.1f}  p90 {harness.percentile(a, 90):.1f}  max {max(a):.1f} us",
             "baseline": f"min {min(b):.1f}  p90 {harness.percentile(b, 90):.1f}  max {max(b):.1f} us"}
    return [
        Result(name="delayed work lateness p50 (real)", ours=p50a, baseline=p50b, unit="us",
               goal="<= 2x", met=p50a <= 2 * p50b, baseline_name="single heapq timer thread",
               note=note, extra=extra),
        Result(name="delayed work lateness p99 (real)", ours=p99a, baseline=p99b, unit="us",
               goal="ours < 1000 us", met=p99a < 1000, baseline_name="single heapq timer thread",
               note=note, extra=extra),
    ]


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        with Kernel(cpus=args.cpus, engine="real") as k:
            ours = DelayedProbe(k, args.delay)
            for _ in range(args.samples):
                ours.sample()
    harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
