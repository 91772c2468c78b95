"""``bh top``: workqueues as ``tools/workqueue/wq_monitor.py`` shows them, plus
softirq and interrupt rates per CPU (reference §9.1).

    bh top [-1] [-i SECS] [-j] [REGEX...]

Each round prints wq_monitor.py's table, byte for byte: a blank line, its
header, one row per workqueue (``total``, ``infl``, ``CPUtime``,
``CPUitsv``, ``CMW/RPR``, ``mayday``, ``rescued``, with ``-`` where a
column does not apply), then two tables of our own: softirqs and interrupts
per second and CPU, from the differences of ``/proc/softirqs`` and
``/proc/interrupts`` over the round, per second of the kernel's time (on a
paced sim kernel, virtual seconds).  The first round, and ``-1``, show
averages since boot.  REGEX keeps only the workqueues whose names match.

On a terminal each round redraws the screen; in a pipe the rounds follow one
another as wq_monitor.py prints them.  ``-j`` prints JSON lines: one per
workqueue with wq_monitor.py -j's keys in its order (wq_monitor.py prints
Python dicts there; these are real JSON, so ``jq`` can read them), and one
per CPU with its rates.  Ctrl-C ends it.
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import wqmonitor
from .common import CliError, add_name_option, connect, number_arg

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WQ_KEYS = wqmonitor.KEYS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="watch workqueues (wq_monitor.py), softirq and interrupt rates",
                       description="Show wq_monitor.py's workqueue table and softirq and "
                                   "interrupt rates per CPU, refreshed every interval.")
    add_name_option(p)
    p.add_argument("-1", "--once", action="store_true", help="print once and exit")
    p.add_argument("-i", "--interval", type=number_arg("--interval"), default=1.0, metavar="SECS",
                   help="refresh interval in seconds (default 1; 0 = print once)")
    p.add_argument("-j", "--json", action="store_true", help="JSON lines, as wq_monitor.py -j")
    p.add_argument("patterns", nargs="*", metavar="REGEX",
                   help="only workqueues whose names match")
    p.set_defaults(handler=cmd_top)


# ----------------------------------------------------------------------
# wq_monitor.py's table


wq_header = wqmonitor.header
wq_row = wqmonitor.row


# ----------------------------------------------------------------------
# /proc/softirqs and /proc/interrupts


def parse_counters(text: str, ncpus: int) -> dict[str, tuple[list[int], str]]:
    """Rows of /proc/softirqs or /proc/interrupts: label -> (per-CPU counts, description)."""
    rows: dict[str, tuple[list[int], str]] = {}
    for line in text.splitlines()[1:]:
        label, colon, rest = line.partition(":")
        if not colon:
            continue
        words = rest.split()
        counts = []
        for w in words[:ncpus]:
            if not w.isdigit():
                break
            counts.append(int(w))
        if len(counts) < ncpus:  # ERR and MIS have one total, not one per CPU
            continue
        rows[label.strip()] = (counts, " ".join(words[ncpus:]))
    return rows


def rates(now: dict[str, tuple[list[int], str]], before: dict[str, tuple[list[int], str]] | None,
          seconds: float) -> dict[str, tuple[list[float], str]]:
    out = {}
    for label, (counts, desc) in now.items():
        old = before.get(label, ([0] * len(counts), ""))[0] if before else [0] * len(counts)
        out[label] = ([(c - o) / seconds if seconds > 0 else 0.0 for c, o in zip(counts, old,
                                                                                   strict=True)],
                      desc)
    return out


def rate_table(title: str, table: dict[str, tuple[list[float], str]], ncpus: int,
               keep_zero: bool) -> list[str]:
    lines = [f"{title:<14}" + "".join(f"{'CPU' + str(c):>12}" for c in range(ncpus))]
    for label, (values, desc) in table.items():
        if not keep_zero and not any(values):
            continue
        lines.append(f"{label + ':':>14}" + "".join(f"{v:12.1f}" for v in values)
                     + (f"  {desc}" if desc else ""))
    return lines


class Sampler:
    """Successive samples of one kernel and the rates between them."""

    def __init__(self, patterns: list[str]) -> None:
        import re

        try:
            self.filter = re.compile("|".join(patterns)) if patterns else None
        except re.error as e:
            raise CliError(f"bad REGEX: {e}") from None
        self.before: dict[str, Any] | None = None

    def round(self, sample: dict[str, Any]) -> dict[str, Any]:
        ncpus = sample["cpus"]
        soft = parse_counters(sample["softirqs"], ncpus)
        irqs = parse_counters(sample["interrupts"], ncpus)
        b = self.before
        if b is None:
            seconds = sample["uptime_ns"] / 1e9
            soft_r, irq_r = rates(soft, None, seconds), rates(irqs, None, seconds)
        else:
            seconds = (sample["uptime_ns"] - b["uptime_ns"]) / 1e9
            soft_r, irq_r = rates(soft, b["soft"], seconds), rates(irqs, b["irqs"], seconds)
        since_boot = b is None
        self.before = {"uptime_ns": sample["uptime_ns"], "soft": soft, "irqs": irqs}
        wqs = [w for w in sample["workqueues"]
               if self.filter is None or self.filter.search(w["name"])]
        return {"ncpus": ncpus, "uptime_ns": sample["uptime_ns"], "workqueues": wqs,
                "softirqs": soft_r, "interrupts": irq_r, "seconds": seconds,
                "since_boot": since_boot}


def format_round(r: dict[str, Any]) -> str:
    ncpus = r["ncpus"]
    span = "since boot" if r["since_boot"] else f"over the last {r['seconds']:.3f} s"
    lines = ["", wq_header()]
    lines += [wq_row(w) for w in r["workqueues"]]
    lines.append("")
    lines += rate_table("softirqs/s", r["softirqs"], ncpus, True)
    lines.append("")
    lines += rate_table("interrupts/s", r["interrupts"], ncpus, False)
    lines.append(f"(rates per second of kernel time, {span})")
    return "\n".join(lines) + "\n"


def json_lines(r: dict[str, Any], now: float) -> str:
    out = []
    for w in r["workqueues"]:
        row: dict[str, Any] = {"timestamp": now}
        row.update((k, w[k]) for k in WQ_KEYS)
        out.append(json.dumps(row))
    for cpu in range(r["ncpus"]):
        out.append(json.dumps({
            "timestamp": now, "cpu": cpu, "uptime": r["uptime_ns"] / 1e9,
            "interval": r["seconds"], "since_boot": r["since_boot"],
            "softirqs": {k: v[cpu] for k, (v, _) in r["softirqs"].items()},
            "interrupts": {k: v[cpu] for k, (v, _) in r["interrupts"].items()},
        }))
    return "".join(line + "\n" for line in out)


def cmd_top(args: argparse.Namespace) -> int:
    from bottomhalf.engines.realtime import wall_seconds, wall_sleep

    once = args.once or args.interval == 0
    sampler = Sampler(args.patterns)
    out = sys.stdout
    redraw = out.isatty() and not args.json
    try:
        with connect(args) as c:
            while True:
                r = sampler.round(c.call("top_sample"))
                if args.json:
                    out.write(json_lines(r, wall_seconds()))
                elif redraw and not once:
                    up = r["uptime_ns"] / 1e9
                    out.write("\033[H\033[2J" + f"bh top - kernel '{c.name}', up {up:.3f} s - "
                              f"every {args.interval:g} s - Ctrl-C to quit\n" + format_round(r))
                else:
                    out.write(format_round(r))
                out.flush()
                if once:
                    return 0
                wall_sleep(args.interval)
    except KeyboardInterrupt:
        return 0
