"""The handful of shell commands the lesson types, run on a bottomhalf Kernel.

The lesson shows the commands a Linux user would type; this runs those very
strings, so the command shown and the output shown cannot drift apart.  It
understands only what the lesson uses, with the messages kmod, cat and grep
print on failure:

    sudo insmod NAME.ko      sudo rmmod NAME       echo TEXT > FILE
    dmesg                    cat FILE              grep [-i] [-c] WORD [FILE]
    tail -N                  and pipelines of these with |

It is not a shell: no quoting beyond shlex, no variables, no globbing.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bottomhalf import Kernel
    from bottomhalf.errors import BottomHalfError

@dataclass
class Result:
    """What a command line printed (stdout and stderr together) and its exit status."""

    output: str
    status: int


class Shell:
    """Runs command lines against ``kernel``; ``NAME.ko`` is ``module_dir/NAME.py``."""

    def __init__(self, kernel: Kernel, module_dir: str) -> None:
        self.kernel = kernel
        self.module_dir = module_dir
        self.last_error: BottomHalfError | None = None  # why the last insmod/rmmod failed

    def run(self, line: str) -> Result:
        text = ""
        status = 0
        for stage in line.split("|"):
            argv = shlex.split(stage)
            if argv and argv[0] == "sudo":
                argv = argv[1:]
            if not argv:
                raise ValueError(f"empty command in {line!r}")
            text, status = self._command(argv, text)
        return Result(text, status)

    def _command(self, argv: list[str], stdin: str) -> tuple[str, int]:
        name, args = argv[0], argv[1:]
        if name == "insmod":
            return self._insmod(args)
        if name == "rmmod":
            return self._rmmod(args)
        if name == "dmesg" and not args:
            return "".join(line + "\n" for line in self.kernel.dmesg()), 0
        if name == "cat" and len(args) == 1:
            return self._cat(args[0])
        if name == "echo" and len(args) == 3 and args[1] == ">":
            return self._echo(args[0], args[2])
        if name == "tail" and len(args) == 1 and args[0].startswith("-"):
            lines = stdin.splitlines(keepends=True)
            n = int(args[0][1:])
            return "".join(lines[-n:] if n else []), 0
        if name == "grep":
            return self._grep(args, stdin)
        raise ValueError(f"the lesson shell does not know {' '.join(argv)!r}")

    def _insmod(self, args: list[str]) -> tuple[str, int]:
        from bottomhalf.errnos import kmod_strerror
        from bottomhalf.errors import ModuleLoadError

        filename = args[0]
        path = os.path.join(self.module_dir, filename.removesuffix(".ko") + ".py")
        params = dict(a.partition("=")[::2] for a in args[1:])
        if not os.path.isfile(path):
            return f"insmod: ERROR: could not load module {filename}: No such file or directory\n", 1
        try:
            self.kernel.insmod(path, **params)
        except ModuleLoadError as e:
            self.last_error = e
            return f"insmod: ERROR: could not insert module {filename}: {kmod_strerror(e.errno)}\n", 1
        self.last_error = None
        return "", 0

    def _rmmod(self, args: list[str]) -> tuple[str, int]:
        from bottomhalf.errors import ModuleError

        try:
            self.kernel.rmmod(args[0])
        except ModuleError as e:
            self.last_error = e
            return f"rmmod: ERROR: {e}\n", 1
        self.last_error = None
        return "", 0

    def _cat(self, path: str) -> tuple[str, int]:
        try:
            return self.kernel.read(path), 0
        except (FileNotFoundError, IsADirectoryError) as e:
            return f"cat: {path}: {e.strerror}\n", 1

    def _echo(self, text: str, path: str) -> tuple[str, int]:
        from bottomhalf.errnos import strerror
        from bottomhalf.errors import KernelFileError

        try:
            self.kernel.write(path, text + "\n")
        except (FileNotFoundError, IsADirectoryError) as e:
            return f"bash: {path}: {e.strerror}\n", 1
        except KernelFileError as e:
            return f"bash: echo: write error: {strerror(e.errno)}\n", 1
        return "", 0

    def _grep(self, args: list[str], stdin: str) -> tuple[str, int]:
        flags = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if not words or set(flags) - {"-i", "-c"}:
            raise ValueError(f"the lesson shell's grep does not take {args!r}")
        pattern = words[0]
        if len(words) > 1:
            text, status = self._cat(words[1])
            if status:
                return text.replace("cat:", "grep:"), 2
        else:
            text = stdin
        fold = "-i" in flags
        needle = pattern.lower() if fold else pattern
        hits = [line for line in text.splitlines(keepends=True)
                if needle in (line.lower() if fold else line)]
        status = 0 if hits else 1
        if "-c" in flags:
            return f"{len(hits)}\n", status
        return "".join(hits), status
