"""The ``bh`` command: a client of bottomhalf's public API.

One module per command group, each with ``add_parsers(subparsers)`` that
declares its subcommands and points each at a handler ``fn(args) -> int``:

* :mod:`.lesson` - ``bh lesson``: the deferred-work tutorial, walked and
  corrected on a sim kernel;
* :mod:`.run` - ``bh run``: load module files, let them run, unload them,
  print dmesg.

Command modules import only the standard library at import time; a handler
imports the kernel when it runs.  So ``bh --help`` starts fast, and
``import bottomhalf.cli`` loads no kernel code.  The library never imports
this package.

Errors a user can cause (a missing file, a module that fails to load) end
as one ``bh: error: ...`` line on stderr and a non-zero exit status, never a
traceback: handlers raise :class:`~.common.CliError`, or let a
``BottomHalfError`` through, and :func:`main` reports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import lesson, run
from .common import EXIT_FAILURE, EXIT_INTERRUPTED, CliError, error

GROUPS = (lesson, run)


def build_parser() -> argparse.ArgumentParser:
    from bottomhalf import __version__

    parser = argparse.ArgumentParser(
        prog="bh",
        description="Linux's deferred-work machinery (hard IRQs, softirqs, tasklets, workqueues, "
                    "timers) in Python.",
        epilog="Run 'bh COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"bh (bottomhalf) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bh`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except CliError as e:
        error(str(e))
        return e.status
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (bh lesson | head): stop quietly, and keep
        # the interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as e:
        from bottomhalf.errors import BottomHalfError

        if isinstance(e, BottomHalfError):
            error(str(e))
            return EXIT_FAILURE
        raise
