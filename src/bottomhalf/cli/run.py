"""``bh run``: load module files, let them run, unload them, print dmesg.

    bh run FILE.py... [--engine sim|real] [--cpus N] [--seed S] [--for MS]
                      [--param MODULE.NAME=VALUE]...

The modules load in the order given (each init runs in an ``insmod`` task),
the kernel runs for ``--for`` milliseconds or, by default, until it is idle
(at most ``--timeout``), and the modules unload in reverse order.  On a
terminal, a long ``--for`` shows its progress on stderr; in a pipe, nothing.  Then
the whole kernel log goes to stdout, as ``dmesg`` prints it.

Anything that goes wrong on the way - a module that does not parse, an init
that fails, a kernel that can never make progress - is reported on stderr
after the log, one ``bh: error:`` line each, and the exit status is 1.  The
log is printed whenever the kernel booted, since it usually says why.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bottomhalf.modname import module_name

from .common import EXIT_FAILURE, EXIT_INTERRUPTED, CliError, Progress, error, number_arg

if TYPE_CHECKING:
    from bottomhalf import Kernel

# Without --for, run until idle but give up after this long (virtual time on
# sim, wall clock on real): a module with a periodic timer is never idle.
# On real it also bounds each insmod and rmmod, which could otherwise wait
# forever; sim detects such a hang by itself.
DEFAULT_TIMEOUT_MS = 10_000


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="load module files, let them run, unload them, print dmesg",
        description="Load the module files in order, let the kernel run, unload them in reverse "
                    "order and print the kernel log.",
        epilog="example: bh run examples/irq_driver.py --for 100 --param irq_driver.fires=5",
    )
    p.add_argument("files", nargs="+", metavar="FILE.py", help="module files, loaded in this order")
    p.add_argument("--engine", choices=("sim", "real"), default="sim",
                   help="sim: deterministic virtual time (default); real: OS threads, wall clock")
    p.add_argument("--cpus", type=int, default=2, metavar="N", help="number of CPUs (default 2)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the sim engine's choices (default 0)")
    p.add_argument("--for", dest="for_ms", type=number_arg("--for"), default=None, metavar="MS",
                   help="run for MS milliseconds (default: until idle)")
    p.add_argument("--timeout", dest="timeout_ms", type=number_arg("--timeout"), default=DEFAULT_TIMEOUT_MS,
                   metavar="MS", help="give up waiting for idle after MS milliseconds, and on real "
                                      f"for an init or exit function (default {DEFAULT_TIMEOUT_MS})")
    p.add_argument("--param", action="append", default=[], metavar="MODULE.NAME=VALUE",
                   help="set a module parameter before its init runs (repeatable)")
    p.set_defaults(handler=cmd_run)


def check_files(files: list[str]) -> None:
    for path in files:
        if os.path.isfile(path) and path.endswith(".py"):
            continue
        if os.path.isdir(path):
            raise CliError(f"{path}: is a directory, not a module file")
        if os.path.exists(path):
            raise CliError(f"{path}: a module file must be a .py file")
        hint = f" (to set a module parameter, use --param {path})" if "=" in path else ""
        raise CliError(f"{path}: no such file{hint}")


def parse_params(specs: list[str], names: list[str]) -> dict[str, dict[str, str]]:
    """``["irq_driver.fires=5"]`` -> ``{"irq_driver": {"fires": "5"}}``."""
    params: dict[str, dict[str, str]] = {name: {} for name in names}
    for spec in specs:
        target, eq, value = spec.partition("=")
        mod, dot, pname = target.rpartition(".")
        if not eq or not dot or not mod or not pname:
            raise CliError(f"--param {spec}: expected MODULE.NAME=VALUE, e.g. irq_driver.fires=5")
        if mod not in params:
            raise CliError(f"--param {spec}: no module '{mod}' among the files "
                           f"(modules: {', '.join(names)})")
        params[mod][pname] = value
    return params


def cmd_run(args: argparse.Namespace) -> int:
    check_files(args.files)
    names = [module_name(p) for p in args.files]
    params = parse_params(args.param, names)

    from bottomhalf import Kernel

    try:
        kernel = Kernel(cpus=args.cpus, engine=args.engine, seed=args.seed)
    except ValueError as e:
        raise CliError(str(e)) from None

    problems: list[str] = []
    interrupted = False
    with kernel as k:
        try:
            loaded = load_all(k, args, names, params, problems)
            if not problems:
                let_run(k, args, problems)
            for name in reversed(loaded):
                unload(k, args, name, problems)
        except KeyboardInterrupt:
            interrupted = True
        except CliError as e:  # real: a call that did not return; leave it to halt()
            problems.append(str(e))
        log = k.dmesg()
    sys.stdout.write("".join(line + "\n" for line in log))
    for problem in problems:
        error(problem)
    if interrupted:
        error("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_FAILURE if problems else 0


def load_all(k: Kernel, args: argparse.Namespace, names: list[str],
             params: dict[str, dict[str, str]], problems: list[str]) -> list[str]:
    """insmod each file in order, stopping at the first failure; returns the loaded names."""
    from bottomhalf.errors import BottomHalfError, KernelHang

    loaded: list[str] = []
    for path, name in zip(args.files, names, strict=True):
        try:
            _bounded(args, f"insmod {path}", k.insmod, path, **params[name])
        except KernelHang as e:
            problems.append(f"{name}: init hangs: {e}")
            break
        except BottomHalfError as e:
            problems.append(str(e))
            break
        loaded.append(name)
    return loaded


def let_run(k: Kernel, args: argparse.Namespace, problems: list[str]) -> None:
    """Run for --for MS, or until idle within --timeout."""
    from bottomhalf.errors import BottomHalfError, IdleTimeout

    try:
        if args.for_ms is None:
            k.run_until_idle(timeout_ms=args.timeout_ms)
        else:
            run_with_progress(k, args.for_ms, Progress())
    except IdleTimeout as e:
        problems.append(f"not idle after {args.timeout_ms:g} ms (use --for MS to run for a fixed "
                        "time); still busy:\n" + "\n".join(f"  {b}" for b in e.busy))
    except BottomHalfError as e:
        problems.append(str(e))


PROGRESS_STEPS = 100  # at most this many pieces, for the progress line
PROGRESS_MIN_MS = 50.0  # and none shorter than this (of kernel time)


def run_with_progress(k: Kernel, ms: float, progress: Progress) -> None:
    """``k.run_for(ms)``, in pieces that report progress on a terminal.

    On sim, running in pieces gives the very same run as one ``run_for``
    (tests/test_cli_run_progress.py checks it); in a pipe it is one piece.
    """
    if not progress.enabled or ms <= PROGRESS_MIN_MS:
        k.run_for(ms)
        return
    step = max(ms / PROGRESS_STEPS, PROGRESS_MIN_MS)
    done = 0.0
    try:
        while done < ms:
            piece = min(step, ms - done)
            k.run_for(piece)
            done += piece
            progress.update(f"bh: running {done:,.0f}/{ms:,.0f} ms ({100 * done / ms:.0f}%)")
    finally:
        progress.done()


def unload(k: Kernel, args: argparse.Namespace, name: str, problems: list[str]) -> None:
    from bottomhalf.errors import BottomHalfError

    try:
        _bounded(args, f"rmmod {name}", k.rmmod, name)
    except BottomHalfError as e:
        problems.append(f"rmmod {name}: {e}")


def _bounded(opts: argparse.Namespace, what: str, fn: Callable[..., Any], *args: Any,
             **kwargs: Any) -> Any:
    """Call ``fn``; on real, give up after --timeout (halting the kernel then wakes it)."""
    if opts.engine == "sim":
        return fn(*args, **kwargs)  # sim raises KernelHang when a call can never return
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box["exc"] = e

    th = threading.Thread(target=call, name="bh", daemon=True)
    th.start()
    th.join(opts.timeout_ms / 1000)
    if th.is_alive():
        raise CliError(f"{what} did not return after {opts.timeout_ms:g} ms; halting the kernel "
                       "(on the sim engine, bh says what it waits for)")
    if "exc" in box:
        raise box["exc"]
    return box.get("result")
