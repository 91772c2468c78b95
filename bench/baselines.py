"""Baselines shared by the real-engine benchmarks, written as plainly as Python allows.

* :class:`ExecutorRun` - ``concurrent.futures.ThreadPoolExecutor(1).submit``
  of N no-op callables, timed until the last one has run.
* :class:`ConditionHandoff` - one thread wakes another through a
  ``threading.Condition``: the floor for "wake a parked thread and have it
  run my code".
* :class:`HeapqTimerThread` - a single timer thread with a ``heapq`` and a
  Condition (the shape of ``sched`` or a hand-written timer service).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from harness import perf_ns


class LastItem:
    """Counts calls; the call that makes it ``n`` stamps the time and sets ``done``.

    Both sides of a throughput benchmark use one of these, so the callback
    bodies are the same and the clock stops where the last item runs.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = itertools.count(1)
        self.t_last = 0
        self.done = threading.Event()

    def tick(self) -> None:
        if next(self.count) == self.n:
            self.t_last = perf_ns()
            self.done.set()

    def wait(self, what: str, timeout: float = 120.0) -> int:
        if not self.done.wait(timeout):
            raise RuntimeError(f"{what}: the last of {self.n} items did not run within {timeout} s")
        return self.t_last


class ExecutorRun:
    """``ThreadPoolExecutor(1).submit`` of ``n`` no-ops from this thread."""

    def __init__(self) -> None:
        self.ex = ThreadPoolExecutor(1, thread_name_prefix="tpe")
        self.ex.submit(int).result()  # the worker thread exists and is idle

    def items_per_s(self, n: int) -> float:
        last = LastItem(n)
        tick = last.tick
        submit = self.ex.submit
        t0 = perf_ns()
        for _ in range(n):
            submit(tick)
        t1 = last.wait("ThreadPoolExecutor")
        return n / ((t1 - t0) / 1e9)

    def close(self) -> None:
        self.ex.shutdown()


class ConditionHandoff:
    """A waiter thread parked in ``Condition.wait``; :meth:`sample` wakes it
    and returns the ns from just before ``notify`` to the waiter running."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.flag = False
        self.stop = False
        self.t_start = 0
        self.done = threading.Event()
        self.th = threading.Thread(target=self._waiter, name="cond-waiter", daemon=True)
        self.th.start()

    def _waiter(self) -> None:
        cond = self.cond
        while True:
            with cond:
                while not self.flag:
                    cond.wait()
                self.t_start = perf_ns()
                self.flag = False
                if self.stop:
                    return
            self.done.set()

    def sample(self) -> int:
        self.done.clear()
        cond = self.cond
        t0 = perf_ns()
        with cond:
            self.flag = True
            cond.notify()
        if not self.done.wait(10):
            raise RuntimeError("the Condition waiter did not wake")
        return self.t_start - t0

    def close(self) -> None:
        with self.cond:
            self.stop = True
            self.flag = True
            self.cond.notify()
        self.th.join()


class HeapqTimerThread:
    """One thread runs callbacks at their due time (``time.monotonic_ns``)."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.cond = threading.Condition()
        self.stop = False
        self.th = threading.Thread(target=self._main, name="heapq-timer", daemon=True)
        self.th.start()

    def add(self, due_ns: int, fn: Callable[[], None]) -> None:
        with self.cond:
            entry = (due_ns, next(self.seq), fn)
            heapq.heappush(self.heap, entry)
            if self.heap[0] is entry:
                self.cond.notify()

    def _main(self) -> None:
        cond = self.cond
        heap = self.heap
        while True:
            with cond:
                while True:
                    if self.stop:
                        return
                    if not heap:
                        cond.wait()
                        continue
                    wait = heap[0][0] - time.monotonic_ns()
                    if wait <= 0:
                        break
                    cond.wait(wait / 1e9)
                _, _, fn = heapq.heappop(heap)
            fn()

    def close(self) -> None:
        with self.cond:
            self.stop = True
            self.cond.notify()
        self.th.join()
