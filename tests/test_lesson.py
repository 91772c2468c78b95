"""bh lesson: the tutorial's messages in order, the corrections shown, the same bytes every run."""

from __future__ import annotations

import errno
import io
import re

import pytest

from bottomhalf import Kernel
from bottomhalf.cli.common import Style, want_colour
from bottomhalf.cli.shell import Shell
from bottomhalf.errors import ModuleLoadError

from .conftest import EXAMPLES, example
from .test_cli import bh

REQUIRED = [
    "Tasklet scheduled",
    "Tasklet executed with data: 1234",
    "Tasklet removed",
    "Workqueue scheduled",
    "Workqueue executed in process context",
    "Workqueue removed",
]
DMESG_LINE = re.compile(r"^ *\[ *(\d+)\.(\d{6})\] (.*)$")


@pytest.fixture(scope="module")
def lesson() -> str:
    """The whole lesson, as a subprocess prints it into a pipe."""
    r = bh("lesson")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def dmesg_lines(text: str) -> list[tuple[float, str]]:
    """Every dmesg-formatted line in ``text``: (seconds, message)."""
    out = []
    for line in text.splitlines():
        m = DMESG_LINE.match(line)
        if m:
            out.append((int(m[1]) + int(m[2]) / 1e6, m[3]))
    return out


def section(text: str, step: int) -> str:
    """Step ``step`` of the printed lesson, heading included."""
    start = text.index(f"Step {step} of ")
    end = text.find(f"Step {step + 1} of ", start)
    return text[start:] if end < 0 else text[start:end]


def test_lesson_prints_the_tutorial_messages_in_order(lesson: str) -> None:
    """The six messages appear once each, as timestamped dmesg lines, in the tutorial's order."""
    assert [msg for _, msg in dmesg_lines(lesson) if msg in REQUIRED] == REQUIRED
    # nowhere else (prose, source listings): a plain grep finds them in order too
    mentions = [line for line in lesson.splitlines() if any(msg in line for msg in REQUIRED)]
    assert len(mentions) == len(REQUIRED)
    assert all(DMESG_LINE.match(line) for line in mentions)


def test_lesson_lets_time_pass_between_commands(lesson: str) -> None:
    """Loading, removing and the next module are seconds apart, as a user types."""
    t = {msg: ts for ts, msg in dmesg_lines(lesson) if msg in REQUIRED}
    assert t["Tasklet scheduled"] == t["Tasklet executed with data: 1234"]
    assert t["Tasklet scheduled"] > 1
    assert t["Tasklet removed"] - t["Tasklet executed with data: 1234"] > 1
    assert t["Workqueue scheduled"] - t["Tasklet removed"] > 1
    assert t["Workqueue removed"] - t["Workqueue executed in process context"] > 1


def test_lesson_is_byte_identical_across_runs(lesson: str) -> None:
    """Two runs of the lesson print exactly the same bytes."""
    again = bh("lesson")
    assert again.stdout == lesson


def test_lesson_is_plain_text_in_a_pipe(lesson: str) -> None:
    """Into a pipe, no escape sequences: the text reads the same in a file."""
    assert "\033" not in lesson


def test_lesson_shows_the_tutorial_modules_refused(lesson: str) -> None:
    """The tutorial's code as written is loaded and refused, with the loader's reason."""
    tasklet = section(lesson, 2)
    assert ("    insmod: ERROR: could not insert module tasklet_driver.ko: Invalid module format\n"
            in tasklet)
    assert "'tasklet_init' is the\n    name of a kernel function" in tasklet
    assert "-def tasklet_init():\n    +def tasklet_driver_init():\n" in tasklet
    workqueue = section(lesson, 6)
    assert "could not insert module workqueue_driver.ko: Invalid module format" in workqueue
    assert "'workqueue_init' is the\n    name of a kernel function" in workqueue


def test_lesson_grep_softirq_finds_nothing(lesson: str) -> None:
    """'cat /proc/interrupts | grep -i softirq' prints nothing; /proc/softirqs has the count."""
    step = section(lesson, 10)
    assert "    $ cat /proc/interrupts | grep -i softirq\n\nNothing (grep exits with status 1)" in step
    assert "         TASKLET:          1          0\n" in step
    assert "    softirq 1 0 0 0 0 0 0 1 0 0 0\n" in step
    assert "tasklet_entry: tasklet=my_tasklet [tasklet_driver] function=my_tasklet_func" in step


def test_lesson_debug_workqueue_says_linux_has_none(lesson: str) -> None:
    """The debugfs view is bottomhalf's own and says so; the trace shows the work item."""
    step = section(lesson, 11)
    assert "    # Linux has no /sys/kernel/debug/workqueue" in step
    assert "workqueue_execute_start: work struct" in step
    assert "function my_work_func [workqueue_driver]" in step


def test_lesson_printk_hides_info_from_console_only(lesson: str) -> None:
    """After 'echo 1 > printk' a KERN_INFO line misses the console but is in dmesg; no work queued."""
    step = section(lesson, 12)
    before, after = step.split("# echo 1 > /proc/sys/kernel/printk", 1)
    assert re.search(r"The console shows:\n\n    \[ *\d+\.\d{6}\] hello: loaded", before)
    assert "    $ cat /proc/sys/kernel/printk\n    1\t4\t1\t7\n" in after
    assert "The console shows nothing." in after
    assert [m for _, m in dmesg_lines(after)] == ["hello: loaded, printing at KERN_INFO",
                                                  "hello: removed, printing at KERN_INFO"]
    counts = re.findall(r"grep -c workqueue_queue_work \S+\n    (\d+)\n", step)
    assert counts == ["1", "1"]


