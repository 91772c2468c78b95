"""bh boot, halt and status as real subprocesses: the new user's session, several
kernels side by side, and every way a connection can be refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from .daemons import Booted, bh, one_error_line

ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="needs root to give files to another uid")
OTHER_UID = 54321


def test_new_user_session(runtime: str) -> None:
    """The lesson typed at a terminal: boot, insmod, dmesg | tail, rmmod, cat, write, halt."""
    r = bh("boot")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kernel 'default' up: sim, 2 CPUs, seed 0, rate 1, pid ")
    assert r.stderr == ""

    r = bh("insmod", "examples/tasklet_driver.py")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")

    dmesg = subprocess.run(f"{sys.executable} -m bottomhalf.cli dmesg | tail -10", shell=True,
                           cwd=os.path.dirname(os.path.dirname(__file__)), capture_output=True,
                           text=True, timeout=60)
    assert dmesg.returncode == 0 and dmesg.stderr == ""
    lines = dmesg.stdout.splitlines()
    assert [line.split("] ", 1)[1] for line in lines[-3:]] == [
        "tasklet_driver: loading out-of-tree module taints kernel.",
        "Tasklet scheduled",
        "Tasklet executed with data: 1234",
    ]
    assert all(line.startswith("[") and line[13:15] == "] " for line in lines)

    r = bh("rmmod", "tasklet_driver")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert bh("dmesg").stdout.splitlines()[-1].endswith("] Tasklet removed")

    r = bh("cat", "/proc/softirqs")
    assert r.returncode == 0
    rows = r.stdout.splitlines()
    assert rows[0] == "                    CPU0       CPU1       "
    assert rows[7].startswith("     TASKLET:          1 ")

    r = bh("write", "/proc/sys/kernel/printk", "1")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert bh("cat", "/proc/sys/kernel/printk").stdout == "1\t4\t1\t7\n"

    r = bh("halt")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not os.path.exists(os.path.join(runtime, "bottomhalf", "default.sock"))
    assert one_error_line(bh("lsmod")) == \
        "bh: error: no kernel named 'default' is running (start one with: bh boot)"


def test_kernels_side_by_side(boot: Callable[..., Booted]) -> None:
    """Two named kernels keep separate modules and logs; status lists both."""
    a = boot("--cpus", "1")
    b = boot("--cpus", "4", "--engine", "real")
    a.ok("insmod", "examples/tasklet_driver.py")
    assert "tasklet_driver" in a.ok("lsmod")
    assert "tasklet_driver" not in b.ok("lsmod")
    assert "CPU3" in b.ok("cat", "/proc/softirqs") and "CPU1" not in a.ok("cat", "/proc/softirqs")
    listing = bh("status").stdout
    for k, desc in ((a, "sim engine, 1 CPU, seed 0"), (b, "real engine, 4 CPUs, seed 0")):
        assert f"{k.name}: {desc}, up " in listing
    assert "  modules: tasklet_driver\n" in listing and "  modules: none\n" in listing
    r = bh("halt", "--all")
    assert r.returncode == 0, r.stderr
    assert one_error_line(bh("status")) == \
        "bh: error: no kernel is running (start one with: bh boot)"


def test_status_of_one_kernel(boot: Callable[..., Booted]) -> None:
    """bh status --name describes one kernel: engine, CPUs, seed, modules, devices, socket."""
    k = boot("--seed", "7", "--rate", "0", "--device", "net0=bursty:irq=40,burst=8")
    out = k.ok("status").splitlines()
    assert out[0] == (f"{k.name}: sim engine, 2 CPUs, seed 7, up 0.000000 s (time stands still "
                      f"between commands), pid {k.pid}")
    assert out[1:] == [
        "  modules: none",
        "  device net0: bursty on IRQ 40, CPU 0, bursts of ~8 every 20 ms",
        "  console_loglevel: 7",
        f"  socket: {k.sock}",
    ]


def test_boot_refuses_a_name_in_use(boot: Callable[..., Booted]) -> None:
    """Booting a second kernel under a running one's name is one clear error."""
    k = boot()
    line = one_error_line(bh("boot", "--name", k.name))
    assert line == (f"bh: error: a kernel named '{k.name}' is already running "
                    f"(see: bh status --name {k.name}; boot another with --name)")


