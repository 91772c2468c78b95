"""How fast a ``bh`` command starts: ``bh lsmod`` against a running kernel, measured
against ``python -c pass`` with the same interpreter in the same run.

    python bench/bench_cli_startup.py [--repeat N] [--json]

The goal (issue 4) is a ratio under 3: a terminal command must feel instant,
so the CLI imports only the command's own module, never ``typing``, and
talks to the kernel over a bare ``_socket``.  Each repeat runs both commands
one after the other (alternating, so a machine that slows down mid-run slows
both alike) and the medians are compared.

Before measuring, the package is byte-compiled (``compileall``), as ``pip
install`` leaves it: with ``PYTHONDONTWRITEBYTECODE`` set, as in some
sandboxes, every run would otherwise compile the CLI from source.  The kernel
is booted with ``--rate 0`` in a private runtime directory and halted after.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 3.0


def bh_command() -> list[str]:
    """The installed console script, as users run it (else ``python -m bottomhalf.cli``)."""
    script = Path(sys.executable).parent / "bh"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bottomhalf.cli"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode().strip()}")
    return elapsed * 1000


def measure(repeat: int) -> dict[str, float]:
    compileall.compile_dir(str(ROOT / "src" / "bottomhalf"), quiet=1)
    runtime = tempfile.mkdtemp(prefix="bhbench", dir="/tmp")
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime, BH_NAME="bench")
    bh = bh_command()
    try:
        subprocess.run([*bh, "boot", "--rate", "0"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        baseline, lsmod, version = [], [], []
        for i in range(repeat + 3):
            b = timed([sys.executable, "-c", "pass"], env)
            ls = timed([*bh, "lsmod"], env)
            v = timed([*bh, "--version"], env)
            if i >= 3:  # warm-up: page cache, pyc files
                baseline.append(b)
                lsmod.append(ls)
                version.append(v)
    finally:
        subprocess.run([*bh, "halt"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(runtime, ignore_errors=True)
    return {"baseline": statistics.median(baseline), "lsmod": statistics.median(lsmod),
            "version": statistics.median(version)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--repeat", type=int, default=30, help="timed runs of each command (default 30)")
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")
    args = p.parse_args()
    m = measure(args.repeat)
    ratio = m["lsmod"] / m["baseline"]
    rows = [
        {"name": "cli_startup: bh lsmod (running kernel)", "ours": round(m["lsmod"], 2),
         "baseline": round(m["baseline"], 2), "unit": "ms", "goal": f"< {GOAL:g}x",
         "met": ratio < GOAL, "baseline_name": "python -c pass",
         "note": f"median of {args.repeat}; console script {' '.join(bh_command())}"},
        {"name": "cli_startup: bh --version (no kernel)", "ours": round(m["version"], 2),
         "baseline": round(m["baseline"], 2), "unit": "ms", "goal": "", "met": None,
         "baseline_name": "python -c pass", "note": ""},
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            r = row["ours"] / row["baseline"]
            verdict = "" if row["met"] is None else ("  goal met" if row["met"] else "  GOAL MISSED")
            print(f"{row['name']:42s} {row['ours']:7.2f} ms  vs {row['baseline_name']} "
                  f"{row['baseline']:.2f} ms  = {r:.2f}x {row['goal']}{verdict}")
    return 0 if ratio < GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
