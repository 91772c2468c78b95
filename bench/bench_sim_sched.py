"""sim: blocking context switches and timer events per second vs a bare heapq event loop.

Three workloads, each written once as module code on the sim engine and once
on a bare discrete-event loop (a heapq of (time, seq, task) and generator
tasks, nothing else) doing the same events in the same order:

* completion ping-pong: two tasks on one CPU, each ``complete()``-ing the
  other's completion and blocking in ``wait_for_completion()`` on its own.
  Figure: blocking context switches per second (the kernel's own count, as
  /proc/stat's ``ctxt``; the loop counts its blocks the same way).
* usleep_range loop: one task sleeps ``usleep_range(10, 10)`` N times: each
  is an hrtimer expiry, an interrupt, a wake-up and a switch.  Figure:
  hrtimer expiries per second.
* timer_list: 64 timers, each re-arming itself 1-4 jiffies ahead from its
  callback (TIMER softirq), until N have fired.  Figure: expiries per second.

The heapq loop is the ceiling for any Python simulator of these events: the
ratio says what the kernel model (contexts, preempt counts, locks, the
softirq loop, the timer wheel, greenlet switches through the hub) costs on
top.  A second figure per row, the same loop with greenlets in place of
generators, separates the switching mechanism from the model.  No goal is
set (issue 2 asks to state the ratio and what limits it: run with
``--profile``).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
from collections.abc import Callable, Generator
from typing import Any

import greenlet
import harness
from harness import Result, perf_ns

from bottomhalf import Kernel
from bottomhalf.linux import (
    complete,
    completion,
    init_completion,
    jiffies,
    kthread_run,
    mod_timer,
    timer_list,
    timer_setup,
    usleep_range,
    wait_for_completion,
)

N_TIMERS = 64


# ----------------------------------------------------------------------
# ours
def sim_pingpong(n: int, cpus: int) -> tuple[float, int]:
    """(seconds, blocking switches) for n round trips."""
    with Kernel(cpus=cpus, engine="sim") as k:
        def main() -> tuple[int, int, int]:
            a = completion()
            b = completion()
            init_completion(a)
            init_completion(b)

            def partner(data: Any) -> int:
                for _ in range(n):
                    wait_for_completion(a)
                    complete(b)
                return 0

            kthread_run(partner, None, "pong")
            s0 = k.sched.context_switches()
            t0 = perf_ns()
            for _ in range(n):
                complete(a)
                wait_for_completion(b)
            t1 = perf_ns()
            return t0, t1, k.sched.context_switches() - s0

        t0, t1, switches = k.call(main)
    return (t1 - t0) / 1e9, switches


def sim_usleep(n: int, cpus: int) -> float:
    with Kernel(cpus=cpus, engine="sim") as k:
        def main() -> tuple[int, int]:
            t0 = perf_ns()
            for _ in range(n):
                usleep_range(10, 10)
            return t0, perf_ns()

        t0, t1 = k.call(main)
        if k.now_ns < n * 10_000:
            raise RuntimeError("usleep_range loop ended early")
    return (t1 - t0) / 1e9


def sim_timer_list(n: int, cpus: int) -> float:
    with Kernel(cpus=cpus, engine="sim") as k:
        fired = itertools.count(1)
        timers = [timer_list() for _ in range(N_TIMERS)]

        def arm_all() -> None:
            for i, t in enumerate(timers):
                step = 1 + i % 4

                def cb(t: timer_list, step: int = step) -> None:
                    if next(fired) < n:
                        mod_timer(t, jiffies() + step)

                timer_setup(t, cb, 0)
                mod_timer(t, jiffies() + step)

        t0 = perf_ns()
        k.call(arm_all)
        k.run_until_idle(timeout_ms=10 ** 9)
        t1 = perf_ns()
        got = next(fired) - 1
        if got < n:
            raise RuntimeError(f"only {got} of {n} timers fired")
    return (t1 - t0) / 1e9


# ----------------------------------------------------------------------
# the bare heapq loop, with generator tasks (or greenlets)
class _Completion:
    __slots__ = ("done", "waiter")

    def __init__(self) -> None:
        self.done = 0
        self.waiter: Any = None


class Loop:
    """(time, seq, task) heap; a task yields ("wait", c) or ("sleep", ns)."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Any]] = []
        self.seq = itertools.count()
        self.now = 0
        self.blocks = 0

    def wake(self, task: Any, at: int | None = None) -> None:
        heapq.heappush(self.heap, (self.now if at is None else at, next(self.seq), task))

    def complete(self, c: _Completion) -> None:
        if c.waiter is not None:
            w, c.waiter = c.waiter, None
            self.wake(w)
        else:
            c.done += 1

    def run(self) -> None:
        heap = self.heap
        pop = heapq.heappop
        while heap:
            self.now, _, g = pop(heap)
            self.step(g)

    def step(self, g: Generator[tuple[str, Any], None, None]) -> None:
        while True:
            try:
                what, arg = next(g)
            except StopIteration:
                return
            if what == "wait":
                if arg.done:
                    arg.done -= 1
                    continue
                arg.waiter = g
                self.blocks += 1
                return
            self.blocks += 1
            self.wake(g, self.now + arg)
            return


class GreenletLoop(Loop):
    """The same loop; tasks are greenlets that switch back to it to block."""

    def step(self, g: Any) -> None:
        g.switch()

    def wait(self, c: _Completion) -> None:
        if c.done:
            c.done -= 1
            return
        c.waiter = greenlet.getcurrent()
        self.blocks += 1
        self.hub.switch()

    def sleep(self, ns: int) -> None:
        self.blocks += 1
        self.wake(greenlet.getcurrent(), self.now + ns)
        self.hub.switch()

    def start(self, fn: Callable[[], None]) -> None:
        self.hub = greenlet.getcurrent()
        self.wake(greenlet.greenlet(fn, parent=self.hub))