@pytest.mark.parametrize("args, message", [
    (["--cpus", "0"], "bh: error: --cpus must be from 1 to 64, not 0"),
    (["--name", "a/b"], "bh: error: bad kernel name 'a/b': use letters, digits, '-', '_' and '.'"),
    (["--device", "net0=laser:irq=3"],
     "bh: error: unknown device kind 'laser' (periodic or bursty)"),
    (["--device", "net0=bursty"], "bh: error: device 'net0' needs irq=..."),
])
def test_boot_errors(runtime: str, args: list[str], message: str) -> None:
    """Bad boot options fail with the server's or bh's one-line reason, leaving nothing behind."""
    assert one_error_line(bh("boot", *args)) == message
    base = os.path.join(runtime, "bottomhalf")
    assert not os.path.isdir(base) or not [f for f in os.listdir(base) if f.endswith(".sock")]


def test_boot_rate_must_be_a_number(runtime: str) -> None:
    """A bad --rate is refused by the parser (usage error, exit 2)."""
    r = bh("boot", "--rate", "-1")
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == \
        "bh boot: error: argument --rate: --rate must be finite and >= 0, not -1"


def _running(pid: int) -> bool:
    """Alive and not a zombie (the server's parent, bh boot, is gone: nobody may reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_halt_waits_for_the_process(boot: Callable[..., Booted]) -> None:
    """bh halt returns once the server has exited and removed its socket and pid file."""
    k = boot()
    pid = k.pid
    r = k.bh("halt")
    assert (r.returncode, r.stderr) == (0, "")
    assert not _running(pid)
    assert not os.path.exists(k.sock)


def test_foreground_shows_the_console(runtime: str) -> None:
    """bh boot --foreground serves until halted, with console messages on its stdout."""
    proc = subprocess.Popen([sys.executable, "-m", "bottomhalf.cli", "boot", "--foreground",
                             "--name", "fg", "--rate", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("bh: kernel 'fg' up (sim, 2 CPUs, seed 0)")
        assert bh("insmod", "examples/tasklet_driver.py", name="fg").returncode == 0
        assert bh("write", "/proc/sys/kernel/printk", "4", name="fg").returncode == 0
        assert bh("rmmod", "tasklet_driver", name="fg").returncode == 0  # info: not shown now
        assert bh("halt", name="fg").returncode == 0
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    console = [line.split("] ", 1)[1] for line in out.splitlines()]
    assert console[-3:] == ["tasklet_driver: loading out-of-tree module taints kernel.",
                            "Tasklet scheduled", "Tasklet executed with data: 1234"]
    assert "Tasklet removed" not in out
    assert err == "bh: kernel 'fg' halted\n"


# ----------------------------------------------------------------------
# refused connections


def test_no_kernel_running(runtime: str) -> None:
    """Every command that needs a kernel says none runs, and how to start one."""
    for args in (["lsmod"], ["dmesg"], ["cat", "/proc/softirqs"], ["irq", "17"], ["top", "-1"],
                 ["trace", "show"], ["insmod", "examples/hello.py"]):
        assert one_error_line(bh(*args)) == \
            "bh: error: no kernel named 'default' is running (start one with: bh boot)", args
    assert one_error_line(bh("halt", name="other")) == \
        "bh: error: no kernel named 'other' is running (start one with: bh boot --name other)"


def _fake_socket(runtime: str, name: str) -> str:
    """A socket file nobody listens on, as a crashed server leaves behind."""
    base = os.path.join(runtime, "bottomhalf")
    os.makedirs(base, mode=0o700, exist_ok=True)
    path = os.path.join(base, f"{name}.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(path)
    finally:
        os.umask(old)
    s.close()
    return path


def test_stale_socket(runtime: str) -> None:
    """A dead server's socket is reported as stale; bh halt removes it; bh boot reuses the name."""
    path = _fake_socket(runtime, "default")
    line = one_error_line(bh("lsmod"))
    assert line == (f"bh: error: kernel 'default' is not running any more (stale socket {path}); "
                    "clean up with: bh halt")
    r = bh("halt")
    assert r.returncode == 0
    assert r.stderr == "bh: kernel 'default' was not running; removed its stale socket\n"
    assert not os.path.exists(path)
    _fake_socket(runtime, "default")
    assert bh("boot", "--rate", "0").returncode == 0
    assert bh("lsmod").stdout.startswith("Module ")
    assert bh("halt").returncode == 0


def test_runtime_dir_open_to_others_is_refused(runtime: str) -> None:
    """A runtime directory other users can enter is refused, saying its mode."""
    _fake_socket(runtime, "default")
    base = os.path.join(runtime, "bottomhalf")
    os.chmod(base, 0o755)
    assert one_error_line(bh("lsmod")) == \
        f"bh: error: {base} is accessible to other users (mode 0755); it must be 0700: refusing to use it"


