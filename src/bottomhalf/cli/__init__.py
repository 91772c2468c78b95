"""The ``bh`` command: a client of bottomhalf's public API.

One module per command group, each with ``add_parsers(subparsers)`` that
declares its subcommands and points each at a handler ``fn(args) -> int``:

* :mod:`.lesson` - ``bh lesson``: the deferred-work tutorial, walked and
  corrected on a sim kernel;
* :mod:`.run` - ``bh run``: load module files, let them run, unload them,
  print dmesg;
* :mod:`.kernel` - ``bh boot``, ``bh halt``, ``bh status``: a kernel that
  stays up between commands (:mod:`bottomhalf.server`);
* :mod:`.modules` - ``bh insmod``, ``rmmod``, ``lsmod``, ``modinfo``, as kmod;
* :mod:`.dmesg` - ``bh dmesg``, as util-linux's;
* :mod:`.files` - ``bh cat`` and ``bh write``: the kernel's files;
* :mod:`.irq` - ``bh irq`` and ``bh devices``: interrupts from outside;
* :mod:`.trace` - ``bh trace record/show/export``;
* :mod:`.top` - ``bh top``: wq_monitor.py's table, softirq and IRQ rates.

Start-up is kept short (``bh lsmod`` against a running kernel is measured
against ``python -c pass`` by bench/bench_cli_startup.py): the parser imports
only the group of the command being run, command modules import only the
standard library at import time (never ``typing``), and a handler imports
what it needs when it runs.  ``import bottomhalf.cli`` loads no kernel code;
the library never imports this package.

Errors a user can cause (a missing file, a module that fails to load, no
kernel running) end as one line on stderr and a non-zero exit status, never
a traceback: handlers raise :class:`~.common.CliError` (printed as ``bh:
error: ...``), :class:`~.common.ToolError` (printed as the Linux tool would,
``insmod: ERROR: ...``), or let a ``BottomHalfError`` through, and
:func:`main` reports it.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import EXIT_FAILURE, EXIT_INTERRUPTED, CliError, ToolError, error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# command -> (the module that implements it, one line for 'bh --help')
COMMANDS: dict[str, tuple[str, str]] = {
    "lesson": ("lesson", "walk the deferred-work tutorial on a sim kernel, correcting it"),
    "run": ("run", "load module files, let them run, unload them, print dmesg"),
    "boot": ("kernel", "start a kernel that stays up between commands"),
    "halt": ("kernel", "stop a booted kernel"),
    "status": ("kernel", "say which kernels run, and how"),
    "insmod": ("modules", "load a module file into a booted kernel"),
    "rmmod": ("modules", "unload a module"),
    "lsmod": ("modules", "list the loaded modules"),
    "modinfo": ("modules", "show a module file's information (no kernel needed)"),
    "dmesg": ("dmesg", "print or control the kernel log, as util-linux's dmesg"),
    "cat": ("files", "print a kernel file (/proc, /sys, tracefs)"),
    "write": ("files", "write a value to a kernel file (echo VALUE > PATH)"),
    "irq": ("irq", "assert an interrupt line, as a device would"),
    "devices": ("irq", "list the virtual devices, or plug one in"),
    "trace": ("trace", "record, show and export ftrace events (Perfetto JSON)"),
    "top": ("top", "watch workqueues (wq_monitor.py), softirq and interrupt rates"),
}


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized with os.get_terminal_size(): argparse builds
    one for every add_argument(), and its own default imports shutil (~2 ms)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(1).columns
            except (ValueError, OSError):
                width = 80
            width -= 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _group(name: str) -> object:
    return __import__(f"{__name__}.{name}", fromlist=["add_parsers"])


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command is listed (for ``bh --help``), but only
    ``command``'s group is imported and its subparsers complete."""
    from bottomhalf import __version__

    parser = _Parser(
        prog="bh",
        description="Linux's deferred-work machinery (hard IRQs, softirqs, tasklets, workqueues, "
                    "timers) in Python.",
        epilog="Run 'bh COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"bh (bottomhalf) {__version__}")
    # prog given, so that argparse does not build a help formatter (and import
    # shutil) just to work out the subcommands' usage prefix
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", prog="bh",
                                parser_class=_Parser)
    wanted = {COMMANDS[command][0]} if command in COMMANDS else set()
    done: set[str] = set()
    for name, (mod, help_text) in COMMANDS.items():
        if mod in wanted:
            if mod not in done:
                _group(mod).add_parsers(sub)  # type: ignore[attr-defined]
                done.add(mod)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bh`` console script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(args_list))
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except ToolError as e:
        sys.stdout.flush()
        sys.stderr.write(str(e) + "\n")
        return e.status
    except CliError as e:
        error(str(e))
        return e.status
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (bh dmesg | head): stop quietly, and keep
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
