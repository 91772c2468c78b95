"""The kernel's file tree as the library reads it: files, directories, missing paths."""

from __future__ import annotations

import errno

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import KernelFileError


@pytest.mark.parametrize("path", ["/", "/proc", "/proc/sys/kernel/", "/sys/kernel/tracing",
                                  "/sys/kernel/tracing/events/irq", "/sys/module/workqueue",
                                  "/sys/bus/workqueue"])
def test_directories_are_eisdir_to_read_and_write(kernel: Kernel, path: str) -> None:
    """Any directory above a file: IsADirectoryError(EISDIR), for reads and writes alike."""
    with pytest.raises(IsADirectoryError) as info:
        kernel.read(path)
    assert (info.value.errno, info.value.filename) == (errno.EISDIR, path)
    with pytest.raises(IsADirectoryError):
        kernel.write(path, "1\n")


@pytest.mark.parametrize("path", ["/proc/nope", "/proc/sys/kernel/printk/x", "/pro",
                                  "/sys/bus/workqueue/devices/nope"])
def test_missing_paths_are_enoent(kernel: Kernel, path: str) -> None:
    """A path that is neither a file nor a directory: FileNotFoundError(ENOENT)."""
    with pytest.raises(FileNotFoundError) as info:
        kernel.read(path)
    assert (info.value.errno, info.value.filename) == (errno.ENOENT, path)


def test_a_sysfs_workqueue_directory_is_a_directory(kernel: Kernel) -> None:
    """/sys/bus/workqueue/devices/NAME holds the attributes: reading it is EISDIR."""
    kernel.call(lambda: L.alloc_workqueue("tunable", L.WQ_SYSFS | L.WQ_UNBOUND, 0))
    for root in ("/sys/bus/workqueue/devices/", "/sys/devices/virtual/workqueue/"):
        assert kernel.read(root + "tunable/per_cpu") == "0\n"
        with pytest.raises(IsADirectoryError):
            kernel.read(root + "tunable/")


PARAMS = "/sys/module/workqueue/parameters/"


@pytest.mark.parametrize("text, value", [("5\n", 5), ("010", 8), ("0x10", 16), ("+7", 7),
                                         ("0", 0)])
def test_ulong_parameters_parse_as_kstrtoul(kernel: Kernel, text: str, value: int) -> None:
    """param_set_ulong(): base 0, so a leading 0 is octal and 0x hex; one newline allowed."""
    kernel.write(PARAMS + "cpu_intensive_warning_thresh", text)
    assert kernel.read(PARAMS + "cpu_intensive_warning_thresh") == f"{value}\n"


@pytest.mark.parametrize("text", ["0o17", "1_000", "08", "-1", " 5", "5 ", "", "five"])
def test_ulong_parameters_refuse_what_kstrtoul_refuses(kernel: Kernel, text: str) -> None:
    """Python's literals (0o17, 1_000), a sign, spaces, bad octal: EINVAL, value unchanged."""
    with pytest.raises(KernelFileError) as info:
        kernel.write(PARAMS + "cpu_intensive_warning_thresh", text)
    assert info.value.errno == errno.EINVAL
    assert kernel.read(PARAMS + "cpu_intensive_warning_thresh") == "4\n"


@pytest.mark.parametrize("text, shown", [("Y", "Y"), ("yes\n", "Y"), ("on", "Y"), ("true", "Y"),
                                         ("1", "Y"), ("off", "N"), ("false", "N"), ("n", "N")])
def test_bool_parameters_parse_as_kstrtobool(kernel: Kernel, text: str, shown: str) -> None:
    """param_set_bool(): kstrtobool judges y/t/1/on and n/f/0/off by their first letters."""
    kernel.write(PARAMS + "debug_force_rr_cpu", "1" if shown == "N" else "0")
    kernel.write(PARAMS + "debug_force_rr_cpu", text)
    assert kernel.read(PARAMS + "debug_force_rr_cpu") == f"{shown}\n"


@pytest.mark.parametrize("text", ["", "2", "maybe", "o"])
def test_bool_parameters_refuse_other_words(kernel: Kernel, text: str) -> None:
    """What kstrtobool cannot judge: EINVAL."""
    with pytest.raises(KernelFileError) as info:
        kernel.write(PARAMS + "debug_force_rr_cpu", text)
    assert info.value.errno == errno.EINVAL
