"""sim: a 100,000-item workqueue workload vs the same model written in SimPy.

The model: a 2-CPU machine; a producer on CPU 0 queues work items in bursts
of ``--burst`` (alternating CPUs: queue_work_on(i % 2, ...)) and sleeps
``--gap-us`` between bursts; each item occupies its CPU for ``--cost-us``
(udelay).  A burst's items finish well within the gap, so the kworkers go
idle and are woken again every burst.

* Ours: module code on the sim engine: alloc_workqueue("bench", 0, 0),
  INIT_WORK'ed items, queue_work_on() from a process-context task,
  usleep_range() between bursts, udelay() in the work function.
* SimPy: one Store per CPU as its worklist, one worker process per CPU that
  takes an item and holds the CPU for the cost with a timeout, and a
  producer process that puts a burst and then times out for the gap.

Both run to completion and must end at the same virtual instant (the last
item's end): a check that they simulate the same thing.  The figure is the
wall time of the simulation itself (kernel boot and item creation are set-up,
outside the clock, on both sides).  Goal (issue 3): as fast as SimPy or
faster.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Generator
from typing import Any

import harness
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import (
    INIT_WORK,
    alloc_workqueue,
    ktime_get_ns,
    queue_work_on,
    udelay,
    usleep_range,
    work_struct,
)


def ours(n: int, burst: int, gap_us: int, cost_us: int) -> tuple[float, int]:
    """(wall seconds, virtual ns at which the last item ended)."""
    done = itertools.count(1)
    last_end = [0]

    def func(work: work_struct) -> None:
        udelay(cost_us)
        if next(done) == n:
            last_end[0] = ktime_get_ns()

    works = []
    for _ in range(n):
        w = work_struct()
        INIT_WORK(w, func)
        works.append(w)
    with Kernel(cpus=2, engine="sim") as k:
        def producer() -> None:
            wq = alloc_workqueue("bench", 0, 0)
            for start in range(0, n, burst):
                for i in range(start, min(n, start + burst)):
                    queue_work_on(i % 2, wq, works[i])
                if start + burst < n:
                    usleep_range(gap_us, gap_us)

        t0 = perf_ns()
        k.call(producer)
        k.run_until_idle()
        t1 = perf_ns()
    if next(done) != n + 1:
        raise RuntimeError("not every work item ran")
    return (t1 - t0) / 1e9, last_end[0]


def simpy_model(n: int, burst: int, gap_us: int, cost_us: int) -> tuple[float, int]:
    try:
        import simpy
    except ImportError:
        raise SystemExit("SimPy is a bench-only dependency: pip install -e '.[bench]' "
                         "(./dev bench installs it)") from None

    env = simpy.Environment()
    stores = [simpy.Store(env), simpy.Store(env)]
    done = itertools.count(1)
    last_end = [0]
    cost = cost_us * 1000
    gap = gap_us * 1000

    def worker(store: simpy.Store) -> Generator[Any, Any, None]:
        while True:
            yield store.get()
            yield env.timeout(cost)
            if next(done) == n:
                last_end[0] = int(env.now)

    def producer() -> Generator[Any, Any, None]:
        for start in range(0, n, burst):
            for i in range(start, min(n, start + burst)):
                stores[i % 2].put(i)
            if start + burst < n:
                yield env.timeout(gap)

    env.process(producer())
    for s in stores:
        env.process(worker(s))
    t0 = perf_ns()
    env.run()
    t1 = perf_ns()
    if next(done) != n + 1:
        raise RuntimeError("SimPy: not every item ran")
    return (t1 - t0) / 1e9, last_end[0]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--items", type=int, default=100_000)
    p.add_argument("--burst", type=int, default=100, help="items queued per burst")
    p.add_argument("--gap-us", type=int, default=500, help="producer sleep between bursts")
    p.add_argument("--cost-us", type=int, default=5, help="CPU time of each item (udelay)")


def run(args: argparse.Namespace) -> list[Result]:
    shape = (args.burst, args.gap_us, args.cost_us)
    ends: set[tuple[str, int]] = set()

    def one(fn: Callable[..., tuple[float, int]], n: int) -> float:
        s, end = fn(n, *shape)
        ends.add((fn.__name__, end))
        return s

    warm = max(1, args.items // 10)
    for _ in range(args.warmup):
        one(ours, warm)
        one(simpy_model, warm)
    ends.clear()
    a, b = harness.alternate(args.repeat, lambda: one(ours, args.items),
                             lambda: one(simpy_model, args.items), warmup=0)
    if len({e for _, e in ends}) != 1:
        raise RuntimeError(f"the two models disagree on when the last item ends: {sorted(ends)}")
    end = next(iter(ends))[1]
    o, s = harness.median(a), harness.median(b)
    return [Result(
        name=f"sim workqueue, {args.items // 1000}k items (wall time)", ours=o, baseline=s, unit="s",
        goal="<= 1x", met=o <= s, baseline_name="the same model in SimPy",
        note=f"bursts of {args.burst} every {args.gap_us} us on 2 CPUs, {args.cost_us} us each; "
             f"both end at virtual {end / 1e9:.6f} s",
        extra={"ours": f"{[round(v, 3) for v in a]} s = {args.items / o:,.0f} items/s",
               "simpy": f"{[round(v, 3) for v in b]} s = {args.items / s:,.0f} items/s"})]


def profile(args: argparse.Namespace) -> None:
    with harness.profile_all_threads() as profs:
        ours(args.items, args.burst, args.gap_us, args.cost_us)
    harness.print_profile(profs, top=25)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
