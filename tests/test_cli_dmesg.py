"""bh dmesg as a real subprocess: util-linux's options and formats (reference §10.3)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT
from .daemons import Booted, one_error_line

LEVELS_MODULE = """\
from bottomhalf.linux import *

def levels_init():
    pr_err("levels: an error\\n")
    pr_warn("levels: a warning\\n")
    pr_info("levels: two lines\\nof info\\n")
    printk(KERN_DEBUG + "levels: debugging\\n")
    return 0

def levels_exit():
    pr_notice("levels: bye\\n")

module_init(levels_init)
module_exit(levels_exit)
MODULE_LICENSE("GPL")
"""


@pytest.fixture
def levels(frozen: Booted) -> Booted:
    """A frozen kernel with a module that printed at err, warn, info (two lines) and debug."""
    path = os.path.join(frozen.runtime, "levels.py")
    with open(path, "w") as f:
        f.write(LEVELS_MODULE)
    frozen.ok("insmod", path)
    return frozen


def tail(text: str, n: int) -> list[str]:
    return text.splitlines()[-n:]


def test_default_format(levels: Booted) -> None:
    """[%5lu.%06lu] before every line of every record, the boot lines first."""
    out = levels.ok("dmesg").splitlines()
    assert out[0].startswith("[    0.000000] Linux version 6.12.0-bottomhalf (bottomhalf@sim)")
    assert out[-5:] == [
        "[    0.000000] levels: an error",
        "[    0.000000] levels: a warning",
        "[    0.000000] levels: two lines",
        "[    0.000000] of info",
        "[    0.000000] levels: debugging",
    ]


def test_notime_raw_and_decode(levels: Booted) -> None:
    """-t drops the time, -r prefixes <level>, -x decodes facility and level."""
    assert tail(levels.ok("dmesg", "-t"), 2) == ["of info", "levels: debugging"]
    assert tail(levels.ok("dmesg", "-r"), 5) == [
        "<3>[    0.000000] levels: an error", "<4>[    0.000000] levels: a warning",
        "<6>[    0.000000] levels: two lines", "<6>[    0.000000] of info",
        "<7>[    0.000000] levels: debugging"]
    assert tail(levels.ok("dmesg", "-x"), 5) == [
        "kern  :err   : [    0.000000] levels: an error",
        "kern  :warn  : [    0.000000] levels: a warning",
        "kern  :info  : [    0.000000] levels: two lines",
        "kern  :info  : [    0.000000] of info",
        "kern  :debug : [    0.000000] levels: debugging"]
    assert tail(levels.ok("dmesg", "-x", "-t"), 1) == ["kern  :debug : levels: debugging"]
    assert tail(levels.ok("dmesg", "-r", "-t"), 1) == ["<7>levels: debugging"]


def test_ctime(levels: Booted) -> None:
    """-T shows local wall-clock time in ctime's layout."""
    line = tail(levels.ok("dmesg", "-T"), 1)[0]
    assert re.fullmatch(r"\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] "
                        r"levels: debugging", line), line


def test_level_filter(levels: Booted) -> None:
    """-l keeps the listed levels, by name or number."""
    assert levels.ok("dmesg", "-t", "-l", "err,warn") == (
        "levels: loading out-of-tree module taints kernel.\nlevels: an error\n"
        "levels: a warning\n")
    assert levels.ok("dmesg", "-t", "--level=7") == "levels: debugging\n"
    assert one_error_line(levels.bh("dmesg", "-l", "loud")) == "bh: error: unknown level 'loud'"


def test_console_level(levels: Booted) -> None:
    """-n sets console_loglevel: a number as is, a name as that level plus one."""
    printk = "/proc/sys/kernel/printk"
    levels.ok("dmesg", "-n", "1")
    assert levels.ok("cat", printk) == "1\t4\t1\t7\n"
    levels.ok("dmesg", "-n", "warn")
    assert levels.ok("cat", printk) == "5\t4\t1\t7\n"
    levels.ok("dmesg", "--console-level", "8")
    assert levels.ok("cat", printk) == "8\t4\t1\t7\n"
    assert one_error_line(levels.bh("dmesg", "-n", "9")) == "bh: error: unknown level '9'"
    assert one_error_line(levels.bh("dmesg", "-n", "0")) == "bh: error: unknown level '0'"


def test_clear_and_read_clear(levels: Booted) -> None:
    """-C clears silently; -c prints, then clears; new records show after either."""
    assert levels.ok("dmesg", "-C") == ""
    assert levels.ok("dmesg") == ""
    levels.ok("rmmod", "levels")
    assert levels.ok("dmesg", "-c", "-t") == "levels: bye\n"
    assert levels.ok("dmesg") == ""


def test_follow_prints_new_records(levels: Booted) -> None:
    """-w prints the log, then each new record as it comes, flushed line by line."""
    with levels.follow("dmesg", "-w", "-t") as out:
        while out.line() != "levels: debugging\n":
            pass
        levels.ok("rmmod", "levels")
        assert out.line() == "levels: bye\n"


def test_follow_new_only(levels: Booted) -> None:
    """-W prints only what comes after it started, never the old records."""
    with levels.follow("dmesg", "-W", "-x") as out:
        first = None
        for _ in range(100):  # until the follower is surely listening
            levels.ok("insmod", "examples/hello.py")
            levels.ok("rmmod", "hello")
            if (first := out.poll(timeout=0.5)) is not None:
                break
        assert first is not None and first.startswith("kern  :info  : [    0.000000] hello: ")
        levels.ok("rmmod", "levels")
        while (line := out.line()).split("] ", 1)[1].startswith("hello: "):
            pass
        assert line == "kern  :notice: [    0.000000] levels: bye\n"


def test_pipe_friendly(levels: Booted) -> None:
    """bh dmesg | tail -2 and | head -1 work: no error when the reader stops early."""
    env = dict(os.environ, BH_NAME=levels.name)
    for cmd, want in (("tail -2", "[    0.000000] of info\n[    0.000000] levels: debugging\n"),
                      ("head -1", None)):
        p = subprocess.run(f"{sys.executable} -m bottomhalf.cli dmesg | {cmd}", shell=True,
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert p.returncode == 0 and p.stderr == ""
        if want is not None:
            assert p.stdout == want
        else:
            assert p.stdout.startswith("[    0.000000] Linux version")


def test_options_that_exclude_each_other(levels: Booted) -> None:
    """-C with -w, or -t with -T, is a usage error (exit 2), as in util-linux."""
    for args in (["-C", "-w"], ["-t", "-T"]):
        r = levels.bh("dmesg", *args)
        assert r.returncode == 2 and "not allowed with argument" in r.stderr
