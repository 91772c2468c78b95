"""``bh boot``, ``bh halt``, ``bh status``: a kernel that stays up.

    bh boot [--cpus N] [--engine sim|real] [--seed S] [--name NAME] [--rate R]
            [--foreground] [--console [FILE]] [--device NAME=KIND:irq=N,...]...
    bh halt [--name NAME | --all]
    bh status [--name NAME]

``bh boot`` starts ``python -m bottomhalf.server`` in the background, in a
session of its own, and returns once its socket answers (the server says so
on a pipe, so there is no polling).  Its stderr goes to ``NAME.log`` next to
the socket; if it fails to start, its error is ours.  ``--foreground`` runs
the kernel in this process instead, with its console on this terminal, until
Ctrl-C or ``bh halt``.  ``--console`` without a file shows the console of a
background kernel on the terminal that booted it, as a serial console would.

Several kernels run side by side under different names; every other command
takes ``--name`` (or ``$BH_NAME``) to choose one.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import CliError, add_name_option, number_arg

BOOT_TIMEOUT_S = 60.0
HALT_TIMEOUT_S = 30.0
KILL_WAIT_S = 5.0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "boot", help="start a kernel that stays up between commands",
        description="Boot a kernel that stays up: later commands (bh insmod, bh dmesg, bh cat...) "
                    "talk to it until bh halt.  A sim kernel's virtual time follows the wall "
                    "clock at --rate.",
        epilog="example: bh boot --cpus 4 --device net0=bursty:irq=40,burst=8,gap=20",
    )
    add_name_option(p)
    p.add_argument("--cpus", type=int, default=2, metavar="N", help="number of CPUs (default 2)")
    p.add_argument("--engine", choices=("sim", "real"), default="sim",
                   help="sim: deterministic virtual time (default); real: OS threads, wall clock")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sim's seed (default 0)")
    p.add_argument("--rate", type=number_arg("--rate"), default=1.0, metavar="R",
                   help="sim: virtual seconds per wall-clock second (default 1; 0.1 = 10x "
                        "slower; 0 = time moves only when a command runs it)")
    p.add_argument("--foreground", action="store_true",
                   help="run here, with the console on this terminal, until Ctrl-C or bh halt")
    p.add_argument("--console", nargs="?", const="", default=None, metavar="FILE",
                   help="show the console (messages below console_loglevel) on FILE, or on this "
                        "terminal if no FILE is given")
    p.add_argument("--device", action="append", default=[], metavar="NAME=KIND:irq=N,...",
                   help="plug in a virtual device: KIND periodic (period=MS) or bursty "
                        "(burst=N,spacing=MS,gap=MS); cpu=C; repeatable")
    p.set_defaults(handler=cmd_boot)

    p = sub.add_parser("halt", help="stop a booted kernel",
                       description="Halt a booted kernel and wait until its process has exited.")
    add_name_option(p)
    p.add_argument("--all", action="store_true", help="halt every kernel of yours")
    p.add_argument("--timeout", type=number_arg("--timeout", strict=True),
                   default=HALT_TIMEOUT_S, metavar="S",
                   help=f"kill a kernel that has not halted after S seconds (default "
                        f"{HALT_TIMEOUT_S:g})")
    p.set_defaults(handler=cmd_halt)

    p = sub.add_parser("status", help="say which kernels run, and how",
                       description="Describe the booted kernels (all of them, or --name's).")
    add_name_option(p)
    p.set_defaults(handler=cmd_status)


# ----------------------------------------------------------------------
# bh boot


def cmd_boot(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError, StaleSocket, check_name, default_name, runtime_dir

    name = args.name or default_name()
    if not 1 <= args.cpus <= 64:
        raise CliError(f"--cpus must be from 1 to 64, not {args.cpus}")
    try:
        check_name(name)
        runtime_dir(create=True)
        _refuse_running(name)
    except StaleSocket:
        pass  # the server removes it
    except ClientError as e:
        raise CliError(str(e)) from None
    console = _console(args)
    if args.foreground:
        return _boot_foreground(args, name, console)
    return _boot_background(args, name, console)


def _refuse_running(name: str) -> None:
    from bottomhalf.client import Client, NoKernel, socket_path

    if not os.path.lexists(socket_path(name)):
        return
    try:
        Client(name, timeout=5).close()
    except NoKernel:  # it went away since the check above
        return
    hint = "" if name == "default" else f" --name {name}"
    raise CliError(f"a kernel named '{name}' is already running (see: bh status{hint}; "
                   f"boot another with --name)")


def _console(args: argparse.Namespace) -> str | None:
    if args.console is None or args.console == "" and args.foreground:
        return None
    if args.console:
        return os.path.abspath(args.console)
    for stream in (sys.stdout, sys.stderr):
        if stream.isatty():
            return os.ttyname(stream.fileno())
    raise CliError("--console without a FILE shows the console on this terminal, but this "
                   "command has none: give a file (--console FILE)")


def _server_argv(args: argparse.Namespace, name: str, console: str | None) -> list[str]:
    argv = ["--name", name, "--cpus", str(args.cpus), "--engine", args.engine,
            "--seed", str(args.seed), "--rate", repr(args.rate)]
    if console is not None:
        argv += ["--console", console]
    for spec in args.device:
        argv += ["--device", spec]
    return argv


def _boot_foreground(args: argparse.Namespace, name: str, console: str | None) -> int:
    from bottomhalf.client import ClientError
    from bottomhalf.errors import BottomHalfError
    from bottomhalf.server import KernelServer, run

    try:
        server = KernelServer(name, cpus=args.cpus, engine=args.engine, seed=args.seed,
                              rate=args.rate, console=console if console else sys.stdout,
                              devices=args.device)
    except (BottomHalfError, ClientError, ValueError, OSError) as e:
        raise CliError(str(e)) from None
    return run(server)


def _boot_background(args: argparse.Namespace, name: str, console: str | None) -> int:
    import select
    import subprocess

    import bottomhalf
    from bottomhalf.client import log_path

    src = os.path.dirname(os.path.dirname(os.path.abspath(bottomhalf.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log_file = log_path(name)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    ready_r, ready_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bottomhalf.server", *_server_argv(args, name, console),
             "--ready-fd", str(ready_w)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fd, pass_fds=(ready_w,),
            start_new_session=True, cwd="/", env=env)
    finally:
        os.close(fd)
        os.close(ready_w)
    try:
        readable, _, _ = select.select([ready_r], [], [], BOOT_TIMEOUT_S)
        answer = os.read(ready_r, 64) if readable else b""
    finally:
        os.close(ready_r)
    if answer.startswith(b"ready"):
        sys.stdout.write(f"kernel '{name}' up: {args.engine}, {args.cpus} CPU"
                         f"{'s' if args.cpus > 1 else ''}, seed {args.seed}"
                         + (f", rate {args.rate:g}" if args.engine == "sim" else "")
                         + f", pid {proc.pid} (stop it with: bh halt"
                         + ("" if name == "default" else f" --name {name}") + ")\n")
        return 0
    if not readable:
        proc.kill()
        proc.wait()
        raise CliError(f"kernel '{name}' did not come up within {BOOT_TIMEOUT_S:g} s "
                       f"(see {log_file})")
    proc.wait()
    raise CliError(_last_error(log_file) or f"kernel '{name}' failed to start (see {log_file})")


def _last_error(log_file: str) -> str:
    try:
        with open(log_file) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith("bh: error: "):
            return line[len("bh: error: "):]
    return lines[-1] if lines else ""


# ----------------------------------------------------------------------
# bh halt


def cmd_halt(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError, default_name, list_kernels

    if args.all:
        names = list_kernels()
        if not names:
            raise CliError("no kernel is running")
    else:
        names = [args.name or default_name()]
    failed = 0
    for name in names:
        try:
            _halt_one(name, args.timeout)
        except (CliError, ClientError) as e:
            if len(names) == 1:
                raise CliError(str(e)) from None
            from .common import error

            error(str(e))
            failed += 1
    return 1 if failed else 0


def _halt_one(name: str, timeout: float) -> None:
    from bottomhalf.client import Client, ClientError, StaleSocket, pid_path, remove_runtime_files

    try:
        client = Client(name, timeout=timeout)
    except StaleSocket:
        remove_runtime_files(name)
        sys.stderr.write(f"bh: kernel '{name}' was not running; removed its stale socket\n")
        return
    pid = _read_pid(pid_path(name))
    with client:
        try:
            client.call("halt")
        except ClientError as e:
            if pid is None:
                raise CliError(str(e)) from None
            _kill(name, pid, timeout)  # stuck in a request that never returns (a hung init)
            return
    if pid is not None and not _wait_exit(pid, timeout):
        _kill(name, pid, timeout)


def _kill(name: str, pid: int, timeout: float) -> None:
    """The last resort: SIGTERM, then SIGKILL, then clean up after it."""
    import signal

    from bottomhalf.client import remove_runtime_files

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_exit(pid, min(KILL_WAIT_S, timeout)):
            break
    remove_runtime_files(name)
    sys.stderr.write(f"bh: kernel '{name}' (pid {pid}) did not halt when asked; killed it\n")


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited (a pidfd where Linux has them)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        from bottomhalf.engines.realtime import wall_sleep

        for _ in range(int(timeout / 0.02)):
            if not _alive(pid):
                return True
            wall_sleep(0.02)
        return not _alive(pid)
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------
# bh status


def cmd_status(args: argparse.Namespace) -> int:
    from bottomhalf.client import NAME_ENV, list_kernels

    if args.name or os.environ.get(NAME_ENV):
        names = [args.name or os.environ[NAME_ENV]]
    else:
        names = list_kernels()
        if not names:
            raise CliError("no kernel is running (start one with: bh boot)")
    failed = 0
    for name in names:
        text, ok = _status_one(name, explicit=len(names) == 1)
        sys.stdout.write(text)
        failed += not ok
    return 1 if failed else 0


def _status_one(name: str, explicit: bool) -> tuple[str, bool]:
    from bottomhalf.client import Client, ClientError, StaleSocket

    try:
        with Client(name, timeout=10) as c:
            st = c.call("status")
    except StaleSocket:
        if explicit:
            raise CliError(f"kernel '{name}' is not running (stale socket; clean up with: "
                           f"bh halt --name {name})") from None
        return f"{name}: not running (stale socket; clean up with: bh halt --name {name})\n", False
    except ClientError as e:
        if explicit:
            raise CliError(str(e)) from None
        return f"{name}: {e}\n", False
    up = st["uptime_ns"] // 1000
    cpus = st["cpus"]
    lines = [f"{name}: {st['engine']} engine, {cpus} CPU{'s' if cpus > 1 else ''}, "
             f"seed {st['seed']}, up {up // 1_000_000}.{up % 1_000_000:06d} s"
             + (f", rate {st['rate']:g}" if st.get("rate") else "")
             + (" (time stands still between commands)" if st.get("rate") == 0 else "")
             + f", pid {st['pid']}"]
    lines.append("  modules: " + (" ".join(st["modules"]) or "none"))
    for dev in st.get("devices", []):
        lines.append(f"  device {dev}")
    if st.get("taint"):
        lines.append(f"  tainted: {st['taint']}")
    lines.append(f"  console_loglevel: {st['console_loglevel']}")
    lines.append(f"  socket: {st['socket']}")
    return "".join(line + "\n" for line in lines), True
