"""bh insmod, rmmod, lsmod and modinfo as real subprocesses: kmod's output and errors."""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT, write_module
from .daemons import Booted, bh, one_error_line


def test_insmod_rmmod_lsmod(frozen: Booted) -> None:
    """insmod and rmmod print nothing; lsmod shows the modules as lsmod formats /proc/modules."""
    assert frozen.ok("insmod", "examples/tasklet_driver.py") == ""
    assert frozen.ok("insmod", "examples/irq_driver.py", "fires=0") == ""
    lines = frozen.ok("lsmod").splitlines()
    assert lines[0] == "Module                  Size  Used by"
    assert [re.fullmatch(r"(\S+) +(\d+)  (\d+)", line).groups()[::2]  # type: ignore[union-attr]
            for line in lines[1:]] == [("irq_driver", "0"), ("tasklet_driver", "0")]
    assert all(line[19] == " " and line[20:28].strip().isdigit() for line in lines[1:])
    assert frozen.ok("rmmod", "examples/tasklet_driver.py") == ""  # a file names its module
    assert frozen.ok("rmmod", "irq_driver") == ""
    assert frozen.ok("lsmod") == "Module                  Size  Used by\n"


def test_insmod_parameters(frozen: Booted) -> None:
    """param=value sets a module parameter before init; a bad value fails as kmod says."""
    path = write_module(frozen.runtime, "p", "who = 'world'\nmodule_param('who', 'charp', 0)\n"
                               "def p_init():\n    pr_info('hello, %s\\n', who)\n"
                               "module_init(p_init)\nMODULE_LICENSE('GPL')\n")
    frozen.ok("insmod", path, "who=bottomhalf")
    assert frozen.ok("dmesg", "-t").splitlines()[-1] == "hello, bottomhalf"
    assert one_error_line(frozen.bh("insmod", "examples/napi_driver.py", "budget=0"),
                          "insmod: ") == ("insmod: ERROR: could not insert module "
                                          "examples/napi_driver.py: Invalid parameters "
                                          "(init returned -22)")
    r = frozen.bh("insmod", "examples/irq_driver.py", "fires=lots")
    assert one_error_line(r, "insmod: ").startswith(
        "insmod: ERROR: could not insert module examples/irq_driver.py: Invalid parameters (")
    assert "irq_driver: `lots' invalid for parameter `fires'" in frozen.ok("dmesg", "-t")


def test_insmod_init_error(frozen: Booted) -> None:
    """An init returning -ENODEV fails with kmod's strerror; the kernel log says why."""
    r = frozen.bh("insmod", "examples/napi_driver.py", "device=eth9")
    assert one_error_line(r, "insmod: ") == (
        "insmod: ERROR: could not insert module examples/napi_driver.py: No such device "
        "(init returned -19)")
    assert frozen.ok("dmesg", "-t").splitlines()[-1] == \
        "napi_driver: no device 'eth9' (boot with: bh boot --device eth9=bursty:irq=40)"
    assert "napi_driver" not in frozen.ok("lsmod")


@pytest.mark.parametrize("body, reason", [
    ("def f(:\n    pass\n", "Invalid module format ({path}:3: SyntaxError: invalid syntax)"),
    ("def m_init():\n    return 0\nmodule_init(m_init)\n",
     "Invalid module format (missing MODULE_LICENSE() in {path})"),
    ("def m_init():\n    return -ENOMEM\nmodule_init(m_init)\nMODULE_LICENSE('GPL')\n",
     "Cannot allocate memory (init returned -12)"),
    ("def m_init():\n    raise KeyError('x')\nmodule_init(m_init)\nMODULE_LICENSE('GPL')\n",
     "Bad address (init m_init() raised KeyError: 'x')"),
])
def test_insmod_bad_modules(frozen: Booted, body: str, reason: str) -> None:
    """A file that does not parse, has no licence, or whose init fails: one kmod line each."""
    path = write_module(frozen.runtime, "m", body)
    line = one_error_line(frozen.bh("insmod", path), "insmod: ")
    assert line == f"insmod: ERROR: could not insert module {path}: " + reason.format(path=path)
    assert frozen.ok("lsmod") == "Module                  Size  Used by\n"


def test_insmod_file_errors(frozen: Booted) -> None:
    """A missing file, a directory and a module already loaded, as kmod words them."""
    assert one_error_line(frozen.bh("insmod", "examples/nope.py"), "insmod: ") == \
        "insmod: ERROR: could not load module examples/nope.py: No such file or directory"
    assert one_error_line(frozen.bh("insmod", "examples"), "insmod: ") == \
        "insmod: ERROR: could not load module examples: Is a directory"
    frozen.ok("insmod", "examples/hello.py")
    assert one_error_line(frozen.bh("insmod", "examples/hello.py"), "insmod: ") == (
        "insmod: ERROR: could not insert module examples/hello.py: File exists "
        "(module hello is already loaded)")


