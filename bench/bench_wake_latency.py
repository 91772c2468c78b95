"""real: wake latency from queue_work to the work function starting on an idle kworker.

Baseline: a plain threading.Condition hand-off between two threads (a
waiter parked in Condition.wait, woken by notify).

One sample on each side: the clock starts just before queue_work() /
``with cond: notify()`` and stops at the first line of the work function /
the line after the waiter's wait() returns.  Between samples this thread
sleeps ``--gap-us`` (1 ms by default) so that the kworker has gone back to
sleep (idle, parked) and the waiter is parked again: every sample wakes a
sleeping thread.  Samples of the two sides alternate.

Goal (issue 2): p50 and p99 both within 2x of the Condition hand-off.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Protocol

import harness
from baselines import ConditionHandoff
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import INIT_WORK, alloc_workqueue, queue_work, work_struct


class WakeProbe:
    def __init__(self) -> None:
        self.wq = alloc_workqueue("bench", 0, 0)
        self.t_start = 0
        self.done = threading.Event()
        self.work = work_struct()

        def func(work: work_struct) -> None:
            self.t_start = perf_ns()
            self.done.set()

        INIT_WORK(self.work, func)

    def sample(self) -> int:
        self.done.clear()
        t0 = perf_ns()
        queue_work(self.wq, self.work)
        if not self.done.wait(10):
            raise RuntimeError("the work item did not run within 10 s")
        return self.t_start - t0


class Sampler(Protocol):
    def sample(self) -> int: ...


def collect(n: int, gap_s: float, ours: Sampler, base: Sampler,
            warmup: int) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        ours.sample()
        time.sleep(gap_s)
        base.sample()
        time.sleep(gap_s)
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        first, second = (ours, base) if i % 2 == 0 else (base, ours)
        for side in (first, second):
            time.sleep(gap_s)
            v = side.sample() / 1000
            (a if side is ours else b).append(v)
    return a, b


def latency_rows(what: str, a: list[float], b: list[float], goal_p50: str, goal_p99: str,
                 met: tuple[bool, bool], note: str) -> list[Result]:
    rows = []
    for p, goal, ok in ((50, goal_p50, met[0]), (99, goal_p99, met[1])):
        rows.append(Result(
            name=f"{what} p{p}", ours=harness.percentile(a, p), baseline=harness.percentile(b, p),
            unit="us", goal=goal, met=ok, baseline_name="threading.Condition hand-off",
            note=note,
            extra={"ours": f"min {min(a):.1f}  p90 {harness.percentile(a, 90):.1f}  "
                           f"max {max(a):.1f} us  ({len(a)} samples)",
                   "baseline": f"min {min(b):.1f}  p90 {harness.percentile(b, 90):.1f}  "
                               f"max {max(b):.1f} us  ({len(b)} samples)"}))
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--samples", type=int, default=1000, help="samples per side")
    p.add_argument("--gap-us", type=int, default=1000, help="idle time before each sample")
    p.add_argument("--cpus", type=int, default=2)


def run(args: argparse.Namespace) -> list[Result]:
    base = ConditionHandoff()
    with Kernel(cpus=args.cpus, engine="real"):
        ours = WakeProbe()
        a, b = collect(args.samples, args.gap_us / 1e6, ours, base, warmup=20 * args.warmup)
    base.close()
    p50 = harness.percentile(a, 50) / harness.percentile(b, 50)
    p99 = harness.percentile(a, 99) / harness.percentile(b, 99)
    return latency_rows("queue_work->work start on idle kworker (real)", a, b,
                        "<= 2x", "<= 2x", (p50 <= 2, p99 <= 2),
                        f"{args.samples} samples per side, {args.gap_us} us idle before each")


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        with Kernel(cpus=args.cpus, engine="real"):
            ours = WakeProbe()
            for _ in range(args.samples):
                time.sleep(args.gap_us / 1e6)
                ours.sample()
    harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
