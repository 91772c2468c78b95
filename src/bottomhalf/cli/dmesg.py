"""``bh dmesg``: util-linux's dmesg on a booted kernel (reference §10.3).

    bh dmesg [-w|-W] [-l LEVELS] [-t|-T] [-x] [-r] [-c]
    bh dmesg -C | -n LEVEL

Lines are formatted as util-linux 2.38 prints them: ``[    1.000000] text``;
``-t`` drops the time, ``-T`` shows it as local wall-clock time (boot time
taken as now minus uptime, so on a sim kernel paced slower than the wall
clock it is as approximate as Linux warns it is), ``-r`` prefixes
``<level>``, ``-x`` prefixes ``kern  :info  : ``.  ``-l`` keeps only some
levels (``err,warn`` or numbers); ``-n`` sets console_loglevel (a number is
taken as is, a level name as that level plus one, as util-linux does).
``-w`` prints the log and then each new record as it is finished, until
Ctrl-C; ``-W`` only the new ones.  Output is flushed line by line when
following, so ``bh dmesg -w | grep ...`` works; ``bh dmesg | tail -10`` too.
"""

from __future__ import annotations

import argparse
import sys

from bottomhalf.printk_time import format_timestamp

from .common import EXIT_INTERRUPTED, CliError, add_name_option, call, connect

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
FACILITY_NAMES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
                  "cron", "authpriv", "ftp")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dmesg", help="print or control the kernel log, as util-linux's dmesg",
                       description="Print or control the kernel ring buffer of a booted kernel, "
                                   "with util-linux dmesg's options and formats.")
    add_name_option(p)
    action = p.add_mutually_exclusive_group()
    action.add_argument("-C", "--clear", action="store_true", help="clear the ring buffer")
    action.add_argument("-c", "--read-clear", action="store_true",
                        help="clear the ring buffer after printing its contents")
    action.add_argument("-n", "--console-level", metavar="LEVEL",
                        help="set the level of messages printed to the console")
    action.add_argument("-w", "--follow", action="store_true", help="wait for new messages")
    action.add_argument("-W", "--follow-new", action="store_true",
                        help="wait and print only new messages")
    p.add_argument("-l", "--level", metavar="LIST",
                   help="restrict output to the given levels (e.g. err,warn)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("-t", "--notime", action="store_true", help="don't show any timestamp")
    when.add_argument("-T", "--ctime", action="store_true",
                      help="show human-readable timestamps (may be inaccurate)")
    p.add_argument("-x", "--decode", action="store_true",
                   help="decode facility and level to readable strings")
    p.add_argument("-r", "--raw", action="store_true", help="print the raw message buffer")
    p.add_argument("-k", "--kernel", action="store_true", help="kernel messages (all of them are)")
    p.set_defaults(handler=cmd_dmesg)


def parse_level(text: str, offset: int) -> int:
    """util-linux's parse_level(): a number (minus ``offset``) or a level name,
    plus ``offset``."""
    if text[:1].isdigit():
        try:
            x = int(text) - offset
        except ValueError:
            x = -1
        if 0 <= x < len(LEVEL_NAMES):
            return x + offset
    elif text in LEVEL_NAMES:
        return LEVEL_NAMES.index(text) + offset
    raise CliError(f"unknown level '{text}'")


def cmd_dmesg(args: argparse.Namespace) -> int:
    if args.console_level is not None:
        call(args, "console_level", level=parse_level(args.console_level, 1))
        return 0
    levels = None
    if args.level is not None:
        levels = {parse_level(word, 0) for word in args.level.split(",") if word}
        if not levels:
            raise CliError(f"unknown level '{args.level}'")
    fmt = Formatter(args, levels)
    if args.follow or args.follow_new:
        return follow(args, fmt)
    reply = call(args, "dmesg", clear=args.clear, read_clear=args.read_clear)
    if args.ctime:
        fmt.set_uptime(reply["uptime_ns"])
    out = []
    for rec in reply["records"]:
        out.extend(fmt.lines(rec))
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0


def follow(args: argparse.Namespace, fmt: Formatter) -> int:
    if args.ctime:
        fmt.set_uptime(call(args, "status")["uptime_ns"])
    out = sys.stdout
    with connect(args, timeout=None) as c:
        try:
            for rec in c.stream("dmesg", new_only=bool(args.follow_new)):
                lines = fmt.lines(rec)
                if lines:
                    out.write("".join(line + "\n" for line in lines))
                    out.flush()
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return 0


class Formatter:
    """One record -> the lines dmesg prints for it."""

    def __init__(self, args: argparse.Namespace, levels: set[int] | None) -> None:
        self.levels = levels
        self.notime = args.notime
        self.ctime = args.ctime
        self.decode = args.decode
        self.raw = args.raw
        self.boot_wall = 0.0

    def set_uptime(self, uptime_ns: int) -> None:
        from bottomhalf.engines.realtime import wall_seconds

        self.boot_wall = wall_seconds() - uptime_ns / 1e9

    def stamp(self, ts_ns: int) -> str:
        if self.notime:
            return ""
        if self.ctime:
            import time

            when = time.localtime(self.boot_wall + ts_ns / 1e9)
            return time.strftime("[%a %b %e %H:%M:%S %Y] ", when)
        return format_timestamp(ts_ns) + " "

    def lines(self, rec: dict) -> list[str]:
        level = rec["level"]
        if self.levels is not None and level not in self.levels:
            return []
        facility = rec.get("facility", 0)
        if self.raw:
            prefix = f"<{facility * 8 + level}>"
        elif self.decode:
            fac = FACILITY_NAMES[facility] if facility < len(FACILITY_NAMES) else str(facility)
            prefix = f"{fac:<6}:{LEVEL_NAMES[level]:<6}: "
        else:
            prefix = ""
        stamp = self.stamp(rec["ts_ns"])
        return [prefix + stamp + text for text in rec["text"].split("\n")]
