"""What every benchmark shares: timing, statistics, results, profiling, the CLI.

A benchmark measures ours and a baseline in the same process, alternating
their repeats so that a machine that slows down mid-run (other sessions share
its 2 cores) slows both alike, and reports the median.  Each benchmark module
has ``run(args) -> list[Result]`` and ``add_arguments(parser)``; :func:`main`
turns that into a command line with ``--json`` (used by ``run_all.py``) and
``--profile`` (a cProfile of ours in every thread, for diagnosing a missed
goal).

Conventions, kept by every benchmark:

* ``ratio`` is always ours / baseline in the row's unit, so for a rate
  (items/s) higher is better and for a time (us) lower is better; the goal
  says which way it must go.
* Clocks start immediately before the first call being measured and stop at
  the event the name claims (the last item has *run*, the work function has
  *started*), observed where it happens, never after a later wake-up.
* Set-up (creating the objects to queue, booting the kernel, starting the
  pool thread) is outside the timed region for both sides alike.
* The garbage collector stays on (it is part of the real cost) but both sides
  start each repeat from a collected heap.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import pstats
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

perf_ns = time.perf_counter_ns


@dataclass
class Result:
    """One row of the table."""

    name: str
    ours: float
    baseline: float
    unit: str
    goal: str
    met: bool | None  # None: no goal, the figure is reported
    baseline_name: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")


# ----------------------------------------------------------------------
# statistics
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank: the ceil(p% of n)-th smallest
    (p99 of 1,000 samples is the 990th, i.e. the 11th largest)."""
    if not values:
        raise ValueError("no samples")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def timer_overhead_ns(n: int = 20_000) -> float:
    """Median cost of ``t0 = perf_ns(); t1 = perf_ns()``: subtracted from per-call samples."""
    samples = []
    for _ in range(n):
        t0 = perf_ns()
        t1 = perf_ns()
        samples.append(t1 - t0)
    return float(median(samples))


def alternate(n: int, ours: Callable[[], float], base: Callable[[], float],
              warmup: int = 1) -> tuple[list[float], list[float]]:
    """Run ``warmup`` untimed rounds, then ``n`` rounds of ours and baseline,
    alternating which goes first; each callable returns its own measurement."""
    for _ in range(warmup):
        ours()
        base()
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        gc.collect()
        if i % 2 == 0:
            a.append(ours())
            gc.collect()
            b.append(base())
        else:
            b.append(base())
            gc.collect()
            a.append(ours())
    return a, b


# ----------------------------------------------------------------------
# formatting
def fmt_value(v: float, unit: str) -> str:
    if unit == "items/s" or unit.endswith("/s"):
        if v >= 1e6:
            return f"{v / 1e6:.2f}M {unit}"
        if v >= 1e3:
            return f"{v / 1e3:.1f}k {unit}"
        return f"{v:.0f} {unit}"
    if unit == "us":
        return f"{v:.3f} us" if v < 10 else f"{v:.1f} us"
    if unit == "s":
        return f"{v:.3f} s"
    return f"{v:.4g} {unit}"


def fmt_ratio(r: float) -> str:
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"{r:.4f}x"


def table(results: list[Result]) -> str:
    rows = [("benchmark", "ours", "baseline", "ratio", "goal", "met")]
    for r in results:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        rows.append((r.name, fmt_value(r.ours, r.unit), fmt_value(r.baseline, r.unit),
                     fmt_ratio(r.ratio), r.goal, met))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i in (0, 4) else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe(results: list[Result]) -> str:
    """The detailed lines a benchmark prints when run alone."""
    out = []
    for r in results:
        out.append(f"{r.name}")
        out.append(f"  ours      {fmt_value(r.ours, r.unit)}")
        out.append(f"  baseline  {fmt_value(r.baseline, r.unit)}  ({r.baseline_name})")
        met = "-" if r.met is None else ("met" if r.met else "NOT MET")
        out.append(f"  ratio     {fmt_ratio(r.ratio)} (ours/baseline)   goal: {r.goal}   {met}")
        if r.note:
            out.append(f"  note      {r.note}")
        for k, v in r.extra.items():
            out.append(f"  {k:<9s} {v}")
    return "\n".join(out)


