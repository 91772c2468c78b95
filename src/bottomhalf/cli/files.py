"""``bh cat PATH...`` and ``bh write PATH VALUE...``: the kernel's files.

``bh cat`` prints any file the kernel provides (``/proc/interrupts``,
``/proc/softirqs``, ``/sys/kernel/tracing/trace``...), with cat's message for
a path that does not exist (``cat: /proc/nope: No such file or directory``).
``bh write PATH VALUE`` is the lesson's ``echo VALUE > PATH``: the words of
VALUE joined by spaces, plus a newline, as echo writes them.  A refused write
says what the shell would (``write error: Invalid argument``), in the form
``write: PATH: write error: <reason>``, with the kernel's explanation in
parentheses where it has one.
"""

from __future__ import annotations

import argparse
import sys

from .common import ToolError, add_name_option, connect, strerror


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cat", help="print a kernel file (/proc, /sys, tracefs)",
                       description="Print kernel files of a booted kernel.",
                       epilog="example: bh cat /proc/softirqs /proc/sys/kernel/printk")
    add_name_option(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(handler=cmd_cat)

    p = sub.add_parser("write", help="write a value to a kernel file (echo VALUE > PATH)",
                       description="Write VALUE (its words joined by spaces, and a newline, as "
                                   "echo writes them) to a kernel file.",
                       epilog="example: bh write /proc/sys/kernel/printk 1")
    add_name_option(p)
    p.add_argument("path", metavar="PATH")
    p.add_argument("value", nargs="+", metavar="VALUE")
    p.set_defaults(handler=cmd_write)


def cmd_cat(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError

    status = 0
    with connect(args) as c:
        for path in args.paths:
            try:
                text = c.call("read", path=path)
            except ClientError as e:
                if not e.errno:
                    raise
                sys.stdout.flush()
                sys.stderr.write(f"cat: {path}: {strerror(e.errno)}\n")
                status = 1
                continue
            sys.stdout.write(text)
    return status


def cmd_write(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError
    from bottomhalf.errnos import EISDIR, ENOENT

    path = args.path
    value = " ".join(args.value) + "\n"
    with connect(args) as c:
        try:
            c.call("write", path=path, value=value)
        except ClientError as e:
            if not e.errno:
                raise
            if e.errno in (ENOENT, EISDIR):  # the shell could not open it
                raise ToolError(f"write: {path}: {strerror(e.errno)}") from None
            raise ToolError(write_error(path, e.errno, e.detail)) from None
    return 0


def write_error(path: str, err: int, detail: str) -> str:
    """``write: PATH: write error: Invalid argument ('x' is not an integer...)``."""
    line = f"write: {path}: write error: {strerror(err)}"
    return line + (f" ({detail})" if detail else "")