def test_rmmod_errors(frozen: Booted) -> None:
    """Not loaded, and loaded without an exit function: kmod's rmmod messages."""
    assert one_error_line(frozen.bh("rmmod", "nope"), "rmmod: ") == \
        "rmmod: ERROR: Module nope is not currently loaded"
    path = write_module(frozen.runtime, "noexit", "def noexit_init():\n    return 0\n"
                        "module_init(noexit_init)\nMODULE_LICENSE('GPL')\n")
    frozen.ok("insmod", path)
    assert one_error_line(frozen.bh("rmmod", "noexit"), "rmmod: ") == (
        "rmmod: ERROR: could not remove 'noexit': Device or resource busy (it has an init "
        "function but no exit function, so it cannot be unloaded)")


# ----------------------------------------------------------------------
# modinfo


def test_modinfo_layout(runtime: str) -> None:
    """modinfo needs no kernel; fields in reverse source order, modpost's, then parameters."""
    r = bh("modinfo", "examples/napi_driver.py")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == (
        f"filename:       {ROOT}/examples/napi_driver.py\n"
        "description:    NAPI-style polling on the bursty virtual network device\n"
        "author:         bottomhalf\n"
        "license:        GPL\n"
        "depends:        \n"
        "retpoline:      Y\n"
        "name:           napi_driver\n"
        "vermagic:       6.12.0-bottomhalf SMP preempt mod_unload modversions \n"
        "parm:           device:the virtual device to drive (default net0) (charp)\n"
        "parm:           budget:packets taken per poll, NAPI's weight (default 4) (int)\n"
        "parm:           cost_ns:CPU time to process one packet, in ns (default 30000) (int)\n")


def test_modinfo_version_and_bare_params(runtime: str) -> None:
    """MODULE_VERSION brings a srcversion; a parameter without description shows name:type."""
    path = os.path.join(runtime, "v.py")
    with open(path, "w") as f:
        f.write("from bottomhalf.linux import *\ncount = 1\nmodule_param('count', 'uint', 0)\n"
                "MODULE_LICENSE('GPL')\nMODULE_VERSION('1.2')\nMODULE_AUTHOR('A')\n"
                "MODULE_AUTHOR('B')\n")
    lines = bh("modinfo", path).stdout.splitlines()
    assert lines[1:4] == ["author:         B", "author:         A", "version:        1.2"]
    assert lines[4] == "license:        GPL"
    assert re.fullmatch(r"srcversion:     [0-9A-F]{24}", lines[5])
    assert lines[-1] == "parm:           count:uint"


def test_modinfo_fields(runtime: str) -> None:
    """-F, -a, -l, -p, -n print only values; -0 ends them with NUL."""
    f = "examples/irq_driver.py"
    assert bh("modinfo", "-F", "description", f).stdout == "IRQ -> tasklet -> workqueue chain\n"
    assert bh("modinfo", "-a", f).stdout == "bottomhalf\n"
    assert bh("modinfo", "-l", f).stdout == "GPL\n"
    assert bh("modinfo", "-p", f).stdout == \
        "fires:how many interrupts the fake device raises (default 3) (int)\n"
    assert bh("modinfo", "-n", f).stdout == f"{ROOT}/{f}\n"
    assert bh("modinfo", "-0", "-F", "name", f).stdout == "irq_driver\0"


def test_modinfo_errors(runtime: str) -> None:
    """A missing file and one that does not parse: modinfo's messages, exit 1."""
    assert one_error_line(bh("modinfo", "examples/nope.py"), "modinfo: ") == \
        "modinfo: ERROR: Module examples/nope.py not found."
    path = os.path.join(runtime, "bad.py")
    with open(path, "w") as f:
        f.write("MODULE_LICENSE('GPL'\n")
    line = one_error_line(bh("modinfo", path), "modinfo: ")
    assert line.startswith(f"modinfo: ERROR: could not get modinfo from 'bad': Exec format error "
                           f"({path}:1: SyntaxError: ")


def test_modinfo_does_not_run_the_module(runtime: str) -> None:
    """modinfo reads the file: top-level code (here, one that would crash) never runs."""
    path = os.path.join(runtime, "boom.py")
    with open(path, "w") as f:
        f.write("raise SystemExit('ran!')\nMODULE_LICENSE('GPL')\nMODULE_DESCRIPTION('quiet')\n")
    r = bh("modinfo", "-d", path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "quiet\n", "")


def test_lsmod_imports_stay_light(frozen: Booted) -> None:
    """bh lsmod loads only the CLI, the client and the error table: no kernel, typing or socket."""
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['bh', 'lsmod']\n"
            "from bottomhalf.cli import main\n"
            "main()\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('bottomhalf') "
            "or m in ('typing', 'socket', 'shutil', 'dataclasses', 'greenlet'))))")
    env = dict(os.environ, BH_NAME=frozen.name)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].split() == [
        "bottomhalf", "bottomhalf.cli", "bottomhalf.cli.common", "bottomhalf.cli.modules",
        "bottomhalf.client"]
