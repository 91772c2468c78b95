"""real: queue_work -> run throughput vs ThreadPoolExecutor(1).submit of a no-op.

How items are queued (the same shape on both sides):

* N distinct work items (queueing a pending item again is a no-op by
  design), INIT_WORK'ed before the clock starts, on a workqueue of the
  default kind (``alloc_workqueue("bench", 0, 0)``: per-CPU pools,
  max_active 1024, so with a backlog the rest wait on the inactive list as in
  Linux).
* This thread queues them, one queue_work() each, in process context (the
  real engine adopts it as a user task on CPU 0), so all go to CPU 0's
  normal pool and one kworker runs them, as one thread runs the executor's.
* The clock runs from just before the first call to the moment the N-th work
  function runs (stamped inside it).  The function bodies are the same
  counter on both sides.

Goal (issues 2 and 3): at least 2x the executor's items per second.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import harness
from baselines import ExecutorRun, LastItem
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import INIT_WORK, alloc_workqueue, queue_work, work_struct, workqueue_struct


def make_works(n: int, func: Callable[[work_struct], None]) -> list[work_struct]:
    """``n`` distinct work items, INIT_WORK'ed with ``func`` (set-up, untimed)."""
    out = []
    for _ in range(n):
        w = work_struct()
        INIT_WORK(w, func)
        out.append(w)
    return out


def works_per_s(k: Kernel, wq: workqueue_struct, n: int) -> float:
    last = LastItem(n)
    tick = last.tick

    def func(work: work_struct) -> None:
        tick()

    ws = make_works(n, func)
    q = queue_work
    t0 = perf_ns()
    for w in ws:
        q(wq, w)
    t1 = last.wait("work items")
    k.run_until_idle(timeout_ms=10_000)
    return n / ((t1 - t0) / 1e9)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--items", type=int, default=20_000, help="items per timed run")
    p.add_argument("--cpus", type=int, default=2)


def run(args: argparse.Namespace) -> list[Result]:
    n = args.items
    ex = ExecutorRun()
    with Kernel(cpus=args.cpus, engine="real") as k:
        wq = alloc_workqueue("bench", 0, 0)
        assert wq is not None
        ours, base = harness.alternate(args.repeat, lambda: works_per_s(k, wq, n),
                                       lambda: ex.items_per_s(n), warmup=args.warmup)
    ex.close()
    o, b = harness.median(ours), harness.median(base)
    return [Result(
        name="queue_work->run throughput (real)", ours=o, baseline=b, unit="items/s",
        goal=">= 2x", met=o / b >= 2,
        baseline_name="ThreadPoolExecutor(1).submit(no-op)",
        note=f"{n} distinct items queued from process context on CPU 0, one kworker runs them",
        extra={"ours": [round(v) for v in ours], "baseline": [round(v) for v in base]})]


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        with Kernel(cpus=args.cpus, engine="real") as k:
            wq = alloc_workqueue("bench", 0, 0)
            assert wq is not None
            for _ in range(3):
                works_per_s(k, wq, args.items)
    harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