def test_lesson_prose_matches_its_output(lesson: str) -> None:
    """The facts the prose reads off the output are in the output (a change in the kernel's
    behaviour fails here, so that the prose gets re-read)."""
    softirq = section(lesson, 10)
    assert re.search(r"^ +ksoftirqd/0-\d+ +\[000\] ..s.. .* tasklet_entry: ", softirq, re.M)
    wq = section(lesson, 11)
    assert "kworker/u8:0-my_wq (pid" in wq
    assert re.search(r"^ +insmod-\d+ +\[\d{3}\] .* workqueue_queue_work: .* workqueue=my_wq "
                     r"req_cpu=8192 ", wq, re.M)
    assert re.search(r"^ +kworker/u8:0-\d+ +\[\d{3}\] .* workqueue_execute_start: ", wq, re.M)
    assert re.search(r"^pool\[08\] .* cpus=0-1 ", wq.replace("    pool", "pool"), re.M)


def test_lesson_list() -> None:
    """--list names the steps, one a line, numbered."""
    r = bh("lesson", "--list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == " 1. Switch on the tracepoints"
    assert lines[-1] == "13. Summary"


def test_lesson_single_step_matches_the_full_lesson(lesson: str) -> None:
    """--step N prints exactly step N of the full lesson (the steps before it run silently)."""
    r = bh("lesson", "--step", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout == section(lesson, 8)


@pytest.mark.parametrize("n", ["0", "14"])
def test_lesson_bad_step(n: str) -> None:
    """A step that does not exist: one error line, exit 1."""
    r = bh("lesson", "--step", n)
    assert r.returncode == 1
    assert r.stderr == f"bh: error: --step must be from 1 to 13, not {n} (bh lesson --list shows them)\n"


# ----------------------------------------------------------------------
# what the lesson relies on, in process


@pytest.mark.parametrize("name,clash", [("tasklet_driver", "tasklet_init"),
                                        ("workqueue_driver", "workqueue_init")])
def test_tutorial_verbatim_modules_do_not_load(kernel: Kernel, name: str, clash: str) -> None:
    """The tutorial's init names clash with kernel functions: ENOEXEC, nothing loaded."""
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(f"{EXAMPLES}/tutorial_verbatim/{name}.py")
    assert info.value.errno == errno.ENOEXEC
    assert f"'{clash}' is the name of a kernel function" in str(info.value)
    assert f"Rename it, e.g. '{name}_init'" in str(info.value)
    assert kernel.lsmod() == []


def test_console_follows_console_loglevel(kernel: Kernel) -> None:
    """An attached console gets KERN_INFO at loglevel 7, not at 1; dmesg keeps both."""
    console = io.StringIO()
    kernel.attach_console(console)
    kernel.insmod(example("hello.py"))
    kernel.write("/proc/sys/kernel/printk", "1\n")
    kernel.rmmod("hello")
    shown = [line.split("] ", 1)[1] for line in console.getvalue().splitlines()]
    assert shown == ["hello: loading out-of-tree module taints kernel.",
                     "hello: loaded, printing at KERN_INFO"]
    assert kernel.read("/proc/sys/kernel/printk") == "1\t4\t1\t7\n"
    logged = [line.split("] ", 1)[1] for line in kernel.dmesg()]
    assert logged[-2:] == ["hello: loaded, printing at KERN_INFO",
                           "hello: removed, printing at KERN_INFO"]


def test_detached_console_gets_nothing(sim: Kernel) -> None:
    """After detach_console the stream receives no more records."""
    console = io.StringIO()
    sim.attach_console(console)
    sim.detach_console(console)
    sim.insmod(example("hello.py"))
    assert console.getvalue() == ""


def test_shell_messages_match_linux_tools(sim: Kernel) -> None:
    """The lesson's shell prints what cat, grep, insmod and rmmod print on Linux."""
    sh = Shell(sim, EXAMPLES)
    r = sh.run("cat /sys/kernel/debug/nothing")
    assert (r.output, r.status) == ("cat: /sys/kernel/debug/nothing: No such file or directory\n", 1)
    r = sh.run("cat /proc/sys/kernel")
    assert (r.output, r.status) == ("cat: /proc/sys/kernel: Is a directory\n", 1)
    r = sh.run("sudo rmmod hello")
    assert (r.output, r.status) == ("rmmod: ERROR: Module hello is not currently loaded\n", 1)
    r = sh.run("sudo insmod no_such.ko")
    assert r.output == "insmod: ERROR: could not load module no_such.ko: No such file or directory\n"
    assert sh.run("sudo insmod hello.ko").status == 0
    assert sh.run("dmesg | grep -c loaded").output == "1\n"
    assert sh.run("dmesg | tail -1 | grep -i HELLO:").status == 0
    r = sh.run("grep -i nosuchword /proc/softirqs")
    assert (r.output, r.status) == ("", 1)


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colour needs a tty and no NO_COLOR; Style is plain text without it."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert want_colour(Tty())
    assert not want_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not want_colour(Tty())
    assert Style(False).heading("Step 1") == "Step 1"
    assert Style(True).heading("Step 1") == "\033[1mStep 1\033[0m"


def test_insmod_reason_is_kmods_in_the_library_and_the_shell(sim: Kernel) -> None:
    """init returning -EINVAL: kmod's "Invalid parameters" from Kernel.insmod and the shell."""
    with pytest.raises(ModuleLoadError) as info:
        sim.insmod(example("napi_driver.py"), budget="0")
    assert info.value.errno == errno.EINVAL
    assert str(info.value) == ("could not insert module napi_driver: Invalid parameters "
                               "(init returned -22)")
    r = Shell(sim, EXAMPLES).run("sudo insmod napi_driver.ko budget=0")
    assert (r.output, r.status) == (
        "insmod: ERROR: could not insert module napi_driver.ko: Invalid parameters\n", 1)
