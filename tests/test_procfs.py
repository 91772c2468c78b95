"""The kernel's file tree as the library reads it: files, directories, missing paths."""

from __future__ import annotations

import errno

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L


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
