"""The bh command, run as a real subprocess: bh run's happy paths and each bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, example, write_module

BOOT_LINES = 3


def bh(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bottomhalf.cli ARGS`` in the source tree, capturing its output."""
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "bottomhalf.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 1, a 'bh: error:' line naming the problem, no traceback."""
    assert r.returncode == 1, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("bh: error: "), r.stderr
    for word in words:
        assert word in first
    assert "Traceback" not in r.stderr


def log_messages(stdout: str) -> list[str]:
    """dmesg output without timestamps and boot lines."""
    return [line.split("] ", 1)[1] for line in stdout.splitlines()[BOOT_LINES:]]


# ----------------------------------------------------------------------
# the command itself


def test_import_loads_no_kernel_code() -> None:
    """'import bottomhalf.cli' and building the parser load only the CLI's own modules."""
    code = ("import sys, bottomhalf.cli as c; c.build_parser(); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('bottomhalf', 'greenlet')))))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=True)
    loaded = r.stdout.split()
    assert "bottomhalf.cli" in loaded
    assert [m for m in loaded if m != "bottomhalf" and not m.startswith("bottomhalf.cli")] == []


def test_help_loads_no_kernel_code() -> None:
    """'bh --help' prints the commands without importing the kernel."""
    code = ("import sys, bottomhalf.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', ' '.join(m for m in sys.modules if m.startswith('bottomhalf.')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=True)
    assert "lesson" in r.stdout and "run" in r.stdout
    loaded = r.stdout.split("LOADED", 1)[1].split()
    assert [m for m in loaded if not m.startswith("bottomhalf.cli")] == []


def test_help_lists_every_command() -> None:
    """bh --help lists every command with its one-line help."""
    from bottomhalf.cli import COMMANDS

    r = bh("--help")
    assert r.returncode == 0
    for name, (_, help_text) in COMMANDS.items():
        assert [name, *help_text.split()] in [line.split() for line in r.stdout.splitlines()]


def test_no_command_prints_usage() -> None:
    """bh without a command prints its usage on stderr and exits 2."""
    r = bh()
    assert r.returncode == 2
    assert r.stderr.startswith("usage: bh")
    assert r.stdout == ""


def test_version() -> None:
    """bh --version names the package version."""
    r = bh("--version")
    assert r.returncode == 0
    assert r.stdout == "bh (bottomhalf) 0.1.0\n"


# ----------------------------------------------------------------------
# bh run: happy paths


def test_run_tasklet_driver_prints_dmesg_exactly() -> None:
    """bh run loads, runs until idle, unloads and prints the whole log, timestamps included."""
    r = bh("run", "examples/tasklet_driver.py")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].startswith("[    0.000000] Linux version ")
    assert lines[BOOT_LINES:] == [
        "[    0.000000] tasklet_driver: loading out-of-tree module taints kernel.",
        "[    0.000000] Tasklet scheduled",
        "[    0.000000] Tasklet executed with data: 1234",
        "[    0.000000] Tasklet removed",
    ]


def test_run_unloads_in_reverse_order() -> None:
    """Modules load in the order given and unload in the reverse order."""
    r = bh("run", "examples/tasklet_driver.py", "examples/workqueue_driver.py")
    assert r.returncode == 0, r.stderr
    assert [m for m in log_messages(r.stdout) if m.startswith(("Tasklet", "Workqueue"))] == [
        "Tasklet scheduled",
        "Tasklet executed with data: 1234",
        "Workqueue scheduled",
        "Workqueue executed in process context",
        "Workqueue removed",
        "Tasklet removed",
    ]


def test_run_irq_driver_with_param_and_duration() -> None:
    """--param sets a module parameter before init; --for runs exactly that long."""
    r = bh("run", "examples/irq_driver.py", "--for", "100", "--param", "irq_driver.fires=2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()[BOOT_LINES:]
    assert [line for line in lines if "tasklet on CPU" in line] == [
        "[    0.024000] irq_driver: tasklet on CPU 0 handles event 1 (in_softirq=1)",
        "[    0.048000] irq_driver: tasklet on CPU 0 handles event 2 (in_softirq=1)",
    ]
    assert lines[-1] == "[    0.100000] irq_driver: removed after 2 interrupts"


def test_run_until_idle_by_default() -> None:
    """Without --for, bh run stops as soon as the kernel is idle."""
    r = bh("run", "examples/irq_driver.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[    0.088000] irq_driver: removed after 3 interrupts"


def test_run_same_seed_same_output() -> None:
    """Two sim runs with the same seed print the same bytes."""
    args = ("run", "examples/irq_driver.py", "--cpus", "4", "--seed", "7")
    first, second = bh(*args), bh(*args)
    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert first.stdout.endswith("irq_driver: removed after 3 interrupts\n")
    assert second.stdout == first.stdout


def test_run_sleepy_tasklet_reports_in_the_log() -> None:
    """A module bug is the kernel's to report: the splat is in dmesg and bh exits 0."""
    r = bh("run", "examples/sleepy_tasklet.py")
    assert r.returncode == 0, r.stderr
    assert ("BUG: sleeping function called from invalid context at examples/sleepy_tasklet.py:20"
            in r.stdout)
    assert "BUG: scheduling while atomic: ksoftirqd/0/3/0x00000101" in r.stdout


def test_run_on_real_engine() -> None:
    """On real threads the same module logs the same lines in the same order."""
    r = bh("run", "--engine", "real", "examples/tasklet_driver.py")
    assert r.returncode == 0, r.stderr
    assert "(bottomhalf@real)" in r.stdout
    assert [m for m in log_messages(r.stdout) if m.startswith("Tasklet")] == [
        "Tasklet scheduled", "Tasklet executed with data: 1234", "Tasklet removed"]


# ----------------------------------------------------------------------
# bh run: bad input


def test_run_missing_file() -> None:
    """A missing file is refused before the kernel boots."""
    r = bh("run", "examples/no_such_module.py")
    assert_user_error(r, "examples/no_such_module.py: no such file")
    assert r.stdout == ""


def test_run_parameter_given_as_file_gets_a_hint() -> None:
    """NAME=VALUE given without --param: the error says how to set it."""
    r = bh("run", "examples/irq_driver.py", "irq_driver.fires=5")
    assert_user_error(r, "no such file", "--param irq_driver.fires=5")


def test_run_not_a_python_file() -> None:
    """Only .py files are module files."""
    assert_user_error(bh("run", "README.md"), "README.md: a module file must be a .py file")


@pytest.mark.parametrize("spec,words", [
    ("fires=5", ["--param fires=5", "MODULE.NAME=VALUE"]),
    ("irq_driver.fires", ["MODULE.NAME=VALUE"]),
    ("other.fires=5", ["no module 'other'", "irq_driver"]),
])
def test_run_bad_param(spec: str, words: list[str]) -> None:
    """A malformed --param, or one for a module not given, is refused before boot."""
    r = bh("run", "examples/irq_driver.py", "--param", spec)
    assert_user_error(r, *words)
    assert r.stdout == ""


def test_run_param_value_rejected_by_the_kernel() -> None:
    """A value the parameter's type refuses fails the load; dmesg says which."""
    r = bh("run", "examples/irq_driver.py", "--param", "irq_driver.fires=many")
    assert_user_error(r, "could not insert module irq_driver", "Invalid parameters")
    assert "irq_driver: `many' invalid for parameter `fires'" in r.stdout


def test_run_module_that_does_not_parse(tmp_path: Path) -> None:
    """A syntax error names the file and line; the boot log is still printed."""
    path = write_module(tmp_path, "broken", "def broken_init(:\n    return 0\n")
    r = bh("run", path)
    assert_user_error(r, "could not insert module broken", f"{path}:3: SyntaxError")
    assert "Linux version" in r.stdout


def test_run_tutorial_verbatim_module() -> None:
    """The tutorial's tasklet module as written is refused, naming the clash."""
    r = bh("run", "examples/tutorial_verbatim/tasklet_driver.py")
    assert_user_error(r, "could not insert module tasklet_driver", "'tasklet_init' is the name of "
                                                                   "a kernel function")


def test_run_init_returns_errno(tmp_path: Path) -> None:
    """An init returning -ENOMEM fails the load with that errno; dmesg is printed."""
    path = write_module(tmp_path, "nomem", """
        def nomem_init():
            pr_info("nomem: giving up\\n")
            return -ENOMEM

        module_init(nomem_init)
        MODULE_LICENSE("GPL")
    """)
    r = bh("run", path)
    assert_user_error(r, "could not insert module nomem: Cannot allocate memory")
    assert log_messages(r.stdout)[-1] == "nomem: giving up"


def test_run_init_raises(tmp_path: Path) -> None:
    """An exception in init is an Oops in dmesg and one error line, not a traceback on stderr."""
    path = write_module(tmp_path, "raiser", """
        def raiser_init():
            raise ValueError("boom")

        module_init(raiser_init)
        MODULE_LICENSE("GPL")
    """)
    r = bh("run", path)
    assert_user_error(r, "could not insert module raiser", "ValueError: boom")
    assert "Oops: 0000 [#1] PREEMPT SMP NOPTI" in r.stdout


def test_run_missing_license(tmp_path: Path) -> None:
    """A module without MODULE_LICENSE is refused, as modpost refuses it."""
    path = write_module(tmp_path, "nolicense", """
        def nolicense_init():
            return 0

        module_init(nolicense_init)
    """)
    assert_user_error(bh("run", path), "missing MODULE_LICENSE()")


def test_run_init_hangs_on_sim(tmp_path: Path) -> None:
    """An init that waits forever is reported as a hang; earlier modules still unload."""
    path = write_module(tmp_path, "stuck", """
        done = completion()

        def stuck_init():
            init_completion(done)
            wait_for_completion(done)
            return 0

        module_init(stuck_init)
        MODULE_LICENSE("GPL")
    """)
    r = bh("run", "examples/tasklet_driver.py", path)
    assert_user_error(r, "stuck: init hangs", "wait_for_completion")
    assert "INFO: task insmod:1001 blocked for more than 120 seconds." in r.stdout
    assert log_messages(r.stdout)[-1] == "Tasklet removed"


def test_run_init_hangs_on_real(tmp_path: Path) -> None:
    """On real, an init that does not return within --timeout is given up on."""
    path = write_module(tmp_path, "stuck", """
        done = completion()

        def stuck_init():
            init_completion(done)
            pr_info("stuck: waiting\\n")
            wait_for_completion(done)
            return 0

        module_init(stuck_init)
        MODULE_LICENSE("GPL")
    """)
    r = bh("run", "--engine", "real", "--timeout", "300", path)
    assert_user_error(r, "insmod", "did not return after 300 ms")
    assert "stuck: waiting" in r.stdout


def test_run_never_idle(tmp_path: Path) -> None:
    """A module that never goes idle: bh says what is busy, suggests --for, still unloads it."""
    path = write_module(tmp_path, "ticker", """
        t = timer_list()

        def tick(tm):
            mod_timer(t, jiffies() + 1)

        def ticker_init():
            timer_setup(t, tick, 0)
            mod_timer(t, jiffies() + 1)
            return 0

        def ticker_exit():
            del_timer_sync(t)
            pr_info("ticker: stopped\\n")

        module_init(ticker_init)
        module_exit(ticker_exit)
        MODULE_LICENSE("GPL")
    """)
    r = bh("run", "--timeout", "50", path)
    assert_user_error(r, "not idle after 50 ms", "--for MS")
    assert "timer tick [ticker] armed" in r.stderr
    assert log_messages(r.stdout)[-1] == "ticker: stopped"


def test_run_module_without_exit(tmp_path: Path) -> None:
    """A module with init but no exit cannot be unloaded: reported, log printed."""
    path = write_module(tmp_path, "sticky", """
        def sticky_init():
            return 0

        module_init(sticky_init)
        MODULE_LICENSE("GPL")
    """)
    assert_user_error(bh("run", path), "rmmod sticky", "no exit function")


def test_run_bad_cpu_count() -> None:
    """An impossible CPU count is a clear error."""
    assert_user_error(bh("run", example("hello.py"), "--cpus", "0"), "cpus must be")


@pytest.mark.parametrize("args", [
    ["run"],
    ["run", "examples/hello.py", "--for", "-1"],
    ["run", "examples/hello.py", "--for", "soon"],
    ["run", "examples/hello.py", "--engine", "qemu"],
    ["frobnicate"],
])
def test_malformed_command_line(args: list[str]) -> None:
    """argparse's usage errors: exit status 2, the usage and the reason on stderr."""
    r = bh(*args)
    assert r.returncode == 2
    assert "usage: bh" in r.stderr
    assert "error:" in r.stderr
    assert "Traceback" not in r.stderr
