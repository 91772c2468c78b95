"""``bh lesson``: the popular deferred-work tutorial, run and corrected.

The tutorial ("Day 10: Using Workqueues & Tasklets", a copy is in the
project's shared reference) builds a tasklet module and a workqueue module
and then suggests some commands to watch them.  The lesson walks it step by
step on a sim kernel (2 CPUs, seed 0): each step shows the command a Linux
user types, what it means, and the kernel's real answer, and corrects the
tutorial where it is wrong (reference §12).  The steps and their prose are in
:mod:`.lesson_steps`; this module holds the command and the machinery.

Every command shown is run as shown, by :class:`~.shell.Shell`, on the
kernel; between commands a few seconds of virtual time pass, as they would
while a user types, drawn from a generator seeded with 0.  So the output is
the same, byte for byte, on every run.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import os
import random
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from .common import CliError, Style, want_colour

if TYPE_CHECKING:
    from bottomhalf import Kernel

    from .shell import Result, Shell

# The lesson's machine: what the tutorial's reader would have, made repeatable.
CPUS = 2
SEED = 0
WIDTH = 76
INDENT = "    "
# A user types a command in about THINK_S plus PER_CHAR_S per character.
THINK_S = (1.0, 2.5)
PER_CHAR_S = (0.04, 0.08)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lesson",
        help="walk the deferred-work tutorial on a sim kernel, correcting it",
        description="Walk the popular tasklet/workqueue tutorial on a simulated kernel "
                    f"({CPUS} CPUs, seed {SEED}): each step shows the command, what it means and the "
                    "kernel's real output, and corrects the tutorial where it is wrong.",
    )
    p.add_argument("--list", action="store_true", help="list the steps and exit")
    p.add_argument("--step", type=int, metavar="N",
                   help="show only step N (the steps before it still run, silently)")
    p.set_defaults(handler=cmd_lesson)


def cmd_lesson(args: argparse.Namespace) -> int:
    from .lesson_steps import INTRO, STEPS

    if args.list:
        for n, step in enumerate(STEPS, 1):
            sys.stdout.write(f"{n:2d}. {step.title}\n")
        return 0
    if args.step is not None and not 1 <= args.step <= len(STEPS):
        raise CliError(f"--step must be from 1 to {len(STEPS)}, not {args.step} "
                       "(bh lesson --list shows them)")
    examples = examples_dir()
    style = Style(want_colour(sys.stdout))
    from bottomhalf import Kernel

    with Kernel(cpus=CPUS, engine="sim", seed=SEED) as k:
        lesson = Lesson(k, examples, sys.stdout, style)
        if args.step is None:
            lesson.intro(INTRO)
        for n, step in enumerate(STEPS, 1):
            lesson.quiet = args.step is not None and n != args.step
            lesson.heading(f"Step {n} of {len(STEPS)}: {step.title}")
            step.run(lesson)
            if args.step == n:
                break
    return 0


def examples_dir() -> str:
    """The source tree's examples/, which holds the lesson's modules."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(here))), "examples")
    if not os.path.isfile(os.path.join(path, "tasklet_driver.py")):
        raise CliError(f"the lesson's modules are not where they should be ({path}): "
                       "run bh from a source checkout of bottomhalf (pip install -e .)")
    return path


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Lesson], None]