def heapq_pingpong(n: int, use_greenlets: bool = False) -> tuple[float, int]:
    a, b = _Completion(), _Completion()
    if use_greenlets:
        gl = GreenletLoop()

        def gping() -> None:
            for _ in range(n):
                gl.complete(a)
                gl.wait(b)

        def gpong() -> None:
            for _ in range(n):
                gl.wait(a)
                gl.complete(b)

        gl.start(gping)
        gl.start(gpong)
        t0 = perf_ns()
        gl.run()
        return (perf_ns() - t0) / 1e9, gl.blocks
    loop = Loop()

    def ping() -> Generator[tuple[str, Any], None, None]:
        for _ in range(n):
            loop.complete(a)
            yield "wait", b

    def pong() -> Generator[tuple[str, Any], None, None]:
        for _ in range(n):
            yield "wait", a
            loop.complete(b)

    loop.wake(ping())
    loop.wake(pong())
    t0 = perf_ns()
    loop.run()
    return (perf_ns() - t0) / 1e9, loop.blocks


def heapq_usleep(n: int, use_greenlets: bool = False) -> float:
    if use_greenlets:
        gl = GreenletLoop()

        def gsleeper() -> None:
            for _ in range(n):
                gl.sleep(10_000)

        gl.start(gsleeper)
        t0 = perf_ns()
        gl.run()
        return (perf_ns() - t0) / 1e9
    loop = Loop()

    def sleeper() -> Generator[tuple[str, Any], None, None]:
        for _ in range(n):
            yield "sleep", 10_000

    loop.wake(sleeper())
    t0 = perf_ns()
    loop.run()
    return (perf_ns() - t0) / 1e9


def heapq_timers(n: int) -> float:
    """Timers as (expiry, seq, callback) entries; a callback re-arms its timer."""
    heap: list[tuple[int, int, Any]] = []
    seq = itertools.count()
    fired = itertools.count(1)
    now = 0

    def make(step: int) -> Callable[[], None]:
        def cb() -> None:
            if next(fired) < n:
                heapq.heappush(heap, (now + step, next(seq), cb))

        return cb

    t0 = perf_ns()
    for i in range(N_TIMERS):
        step = 1 + i % 4
        heapq.heappush(heap, (step, next(seq), make(step)))
    while heap:
        now, _, cb = heapq.heappop(heap)
        cb()
    return (perf_ns() - t0) / 1e9


# ----------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pingpong", type=int, default=20_000, help="round trips (2 switches each)")
    p.add_argument("--sleeps", type=int, default=20_000, help="usleep_range calls")
    p.add_argument("--timers", type=int, default=50_000, help="timer_list expiries")
    p.add_argument("--cpus", type=int, default=1, help="CPUs of the sim kernel")


def run(args: argparse.Namespace) -> list[Result]:
    rows = []
    sw: list[float] = []

    def ours_pp() -> float:
        s, switches = sim_pingpong(args.pingpong, args.cpus)
        sw.append(switches)
        return switches / s

    def base_pp() -> float:
        s, blocks = heapq_pingpong(args.pingpong)
        return blocks / s

    a, b = harness.alternate(args.repeat, ours_pp, base_pp, warmup=args.warmup)
    g = harness.median([blocks / s for s, blocks in
                        (heapq_pingpong(args.pingpong, True) for _ in range(args.repeat))])
    rows.append(Result(
        name="sim blocking context switches/s (completion ping-pong)",
        ours=harness.median(a), baseline=harness.median(b), unit="switches/s",
        goal="(report)", met=None, baseline_name="bare heapq loop, generator tasks",
        note=f"{args.pingpong} round trips on {args.cpus} CPU(s); kernel counted "
             f"{int(harness.median(sw))} switches",
        extra={"heapq+greenlets": harness.fmt_value(g, "switches/s")}))

    a, b = harness.alternate(args.repeat, lambda: args.sleeps / sim_usleep(args.sleeps, args.cpus),
                             lambda: args.sleeps / heapq_usleep(args.sleeps), warmup=args.warmup)
    g = harness.median([args.sleeps / heapq_usleep(args.sleeps, True) for _ in range(args.repeat)])
    rows.append(Result(
        name="sim hrtimer expiries/s (usleep_range loop)",
        ours=harness.median(a), baseline=harness.median(b), unit="events/s",
        goal="(report)", met=None, baseline_name="bare heapq loop, generator tasks",
        note=f"{args.sleeps} x usleep_range(10, 10)",
        extra={"heapq+greenlets": harness.fmt_value(g, "events/s")}))

    a, b = harness.alternate(args.repeat, lambda: args.timers / sim_timer_list(args.timers, args.cpus),
                             lambda: args.timers / heapq_timers(args.timers), warmup=args.warmup)
    rows.append(Result(
        name="sim timer_list expiries/s",
        ours=harness.median(a), baseline=harness.median(b), unit="events/s",
        goal="(report)", met=None, baseline_name="bare heapq loop of callbacks",
        note=f"{N_TIMERS} self-re-arming timers, 1-4 jiffies, {args.timers} expiries"))
    return rows


def profile(args: argparse.Namespace) -> None:
    for what, fn in (("completion ping-pong", lambda: sim_pingpong(args.pingpong, args.cpus)),
                     ("usleep_range loop", lambda: sim_usleep(args.sleeps, args.cpus)),
                     ("timer_list", lambda: sim_timer_list(args.timers, args.cpus))):
        print(f"=== {what} ===")
        with harness.profile_all_threads() as profs:
            fn()
        harness.print_profile(profs)


if __name__ == "__main__":
    harness.main(__doc__, add_arguments, run, profile)
