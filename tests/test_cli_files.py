"""bh cat and bh write as real subprocesses: the kernel's files, with Linux's errors."""

from __future__ import annotations

from .daemons import Booted, one_error_line

PRINTK = "/proc/sys/kernel/printk"


def test_cat_prints_kernel_files(frozen: Booted) -> None:
    """bh cat prints each file in turn, byte for byte as the kernel builds it."""
    out = frozen.ok("cat", PRINTK, "/proc/sys/kernel/tainted", "/sys/kernel/tracing/tracing_on")
    assert out == "7\t4\t1\t7\n0\n1\n"
    assert frozen.ok("cat", "/proc/interrupts").splitlines()[0] == \
        "           CPU0       CPU1       "
    assert frozen.ok("cat", "/sys/kernel/debug/workqueue").startswith(
        "# bottomhalf's live view of every workqueue, pool and worker.\n"
        "# Linux has no /sys/kernel/debug/workqueue")


def test_cat_errors_as_cat_prints_them(frozen: Booted) -> None:
    """A missing path or a directory is cat's line; the other files still print; exit 1."""
    r = frozen.bh("cat", "/proc/nope", PRINTK, "/proc/sys/kernel")
    assert r.returncode == 1
    assert r.stdout == "7\t4\t1\t7\n"
    assert r.stderr == ("cat: /proc/nope: No such file or directory\n"
                        "cat: /proc/sys/kernel: Is a directory\n")
    assert one_error_line(frozen.bh("cat", "/proc/nope"), "cat: ") == \
        "cat: /proc/nope: No such file or directory"


def test_write_is_echo_into_the_file(frozen: Booted) -> None:
    """bh write PATH VALUE... writes the words joined by spaces, as echo would."""
    frozen.ok("write", PRINTK, "3", "4")
    assert frozen.ok("cat", PRINTK) == "3\t4\t1\t7\n"
    frozen.ok("write", "/sys/kernel/tracing/set_event", "irq:tasklet_entry", "irq:tasklet_exit")
    assert frozen.ok("cat", "/sys/kernel/tracing/set_event") == \
        "irq:tasklet_entry\nirq:tasklet_exit\n"
    assert frozen.ok("cat", "/sys/kernel/tracing/events/irq/enable") == "X\n"


def test_write_errors(frozen: Booted) -> None:
    """A bad value, a read-only file, a missing path: the shell's words; nothing changes."""
    line = one_error_line(frozen.bh("write", PRINTK, "loud"), "write: ")
    assert line.startswith(f"write: {PRINTK}: write error: Invalid argument ('loud' is not an "
                           "integer")
    assert frozen.ok("cat", PRINTK) == "7\t4\t1\t7\n"
    assert one_error_line(frozen.bh("write", "/proc/softirqs", "1"), "write: ") == \
        "write: /proc/softirqs: write error: Permission denied (the file is read-only)"
    assert one_error_line(frozen.bh("write", "/proc/nope", "1"), "write: ") == \
        "write: /proc/nope: No such file or directory"
    assert one_error_line(frozen.bh("write", "/proc/sys", "1"), "write: ") == \
        "write: /proc/sys: Is a directory"
    assert one_error_line(frozen.bh("write", "/sys/kernel/tracing/tracing_on", "on"),
                          "write: ") == ("write: /sys/kernel/tracing/tracing_on: write error: "
                                         "Invalid argument (not a decimal number)")
