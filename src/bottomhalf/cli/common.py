"""What every ``bh`` command shares: error reporting and terminal style.

Standard library only: this module is imported by ``bh --help``.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

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

    def dim(self, text: str) -> str:
        return self._sgr("2", text)
