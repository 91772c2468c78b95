"""Run every benchmark and print one compact table (``./dev bench``).

Each benchmark runs in its own process, one after another (never two at
once: the machine has 2 cores and the real-engine benchmarks use both), with
its default sizes; its JSON results are collected and printed as a table of
name, ours, baseline, ratio (ours / baseline), goal and whether it is met.

    bench/run_all.py                 all of them
    bench/run_all.py switch sim      only those whose file name contains a word
    bench/run_all.py --repeat 3      passed on to every benchmark
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import Result, table

HERE = Path(__file__).resolve().parent

BENCHMARKS = [
    "bench_switch.py",
    "bench_tasklet_throughput.py",
    "bench_work_throughput.py",
    "bench_wake_latency.py",
    "bench_irq_latency.py",
    "bench_delayed_work.py",
    "bench_queue_work_cost.py",
    "bench_sim_sched.py",
    "bench_sim_workqueue.py",
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("only", nargs="*", help="run only benchmarks whose file name contains one of these")
    p.add_argument("--repeat", type=int, help="timed repeats for every benchmark")
    args = p.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or any(w in b for w in args.only)]
    if not chosen:
        print(f"Error: no benchmark matches {args.only}", file=sys.stderr)
        return 2
    results: list[Result] = []
    failed = []
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    for name in chosen:
        cmd = [sys.executable, str(HERE / name), "--json"]
        if args.repeat is not None:
            cmd += ["--repeat", str(args.repeat)]
        t0 = time.monotonic()
        print(f"running {name} ...", end="", flush=True, file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(f" {time.monotonic() - t0:.1f} s", file=sys.stderr)
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stdout + proc.stderr, file=sys.stderr)
            continue
        for row in json.loads(proc.stdout.strip().splitlines()[-1]):
            row.pop("ratio", None)
            results.append(Result(**row))
    load_after = os.getloadavg()[0]
    print(f"\n{len(results)} results from {len(chosen) - len(failed)} benchmarks in "
          f"{time.monotonic() - start:.0f} s (ratio = ours / baseline); "
          f"load average {load_before:.2f} before, {load_after:.2f} after")
    if max(load_before, load_after) > 1.0:
        print("warning: the machine was busy with other work: real-engine figures are unreliable")
    print()
    print(table(results))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