def test_socket_open_to_others_is_refused(boot: Callable[..., Booted]) -> None:
    """A socket file other users may write to is refused, saying its mode."""
    k = boot("--rate", "0")
    os.chmod(k.sock, 0o666)
    assert one_error_line(k.bh("lsmod")) == (f"bh: error: {k.sock} is accessible to other users "
                                             "(mode 0666); it must be 0600: refusing to use it")
    os.chmod(k.sock, 0o600)


@ROOT_ONLY
def test_runtime_dir_of_another_user_is_refused(runtime: str) -> None:
    """A runtime directory that belongs to another uid is refused before any connection."""
    _fake_socket(runtime, "default")
    base = os.path.join(runtime, "bottomhalf")
    os.chown(base, OTHER_UID, -1)
    assert one_error_line(bh("lsmod")) == \
        f"bh: error: {base} belongs to uid {OTHER_UID}, not to you: refusing to use it"


@ROOT_ONLY
def test_socket_of_another_user_is_refused(boot: Callable[..., Booted]) -> None:
    """A socket that belongs to another uid is refused; the kernel is left alone."""
    k = boot("--rate", "0")
    os.chown(k.sock, OTHER_UID, -1)
    assert one_error_line(k.bh("lsmod")) == \
        f"bh: error: {k.sock} belongs to uid {OTHER_UID}, not to you: refusing to use it"
    os.chown(k.sock, os.getuid(), -1)
    assert k.ok("lsmod").startswith("Module ")


def test_session_on_the_real_engine(runtime: str) -> None:
    """The same session on OS threads: the tasklet runs soon after insmod, in order."""
    assert bh("boot", "--engine", "real").returncode == 0
    assert bh("insmod", "examples/tasklet_driver.py").returncode == 0
    for _ in range(100):  # real time: the tasklet runs on ksoftirqd, a moment later
        log = bh("dmesg", "-t").stdout.splitlines()
        if "Tasklet executed with data: 1234" in log:
            break
    assert log[-2:] == ["Tasklet scheduled", "Tasklet executed with data: 1234"]
    assert bh("rmmod", "tasklet_driver").returncode == 0
    assert bh("dmesg", "-t").stdout.splitlines()[-1] == "Tasklet removed"
    assert bh("cat", "/proc/softirqs").stdout.splitlines()[7].split()[0] == "TASKLET:"
    assert bh("write", "/proc/sys/kernel/printk", "1").returncode == 0
    assert bh("halt").returncode == 0


def test_console_to_a_file(runtime: str) -> None:
    """bh boot --console FILE writes what the console shows there, honouring console_loglevel."""
    console = os.path.join(runtime, "console.txt")
    assert bh("boot", "--rate", "0", "--console", console).returncode == 0
    assert bh("insmod", "examples/hello.py").returncode == 0
    assert bh("dmesg", "-n", "1").returncode == 0
    assert bh("rmmod", "hello").returncode == 0  # KERN_INFO: below the console's level now
    assert bh("halt").returncode == 0
    with open(console) as f:
        shown = [line.split("] ", 1)[1] for line in f.read().splitlines()]
    assert shown == ["hello: loading out-of-tree module taints kernel.",
                     "hello: loaded, printing at KERN_INFO"]


def test_halt_kills_a_kernel_stuck_in_a_request(boot: Callable[..., Booted]) -> None:
    """A real kernel stuck in an init that never returns is killed after --timeout."""
    k = boot("--engine", "real")
    path = os.path.join(k.runtime, "stuck.py")
    with open(path, "w") as f:
        f.write("from bottomhalf.linux import *\ndone = DECLARE_COMPLETION()\n"
                "def stuck_init():\n    wait_for_completion(done)\n    return 0\n"
                "module_init(stuck_init)\nMODULE_LICENSE('GPL')\n")
    from bottomhalf.client import Client, ClientError

    with Client(k.name, timeout=0.5) as c, pytest.raises(ClientError, match="did not answer"):
        c.call("insmod", path=path)
    pid = k.pid
    r = k.bh("halt", "--timeout", "1")
    assert r.returncode == 0
    assert r.stderr == f"bh: kernel '{k.name}' (pid {pid}) did not halt when asked; killed it\n"
    assert not _running(pid) and not os.path.exists(k.sock)
