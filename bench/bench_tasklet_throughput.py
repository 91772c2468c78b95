"""real: tasklet_schedule -> run throughput vs ThreadPoolExecutor(1).submit of a no-op.

How items are scheduled (the same shape on both sides):

* N distinct tasklets (one tasklet scheduled twice before it runs coalesces,
  so N schedules of one tasklet would not be N items), created and
  initialised before the clock starts, as N submit() calls need no set-up.
* This thread schedules them all, one tasklet_schedule() each, in process
  context: the real engine adopts a plain Python thread that calls the API as
  a user task on CPU 0, just as the thread calling submit() is a plain thread.
  Each call marks TASKLET_SOFTIRQ pending and wakes ksoftirqd/0, which runs
  the tasklets (Linux's path for a tasklet scheduled outside interrupts).
* The clock runs from just before the first call to the moment the N-th
  tasklet function runs (stamped inside it).  Every function body is the
  same counter on both sides.

Goal (issue 2): at least 10x the executor's items per second.  A second row,
scheduling from a hard-IRQ handler (the tasklet runs inline at irq_exit, the
usual Linux path), is reported for information.
"""

from __future__ import annotations

import argparse
from typing import Any

import harness
from baselines import ExecutorRun, LastItem
from bench_work_throughput import add_arguments
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import (
    IRQ_HANDLED,
    request_irq,
    tasklet_init,
    tasklet_schedule,
    tasklet_struct,
)

BENCH_IRQ = 42


def make_tasklets(n: int, last: LastItem) -> list[tasklet_struct]:
    tick = last.tick

    def func(data: Any) -> None:
        tick()

    out = []
    for i in range(n):
        t = tasklet_struct()
        tasklet_init(t, func, i)
        out.append(t)
    return out


def tasklets_per_s(k: Kernel, n: int) -> float:
    last = LastItem(n)
    ts = make_tasklets(n, last)
    sched = tasklet_schedule
    t0 = perf_ns()
    for t in ts:
        sched(t)
    t1 = last.wait("tasklets")
    k.run_until_idle(timeout_ms=10_000)
    return n / ((t1 - t0) / 1e9)


class IrqSource:
    """IRQ 42: each interrupt schedules the next tasklet of a list."""

    def __init__(self) -> None:
        self.todo: list[tasklet_struct] = []
        self.i = 0

        def handler(irq: int, dev: Any) -> int:
            tasklet_schedule(self.todo[self.i])
            self.i += 1
            return IRQ_HANDLED

        request_irq(BENCH_IRQ, handler, 0, "bench", self)


def irq_tasklets_per_s(k: Kernel, src: IrqSource, n: int) -> float:
    last = LastItem(n)
    src.todo = make_tasklets(n, last)
    src.i = 0
    raise_irq = k.raise_irq
    t0 = perf_ns()
    for _ in range(n):
        raise_irq(BENCH_IRQ)
    t1 = last.wait("IRQ tasklets")
    k.run_until_idle(timeout_ms=10_000)
    return n / ((t1 - t0) / 1e9)


def run(args: argparse.Namespace) -> list[Result]:
    n = args.items
    ex = ExecutorRun()
    with Kernel(cpus=args.cpus, engine="real") as k:
        src = IrqSource()
        ours, base = harness.alternate(args.repeat, lambda: tasklets_per_s(k, n),
                                       lambda: ex.items_per_s(n), warmup=args.warmup)
        irq_ours, irq_base = harness.alternate(args.repeat, lambda: irq_tasklets_per_s(k, src, n),
                                               lambda: ex.items_per_s(n), warmup=args.warmup)
    ex.close()
    o, b = harness.median(ours), harness.median(base)
    io, ib = harness.median(irq_ours), harness.median(irq_base)
    return [
        Result(name="tasklet_schedule->run throughput (real)", ours=o, baseline=b, unit="items/s",
               goal=">= 10x", met=o / b >= 10,
               baseline_name="ThreadPoolExecutor(1).submit(no-op)",
               note=f"{n} distinct tasklets scheduled from process context (ksoftirqd runs them)",
               extra={"ours": [round(v) for v in ours], "baseline": [round(v) for v in base]}),
        Result(name="tasklet from hard IRQ->run throughput (real)", ours=io, baseline=ib,
               unit="items/s", goal="(info)", met=None,
               baseline_name="ThreadPoolExecutor(1).submit(no-op)",
               note=f"{n} raise_irq() calls, each handler schedules one tasklet (runs at irq_exit)",
               extra={"ours": [round(v) for v in irq_ours], "baseline": [round(v) for v in irq_base]}),
    ]


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        with Kernel(cpus=args.cpus, engine="real") as k:
            for _ in range(3):
                tasklets_per_s(k, args.items)
    harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
