"""``bh trace``: record, show and export ftrace events (reference §8).

    bh trace record [-e EVENT]... [--settle MS] [--for MS] [-- COMMAND...]
    bh trace show [-f]
    bh trace export --perfetto FILE.json

``record`` works like ``trace-cmd record``: it enables the events (``-e irq``,
``-e irq:tasklet_entry``, ``-e 'workqueue:*'``; default: every irq and
workqueue event), empties the buffer, runs COMMAND (``bh`` there is this
very bh, talking to the same kernel) and then lets the kernel run until
nothing is pending, at most ``--settle`` ms of kernel time, so that the
deferred work the command caused is in the trace too.  Without a COMMAND it
records for ``--for`` ms of kernel time, or until Ctrl-C.  Afterwards the
tracing controls are as they were and the buffer holds the recording.

``show`` prints the ``trace`` file (``-f`` follows ``trace_pipe``, which
consumes what it prints, as on Linux).  ``export --perfetto`` writes the
buffer as Chrome/Perfetto JSON trace events (:mod:`bottomhalf.perfetto`),
with the internal ``tasklet_schedule`` events only the export uses.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import (
    EXIT_INTERRUPTED,
    CliError,
    Progress,
    add_name_option,
    call,
    connect,
    number_arg,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bottomhalf.client import Client

TRACEFS = "/sys/kernel/tracing"
DEFAULT_EVENTS = ["irq", "workqueue"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trace", help="record, show and export ftrace events (Perfetto JSON)",
                       description="Record the kernel's tracepoints, show them in the trace "
                                   "file's layout, export them for Perfetto UI.")
    actions = p.add_subparsers(dest="trace_command", metavar="ACTION", title="actions")
    p.set_defaults(handler=lambda a: _usage(p))

    r = actions.add_parser("record", help="record events while a command runs",
                           description="Enable events, clear the buffer, run COMMAND (or wait), "
                                       "let the kernel settle, and stop.",
                           epilog="example: bh trace record -e irq -e workqueue -- bh irq 17")
    add_name_option(r)
    r.add_argument("-e", "--event", dest="events", action="append", default=[], metavar="EVENT",
                   help="an event or system to record (repeatable; default: irq and workqueue)")
    r.add_argument("--settle", type=number_arg("--settle"), default=1000.0, metavar="MS",
                   help="after COMMAND, let the kernel run until idle, at most MS ms of kernel "
                        "time (default 1000; 0: stop at once)")
    r.add_argument("--for", dest="for_ms", type=number_arg("--for"), default=None, metavar="MS",
                   help="without COMMAND: record for MS ms of kernel time (default: until Ctrl-C)")
    r.add_argument("command", nargs="*", metavar="-- COMMAND", help="the command to trace")
    r.set_defaults(handler=cmd_record)

    s = actions.add_parser("show", help="print the trace buffer",
                           description="Print /sys/kernel/tracing/trace (or follow trace_pipe).")
    add_name_option(s)
    s.add_argument("-f", "--follow", action="store_true",
                   help="follow trace_pipe (consuming what it prints) until Ctrl-C")
    s.set_defaults(handler=cmd_show)

    x = actions.add_parser("export", help="write the trace for Perfetto UI / chrome://tracing",
                           description="Write the trace buffer as JSON trace events: a track per "
                                       "CPU and per task, slices for IRQs, softirqs, tasklets "
                                       "and work items, arrows from each raise/schedule/queue to "
                                       "the run it caused.")
    add_name_option(x)
    x.add_argument("--perfetto", required=True, metavar="FILE.json",
                   help="the file to write ('-' for stdout)")
    x.set_defaults(handler=cmd_export)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


# ----------------------------------------------------------------------
# record


def resolve_events(words: list[str], available: list[str]) -> list[str]:
    """Check each -e against available_events (``system:event`` lines) with the
    kernel's own set_event rules, before anything is changed."""
    from bottomhalf.trace_events import match_events

    events = {e: s for s, _, e in (a.partition(":") for a in available)}
    for word in words:
        if not match_events(word, events):
            raise CliError(f"no event '{word}' (see: bh cat {TRACEFS}/available_events)")
    return words