# ----------------------------------------------------------------------
# profiling every thread (the real engine runs kernel code on many)
@contextmanager
def profile_all_threads() -> Iterator[list[tuple[str, cProfile.Profile]]]:
    """Profile this thread and every thread started inside the block.

    Threads must have ended (halt the kernel) before the block exits, so
    that their profiles are complete.  Yields (thread name, profile) pairs.
    """
    profiles: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()

    def start_in_thread(frame: Any, event: str, arg: Any) -> None:
        p = cProfile.Profile()
        with lock:
            profiles.append((threading.current_thread().name, p))
        sys.setprofile(None)
        p.enable()

    threading.setprofile(start_in_thread)
    main = cProfile.Profile()
    profiles.append(("MainThread", main))
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        threading.setprofile(None)


def _stats(profiles: list[cProfile.Profile], file: Any) -> pstats.Stats | None:
    stats: pstats.Stats | None = None
    for p in profiles:
        try:
            s = pstats.Stats(p, stream=file)
        except TypeError:  # a profile that recorded nothing
            continue
        if stats is None:
            stats = s
        else:
            stats.add(s)
    if stats is not None:
        stats.strip_dirs()
    return stats


def print_profile(profiles: list[tuple[str, cProfile.Profile]], top: int = 15,
                  file: Any = None) -> None:
    """Top functions of all threads together, then of each busy thread.

    Time in ``acquire`` of ``_thread.lock`` is mostly threads parked idle
    (a kworker waiting for work), not work: read the other lines.
    """
    file = file or sys.stdout
    stats = _stats([p for _, p in profiles], file)
    if stats is None:
        print("(no profile data)", file=file)
        return
    print(f"--- all threads: top {top} by own time (tottime) ---", file=file)
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- all threads: top {top} by cumulative time ---", file=file)
    stats.sort_stats("cumulative").print_stats(top)
    if len(profiles) == 1:
        return
    by_name: dict[str, list[cProfile.Profile]] = {}
    for name, p in profiles:
        by_name.setdefault(name, []).append(p)
    idle = ("<method 'acquire' of '_thread.lock' objects>", "<built-in method time.sleep>")
    busy: dict[str, tuple[float, pstats.Stats]] = {}
    for name, ps in by_name.items():
        st = _stats(ps, file)
        if st is not None:
            parked = sum(v[2] for k, v in st.stats.items() if k[2] in idle)  # type: ignore[attr-defined]
            busy[name] = (st.total_tt - parked, st)  # type: ignore[attr-defined]
    total = sum(b for b, _ in busy.values())
    for name, (b, st) in busy.items():
        if b >= 0.05 * total:
            print(f"--- thread {name}: {b:.3f} s of {total:.3f} s busy (not parked in a lock "
                  "or sleep); top 10 by own time ---", file=file)
            st.sort_stats("tottime").print_stats(10)


# ----------------------------------------------------------------------
# the command line
def main(doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
         run: Callable[[argparse.Namespace], list[Result]],
         profile: Callable[[argparse.Namespace], None] | None = None) -> None:
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(doc.strip().splitlines()[1:]))
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    if profile is not None:
        parser.add_argument("--profile", action="store_true",
                            help="profile ours (every thread) instead of measuring")
    add_arguments(parser)
    args = parser.parse_args()
    if getattr(args, "profile", False):
        assert profile is not None
        profile(args)
        return
    results = run(args)
    if args.json:
        print(json.dumps([asdict(r) | {"ratio": r.ratio} for r in results]))
    else:
        print(describe(results))
        print()
        print(table(results))
