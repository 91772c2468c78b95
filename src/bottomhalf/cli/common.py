"""What every ``bh`` command shares: error reporting, terminal style, the
connection to a booted kernel and progress reports.

Standard library only at import time: this module is imported by ``bh --help``
and by every command, so it must stay light (bench/bench_cli_startup.py).
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing itself costs ~8 ms of start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    from bottomhalf.client import Client

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class CliError(Exception):
    """A problem the user can fix; reported as ``bh: error: <message>``."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def error(message: str) -> None:
    """Report an error on stderr: the first line prefixed, any detail lines as they are."""
    first, _, rest = message.partition("\n")
    sys.stdout.flush()
    sys.stderr.write(f"bh: error: {first}\n")
    if rest:
        sys.stderr.write(rest.rstrip("\n") + "\n")
    sys.stderr.flush()


def want_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    """ANSI styling that turns into plain text when colour is off."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def _sgr(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour and text else text

    def heading(self, text: str) -> str:
        return self._sgr("1", text)

    def command(self, text: str) -> str:
        return self._sgr("1;36", text)

    def warning(self, text: str) -> str:
        return self._sgr("1;33", text)

def number_arg(what: str, *, minimum: float = 0.0, strict: bool = False,
               integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``minimum`` (> with ``strict``)."""

    def parse(text: str) -> float:
        try:
            value: float = int(text, 0) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{what} must be {kind}, not {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value == float("inf"):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"{what} must be finite and {bound}, not {text}")
        return value

    return parse


class ToolError(CliError):
    """An error in the words of the Linux tool a command imitates, printed as
    it is (``insmod: ERROR: ...``, ``cat: /proc/nope: ...``), without bh's prefix."""


# ----------------------------------------------------------------------
# talking to a booted kernel


def add_name_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", metavar="NAME", default=None,
                   help="the kernel to talk to (default: $BH_NAME, else 'default')")


class Session:
    """``with connect(args) as c:``: the connection, closed at the end; a
    ClientError escaping the block (a refused request, a lost kernel) becomes
    one ``bh: error:`` line.  A command that words some refusals as the Linux
    tool does catches those inside the block and re-raises the rest."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        from bottomhalf.client import ClientError

        self.client.close()
        if isinstance(exc, ClientError):
            raise CliError(str(exc)) from None


def connect(args: argparse.Namespace, timeout: float | None = 60.0) -> Session:
    """A connection to the kernel ``--name`` names; a refusal becomes one error line."""
    from bottomhalf.client import Client, ClientError

    try:
        return Session(Client(args.name, timeout=timeout))
    except ClientError as e:
        raise CliError(str(e)) from None


def call(args: argparse.Namespace, op: str, **kwargs: Any) -> Any:
    """One request to the kernel; any refusal becomes one ``bh: error:`` line."""
    with connect(args) as c:
        return c.call(op, **kwargs)


def strerror(err: int) -> str:
    """Linux's text for an errno (not the host's)."""
    from bottomhalf.errnos import strerror as linux_strerror

    return linux_strerror(err)


# ----------------------------------------------------------------------
# progress on a terminal


class Progress:
    """A one-line report of a long operation on a terminal's stderr, rewritten
    in place; nothing at all when stderr is a pipe or a file, or TERM=dumb."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.shown = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\033[K" + text)
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