def cmd_record(args: argparse.Namespace) -> int:
    if args.command and args.for_ms is not None:
        raise CliError("--for is for recording without a COMMAND; with one, the recording "
                       "lasts as long as the command (and --settle)")
    with connect(args, timeout=None) as c:
        available = c.call("read", path=f"{TRACEFS}/available_events").split()
        events = resolve_events(args.events or DEFAULT_EVENTS, available)
        saved_events = c.call("read", path=f"{TRACEFS}/set_event").split()
        saved_on = c.call("read", path=f"{TRACEFS}/tracing_on").strip()
        c.call("write", path=f"{TRACEFS}/set_event", value=" ".join(events) + "\n")
        c.call("write", path=f"{TRACEFS}/trace", value="")
        c.call("write", path=f"{TRACEFS}/tracing_on", value="1\n")
        try:
            status = _run_recording(args, c)
        finally:
            c.call("write", path=f"{TRACEFS}/tracing_on", value="0\n")
            c.call("write", path=f"{TRACEFS}/set_event", value=" ".join(saved_events) + "\n")
            c.call("write", path=f"{TRACEFS}/tracing_on", value=saved_on + "\n")
        entries = c.call("status")["trace_entries"]
    hint = "" if not args.name else f" --name {args.name}"
    plural = "" if entries == 1 else "s"
    sys.stderr.write(f"bh: recorded {entries} event{plural} (see them: bh trace show{hint}; "
                     f"for Perfetto: bh trace export{hint} --perfetto trace.json)\n")
    return status


def _run_recording(args: argparse.Namespace, client: Client) -> int:
    import subprocess

    if not args.command:
        if args.for_ms is not None:
            client.call("run_for", ms=args.for_ms)
            return 0
        import signal

        sys.stderr.write("bh: recording; press Ctrl-C to stop\n")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    argv = list(args.command)
    if argv[0] == "bh":  # this bh, even where it is not on PATH
        argv = [sys.executable, "-m", "bottomhalf.cli", *argv[1:]]
    env = dict(os.environ)
    env["BH_NAME"] = client.name
    try:
        status = subprocess.run(argv, env=env).returncode
    except FileNotFoundError:
        raise CliError(f"{args.command[0]}: command not found") from None
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    if args.settle > 0:
        client.call("wait_idle", timeout_ms=args.settle)
    return status


# ----------------------------------------------------------------------
# show


def cmd_show(args: argparse.Namespace) -> int:
    if not args.follow:
        sys.stdout.write(call(args, "read", path=f"{TRACEFS}/trace"))
        return 0
    with connect(args, timeout=None) as c:
        try:
            for line in c.stream("trace_pipe"):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return 0


# ----------------------------------------------------------------------
# export


def cmd_export(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError
    from bottomhalf.perfetto import build_trace, write_trace

    progress = Progress()
    records: list[dict] = []
    with connect(args, timeout=None) as c:
        try:
            ncpus = c.call("status")["cpus"]
            for chunk in c.stream("trace_records"):
                records.extend(chunk["records"])
                if chunk["total"]:
                    progress.update(f"bh: fetching trace records {chunk['done']}/{chunk['total']}")
        except ClientError:
            progress.done()
            raise
    if not any(r["event"] != "tasklet_schedule" for r in records):
        progress.done()
        raise CliError("the trace buffer is empty: record something first "
                       "(bh trace record -- COMMAND)")
    trace = build_trace(records, ncpus=ncpus)

    def report(done: int, total: int) -> None:
        progress.update(f"bh: writing {args.perfetto}: {done}/{total} events "
                        f"({100 * done // max(total, 1)}%)")

    try:
        if args.perfetto == "-":
            write_trace(sys.stdout, trace)
        else:
            with open(args.perfetto, "w") as f:
                write_trace(f, trace, report)
    except BrokenPipeError:
        raise
    except OSError as e:
        progress.done()
        raise CliError(f"{args.perfetto}: {e.strerror or e}") from None
    progress.done()
    if args.perfetto != "-":
        slices = sum(1 for ev in trace["traceEvents"] if ev["ph"] == "X")
        sys.stderr.write(f"bh: wrote {len(records)} records as {len(trace['traceEvents'])} events "
                         f"({slices} slices, {trace['otherData']['flows']} flows) to "
                         f"{args.perfetto}; open it in https://ui.perfetto.dev or "
                         "chrome://tracing\n")
    return 0
