"""sim's suspension mechanism: a greenlet switch round trip vs two OS threads passing a baton.

The sim engine parks a kernel thread by switching to its hub greenlet and
resumes it by switching back: one round trip is two switches.  The
alternative it was chosen over is one OS thread per kernel thread, with a
baton (a threading.Lock) handed over so that exactly one runs at a time:
one round trip is main -> other -> main, two lock hand-offs and two GIL
hand-offs.  Both loops do nothing else; the figure is wall time per round
trip.
"""

from __future__ import annotations

import argparse
import threading

import greenlet
import harness
from harness import Result, perf_ns


def greenlet_round_trip_us(n: int) -> float:
    main = greenlet.getcurrent()

    def body() -> None:
        while True:
            main.switch()

    g = greenlet.greenlet(body)
    g.switch()  # start it: it switches straight back
    t0 = perf_ns()
    for _ in range(n):
        g.switch()
    t1 = perf_ns()
    return (t1 - t0) / n / 1000


def thread_baton_round_trip_us(n: int) -> float:
    to_other = threading.Lock()
    to_main = threading.Lock()
    to_other.acquire()
    to_main.acquire()

    def other() -> None:
        for _ in range(n + 1):
            to_other.acquire()
            to_main.release()

    th = threading.Thread(target=other, name="baton")
    th.start()
    to_other.release()  # one untimed trip: the thread is up and parked
    to_main.acquire()
    t0 = perf_ns()
    for _ in range(n):
        to_other.release()
        to_main.acquire()
    t1 = perf_ns()
    th.join()
    return (t1 - t0) / n / 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-greenlet", type=int, default=200_000, help="round trips per greenlet run")
    p.add_argument("--n-threads", type=int, default=20_000, help="round trips per thread run")


def run(args: argparse.Namespace) -> list[Result]:
    ours, base = harness.alternate(args.repeat, lambda: greenlet_round_trip_us(args.n_greenlet),
                                   lambda: thread_baton_round_trip_us(args.n_threads),
                                   warmup=args.warmup)
    g = harness.median(ours)
    t = harness.median(base)
    return [Result(
        name="switch: greenlet round trip (sim)",
        ours=g, baseline=t, unit="us",
        goal="<= 0.01x (README: ~0.3 vs ~60 us)",
        met=g / t <= 0.01,
        baseline_name="two OS threads passing a threading.Lock baton",
        extra={"greenlet": f"{[round(v, 3) for v in ours]} us",
               "threads": f"{[round(v, 1) for v in base]} us"},
    )]


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run)