class Lesson:
    """Writes the lesson: prose, commands run on the kernel and their output."""

    def __init__(self, kernel: Kernel, examples: str, out: TextIO, style: Style) -> None:
        from .shell import Shell

        self.k = kernel
        self.examples = examples
        self.verbatim = os.path.join(examples, "tutorial_verbatim")
        self.shell: Shell = Shell(kernel, examples)
        self.rng = random.Random(SEED)
        self._out = out
        self.style = style
        self.quiet = False
        self.console = io.StringIO()
        self._console_seen = 0

    def write(self, text: str) -> None:
        if not self.quiet:
            self._out.write(text)

    # -- prose ---------------------------------------------------------
    def intro(self, text: str) -> None:
        first, _, rest = textwrap.dedent(text).strip("\n").partition("\n")
        self.write(self.style.heading(first) + "\n" + self.style.heading("=" * len(first)) + "\n\n")
        self.say(rest)

    def heading(self, title: str) -> None:
        self.write(self.style.heading(title) + "\n" + self.style.heading("-" * len(title)) + "\n\n")

    def say(self, text: str) -> None:
        """Paragraphs, filled to WIDTH; "- " starts a list item; "Tutorial:" and
        "Correction:" labels are highlighted."""
        for para in textwrap.dedent(text).strip("\n").split("\n\n"):
            lines = para.strip("\n").splitlines()
            if lines and lines[0].startswith("- "):
                items = "\n".join(lines).split("\n- ")
                for item in items:
                    body = " ".join(item.removeprefix("- ").split())
                    self.write(textwrap.fill(body, WIDTH, initial_indent="- ",
                                             subsequent_indent="  ") + "\n")
                self.write("\n")
                continue
            body = textwrap.fill(" ".join(" ".join(lines).split()), WIDTH)
            for label in ("Tutorial:", "Correction:"):
                if body.startswith(label):
                    body = self.style.warning(label) + body[len(label):]
            self.write(body + "\n\n")

    def block(self, text: str) -> None:
        """Verbatim text (code, a compiler's messages), indented."""
        lines = textwrap.dedent(text).strip("\n").splitlines()
        self.write("".join(f"{INDENT}{line}".rstrip() + "\n" for line in lines) + "\n")

    def changes(self, old: str, new: str) -> None:
        """The code lines that differ between two module files, as a unified
        diff with one line of context (docstrings and comments left out)."""
        diff = difflib.unified_diff(_code_lines(old), _code_lines(new), n=1, lineterm="")
        shown = [line for line in diff if not line.startswith(("---", "+++"))]
        self.block("\n".join("..." if line.startswith("@@") else line for line in shown[1:]))

    # -- commands ------------------------------------------------------
    def type(self, line: str) -> Result:
        """The user types ``line`` ("$ cmd" or "# cmd" for root): time passes,
        the command runs, and its output and anything new on the console show."""
        prompt, _, command = line.partition(" ")
        if prompt not in ("$", "#"):
            raise ValueError(f"a lesson command starts with a '$' or '#' prompt: {line!r}")
        pause_s = self.rng.uniform(*THINK_S) + len(line) * self.rng.uniform(*PER_CHAR_S)
        self.k.run_for(round(pause_s * 1000, 3))
        result = self.shell.run(command)
        self.write(INDENT + self.style.command(line) + "\n")
        self.write("".join(INDENT + out_line + "\n" for out_line in result.output.splitlines()))
        self.write("\n")
        return result

    def attach_console(self) -> None:
        self.k.attach_console(self.console)

    def console_news(self) -> str:
        """What reached the console since the last call."""
        text = self.console.getvalue()
        news = text[self._console_seen:]
        self._console_seen = len(text)
        return news

    def show_console(self) -> None:
        news = self.console_news()
        if news:
            self.say("The console shows:")
            self.block(news)
        else:
            self.say("The console shows nothing.")

    def loader_error(self) -> None:
        """Why the last insmod failed, as bottomhalf's loader words it."""
        err = self.shell.last_error
        detail = getattr(err, "detail", "") or str(err)
        self.block(textwrap.fill(detail.replace(self.examples + os.sep, ""), WIDTH - len(INDENT)))


def _code_lines(path: str) -> list[str]:
    """A module file without its docstring and comment lines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    first = ast.parse(text).body[0]
    start = (first.end_lineno or 0) if isinstance(first, ast.Expr) else 0
    return [line for line in text.splitlines()[start:] if not line.lstrip().startswith("#")]
