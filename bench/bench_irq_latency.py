"""real: latency from raise_irq to the tasklet function starting.

The handler of IRQ 42 schedules a tasklet; the softirq it raises runs at
irq_exit on the raising thread, so the tasklet starts without any thread
hand-off.  The clock starts just before ``Kernel.raise_irq()`` and stops at
the first line of the tasklet function.

Baseline, in the same process: the threading.Condition hand-off of
bench_wake_latency.py (the cheapest way to have another thread run code).
Both sides sleep ``--gap-us`` before each sample, alternately.

Goal (issue 2): faster than the Condition hand-off (p50 and p99).
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import harness
from baselines import ConditionHandoff
from bench_wake_latency import add_arguments, collect, latency_rows
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import IRQ_HANDLED, request_irq, tasklet_init, tasklet_schedule, tasklet_struct

BENCH_IRQ = 42


class IrqProbe:
    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.t_start = 0
        self.done = threading.Event()
        self.tasklet = tasklet_struct()

        def func(data: Any) -> None:
            self.t_start = perf_ns()
            self.done.set()

        def handler(irq: int, dev: Any) -> int:
            tasklet_schedule(self.tasklet)
            return IRQ_HANDLED

        tasklet_init(self.tasklet, func, 0)
        request_irq(BENCH_IRQ, handler, 0, "bench", self)

    def sample(self) -> int:
        self.done.clear()
        t0 = perf_ns()
        self.k.raise_irq(BENCH_IRQ)
        if not self.done.wait(10):
            raise RuntimeError("the tasklet did not run within 10 s")
        return self.t_start - t0


def run(args: argparse.Namespace) -> list[Result]:
    base = ConditionHandoff()
    with Kernel(cpus=args.cpus, engine="real") as k:
        ours = IrqProbe(k)
        a, b = collect(args.samples, args.gap_us / 1e6, ours, base, warmup=20 * args.warmup)
    base.close()
    p50 = harness.percentile(a, 50) < harness.percentile(b, 50)
    p99 = harness.percentile(a, 99) < harness.percentile(b, 99)
    return latency_rows("raise_irq->tasklet start (real)", a, b, "< 1x", "< 1x", (p50, p99),
                        f"{args.samples} samples per side, {args.gap_us} us idle before each")


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        with Kernel(cpus=args.cpus, engine="real") as k:
            ours = IrqProbe(k)
            for _ in range(args.samples):
                ours.sample()
    harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
