"""Loadable modules: insmod/rmmod, licences and taints, failed loads rolled back,
parameters, /proc/modules and lsmod, the tutorial's name clashes, and code
called after its module is gone (reference §11, §12; API.md §1, §2)."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import ModuleError, ModuleLoadError
from bottomhalf.irq import IrqMisuse

from .conftest import IRQ_FROM_IDLE, example, messages, module_path, write_module

OOT = "loading out-of-tree module taints kernel."


def since(k: Kernel, before: list[str]) -> list[str]:
    """Messages logged after the ``before`` snapshot of messages(k)."""
    return messages(k)[len(before):]


def gone(k: Kernel, name: str) -> Any:
    """The module object of the last failed or unloaded load of ``name``."""
    return [m for m in k.modules.unloaded.values() if m.name == name][-1]


def wait_exited(k: Kernel, task: Any) -> None:
    for _ in range(400):
        if task.exited:
            return
        k.run_for(5)
    raise AssertionError(f"{task.comm} did not exit")


# ----------------------------------------------------------------------
# loading and unloading


def test_each_insmod_executes_the_file_afresh(kernel: Kernel) -> None:
    """Module globals belong to one load: reloading starts from the file's values again."""
    first = kernel.insmod(module_path("fresh_globals.py"))
    kernel.rmmod("fresh_globals")
    second = kernel.insmod(module_path("fresh_globals.py"))
    assert first.module is not second.module
    assert first.module.loads == 1 and second.module.loads == 1
    assert [m for m in messages(kernel) if m.startswith("fresh_globals: ") and OOT not in m] == [
        "fresh_globals: loads=1", "fresh_globals: bye", "fresh_globals: loads=1"]


def test_module_metadata(kernel: Kernel) -> None:
    """MODULE_LICENSE/AUTHOR/DESCRIPTION/VERSION are recorded on the Module."""
    mod = kernel.insmod(module_path("fresh_globals.py"))
    assert (mod.name, mod.license, mod.author, mod.description, mod.version) == (
        "fresh_globals", "GPL v2", "A. Author, B. Author", "Fresh globals on every load", "1.2")
    assert [(m.name, m.refcount) for m in kernel.lsmod()] == [("fresh_globals", 0)]


def test_module_init_and_exit_work_as_decorators(kernel: Kernel, tmp_path: Any) -> None:
    """@module_init / @module_exit register the functions they decorate."""
    path = write_module(tmp_path, "decorated",
                        "@module_init\ndef decorated_init():\n    pr_info('decorated: in\\n')\n"
                    "    return 0\n\n"
                    "@module_exit\ndef decorated_exit():\n    pr_info('decorated: out\\n')\n\n"
                        "MODULE_LICENSE('GPL')\n")
    mod = kernel.insmod(path)
    kernel.rmmod("decorated")
    assert mod.init is mod.module.decorated_init and mod.exit is mod.module.decorated_exit
    assert messages(kernel)[-2:] == ["decorated: in", "decorated: out"]


def test_out_of_tree_taint_is_logged_once(sim: Kernel) -> None:
    """The first module taints the kernel O with one line; later loads say nothing."""
    sim.insmod(module_path("fresh_globals.py"))
    sim.insmod(module_path("no_exit.py"))
    assert sim.dmesg()[3:5] == [f"[    0.000000] fresh_globals: {OOT}",
                                "[    0.000000] fresh_globals: loads=1"]
    assert len(sim.dmesg()) == 5
    assert sim.taint == {"O"}


def test_missing_licence_is_refused_and_nothing_changes(kernel: Kernel) -> None:
    """No MODULE_LICENSE: ENOEXEC naming modpost's error; no log line, no taint, no module."""
    before = messages(kernel)
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("no_licence.py"))
    assert info.value.errno == errno.ENOEXEC
    assert "no_licence" in str(info.value)
    assert f"missing MODULE_LICENSE() in {module_path('no_licence.py')}" in str(info.value)
    assert since(kernel, before) == []
    assert kernel.taint == set() and kernel.lsmod() == []


def test_non_gpl_licence_taints_once(sim: Kernel) -> None:
    """A proprietary licence loads, logs the licence taint and disables lock debugging once."""
    sim.insmod(module_path("proprietary.py"))
    sim.insmod(module_path("proprietary_too.py"))
    assert sim.dmesg()[3:] == [
        f"[    0.000000] proprietary: {OOT}",
        "[    0.000000] proprietary: module license 'Proprietary' taints kernel.",
        "[    0.000000] Disabling lock debugging due to kernel taint",
        "[    0.000000] proprietary: loaded",
    ]
    assert sim.taint == {"O", "P"}
    assert sim.read("/proc/modules").splitlines() == [
        "proprietary_too 12288 0 - Live 0xffffffffc0a10000 (PO)",
        "proprietary 12288 0 - Live 0xffffffffc0a00000 (PO)",
    ]


def test_non_gpl_module_using_gpl_only_symbols_is_refused(sim: Kernel) -> None:
    """Unknown symbol for each GPL-only name, -ENOENT; the taints it caused stay."""
    with pytest.raises(ModuleLoadError) as info:
        sim.insmod(module_path("proprietary_gpl_only.py"))
    assert info.value.errno == errno.ENOENT
    assert "could not insert module proprietary_gpl_only: Unknown symbol in module" in \
        str(info.value)
    assert messages(sim)[3:] == [
        f"proprietary_gpl_only: {OOT}",
        "proprietary_gpl_only: module license 'Proprietary' taints kernel.",
        "Disabling lock debugging due to kernel taint",
        "proprietary_gpl_only: Unknown symbol alloc_workqueue (err -2)",
        "proprietary_gpl_only: Unknown symbol destroy_workqueue (err -2)",
        "proprietary_gpl_only: Unknown symbol flush_work (err -2)",
    ]
    assert sim.lsmod() == [] and sim.taint == {"O", "P"}


def test_insmod_of_a_loaded_module_is_eexist(kernel: Kernel) -> None:
    """Loading the same module twice: EEXIST, the loaded one untouched and not re-run."""
    mod = kernel.insmod(module_path("fresh_globals.py"))
    before = messages(kernel)
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("fresh_globals.py"))
    assert info.value.errno == errno.EEXIST
    assert since(kernel, before) == []
    assert kernel.lsmod() == [mod] and mod.state == "Live"


def test_a_file_that_does_not_parse_is_refused(kernel: Kernel, tmp_path: Any) -> None:
    """A syntax error: ENOEXEC naming the file and line; kernel unchanged."""
    path = write_module(tmp_path, "broken", "def broken_init(:\n    return 0\n")
    before = messages(kernel)
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(path)
    assert info.value.errno == errno.ENOEXEC
    assert f"{path}:3: SyntaxError" in str(info.value)
    assert since(kernel, before) == [] and kernel.lsmod() == [] and kernel.taint == set()


def test_missing_file_is_enoent(kernel: Kernel) -> None:
    """A path that does not exist: ENOENT in insmod's "could not load" words, nothing changes."""
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("does_not_exist.py"))
    assert info.value.errno == errno.ENOENT
    assert str(info.value).startswith(
        "could not load module does_not_exist: No such file or directory (")
    assert kernel.lsmod() == []


def test_top_level_exception_is_a_load_error(kernel: Kernel) -> None:
    """The file raising while it executes: ENOEXEC with the exception; no Oops, no taint."""
    before = messages(kernel)
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("top_level_raise.py"))
    assert info.value.errno == errno.ENOEXEC
    assert "raised KeyError: 'sizes'" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)
    assert since(kernel, before) == [] and kernel.lsmod() == [] and kernel.taint == set()


# ----------------------------------------------------------------------
# failed init: rolled back completely


def test_init_returning_errno_is_rolled_back_completely(kernel: Kernel) -> None:
    """-ENOMEM from init: ModuleLoadError(ENOMEM) and every registration released."""
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("failing_init.py"))
    assert info.value.errno == errno.ENOMEM
    assert str(info.value).startswith("could not insert module failing_init: "
                                      "Cannot allocate memory")
    dead = gone(kernel, "failing_init")
    wait_exited(kernel, dead.module.my_thread)
    assert kernel.lsmod() == [] and kernel.read("/proc/modules") == ""
    with pytest.raises(IrqMisuse):
        kernel.raise_irq(44)
    kernel.run_for(200)
    kernel.run_until_idle(timeout_ms=5000)
    assert dead.module.ran == []
    assert "failing_wq" not in kernel.read("/sys/kernel/debug/workqueue")
    released = [m for m in messages(kernel) if m.startswith("bottomhalf: failing_init: ")]
    assert [m.split(": ", 2)[2].split(" left behind")[0] for m in released] == [
        "IRQ 44 handler (failing_init)", "scheduled tasklet failing_tasklet [failing_init]",
        "armed timer failing_timer [failing_init]", "workqueue failing_wq",
        "queued work failing_work [failing_init]", "queued work failing_work [failing_init]",
        "kernel thread failing_thread"]
    # nothing of it is left to get in the way of a good load
    mod = kernel.insmod(module_path("failing_init.py"), fail=0)
    kernel.raise_irq(44)  # runs at once, in the calling thread on real
    assert mod.module.ran == ["irq"]
    kernel.rmmod("failing_init")
    assert kernel.lsmod() == []


def test_init_raising_is_an_oops_and_rolled_back(kernel: Kernel) -> None:
    """init raises: an Oops naming it, the armed timer released, EFAULT; the kernel goes on."""
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(module_path("raising_init.py"))
    assert info.value.errno == errno.EFAULT
    assert "raising_init" in str(info.value) and "KeyError" in str(info.value)
    heads = [m for m in messages(kernel) if m.startswith("BUG: unhandled Python exception")]
    assert heads == ["BUG: unhandled Python exception in raising_init init function "
                     "raising_init_init [raising_init] (process context): KeyError: 'missing'"]
    kernel.run_for(100)
    kernel.run_until_idle(timeout_ms=5000)
    assert "raising_init: timer must never run" not in messages(kernel)
    assert kernel.lsmod() == []
    kernel.insmod(module_path("fresh_globals.py"))
    assert messages(kernel)[-1] == "fresh_globals: loads=1"


def test_init_returning_positive_loads_with_a_warning(kernel: Kernel, tmp_path: Any) -> None:
    """do_init_module: a positive return is suspicious but the module loads."""
    path = write_module(tmp_path, "positive",
                        "def positive_init():\n    return 3\n\n"
                    "def positive_exit():\n    pass\n\n"
                        "module_init(positive_init)\nmodule_exit(positive_exit)\n"
                        "MODULE_LICENSE('GPL')\n")
    mod = kernel.insmod(path)
    assert mod.state == "Live"
    lines = messages(kernel)
    i = lines.index("do_init_module: 'positive'->init suspiciously returned 3, it should "
                    "follow 0/-E convention")
    assert lines[i + 1] == "do_init_module: loading module anyway..."
    assert lines[i + 2].startswith("CPU: 0 UID: 0 PID: ")


# ----------------------------------------------------------------------
# rmmod refusals


def test_rmmod_of_a_module_not_loaded(kernel: Kernel) -> None:
    """Not loaded: ModuleError(ENOENT) in kmod's words."""
    with pytest.raises(ModuleError, match="Module fresh_globals is not currently loaded") as info:
        kernel.rmmod("fresh_globals")
    assert info.value.errno == errno.ENOENT


def test_rmmod_of_a_module_in_use_changes_nothing(kernel: Kernel) -> None:
    """A held reference makes rmmod fail; the module stays Live and its exit never runs."""
    mod = kernel.insmod(module_path("fresh_globals.py"))
    mod.refcount += 1  # as try_module_get() by a user of the module would
    with pytest.raises(ModuleError, match="Module fresh_globals is in use") as info:
        kernel.rmmod("fresh_globals")
    assert info.value.errno == errno.EBUSY
    assert kernel.lsmod() == [mod] and mod.state == "Live"
    assert "fresh_globals: bye" not in messages(kernel)
    mod.refcount -= 1
    kernel.rmmod("fresh_globals")
    assert kernel.lsmod() == []


def test_rmmod_of_a_module_without_exit_is_ebusy(kernel: Kernel) -> None:
    """An init but no exit: EBUSY, still loaded, and /proc/modules says [permanent]."""
    mod = kernel.insmod(module_path("no_exit.py"))
    with pytest.raises(ModuleError, match="Device or resource busy") as info:
        kernel.rmmod("no_exit")
    assert info.value.errno == errno.EBUSY
    assert kernel.lsmod() == [mod]
    assert kernel.read("/proc/modules").split(" ")[:4] == ["no_exit", "12288", "0",
                                                          "[permanent],"]


# ----------------------------------------------------------------------
# /proc/modules and lsmod


def test_proc_modules_and_lsmod_formats(sim: Kernel) -> None:
    """/proc/modules: name size refcnt deps state address (taints), newest first."""
    sim.insmod(module_path("fresh_globals.py"))
    sim.insmod(module_path("no_exit.py"))
    sim.insmod(module_path("proprietary.py"))
    assert sim.read("/proc/modules") == (
        "proprietary 12288 0 - Live 0xffffffffc0a20000 (PO)\n"
        "no_exit 12288 0 [permanent], Live 0xffffffffc0a10000 (O)\n"
        "fresh_globals 12288 0 - Live 0xffffffffc0a00000 (O)\n")
    assert sim.modules.lsmod_text() == (
        "Module                  Size  Used by\n"
        "proprietary            12288  0\n"
        "no_exit                12288  0\n"
        "fresh_globals          12288  0\n")
    assert [m.name for m in sim.lsmod()] == ["proprietary", "no_exit", "fresh_globals"]


def test_proc_modules_while_loading_and_unloading(kernel: Kernel, tmp_path: Any) -> None:
    """During init the module is Loading (O+), during exit Unloading (O-), in both
    /proc/modules and the "Modules linked in:" line of a report."""
    path = write_module(
        tmp_path, "selfview",
        "from bottomhalf.context import current_ctx\n\nseen = []\n\n"
        "def look():\n"
        "    seen.append(current_ctx().kernel.read('/proc/modules'))\n"
        "    WARN_ON(1)\n\n"
        "def selfview_init():\n    look()\n    return 0\n\n"
        "def selfview_exit():\n    look()\n\n"
        "module_init(selfview_init)\nmodule_exit(selfview_exit)\nMODULE_LICENSE('GPL')\n")
    mod = kernel.insmod(path)
    kernel.rmmod("selfview")
    loading, unloading = mod.module.seen
    assert loading.split(" ")[4] == "Loading" and loading.endswith(" (O+)\n")
    assert unloading.split(" ")[4] == "Unloading" and unloading.endswith(" (O-)\n")
    assert [m for m in messages(kernel) if m.startswith("Modules linked in:")] == [
        "Modules linked in: selfview(O+)", "Modules linked in: selfview(O-)"]


# ----------------------------------------------------------------------
# the tutorial's name clashes (reference §12)


@pytest.mark.parametrize("name, clash, line", [
    ("tasklet_driver", "tasklet_init", 23),
    ("workqueue_driver", "workqueue_init", 23),
])
def test_tutorial_init_named_like_a_kernel_function_is_refused(kernel: Kernel, name: str,
                                                                clash: str, line: int) -> None:
    """The tutorial's init names clash with kernel functions: refused before anything runs,
    naming the file and line as gcc would."""
    path = example(f"tutorial_verbatim/{name}.py")
    with pytest.raises(ModuleLoadError) as info:
        kernel.insmod(path)
    assert info.value.errno == errno.ENOEXEC
    assert f"{path}:{line}: error: '{clash}' is the name of a kernel function " \
           f"(in C: conflicting types for '{clash}')" in str(info.value)
    assert kernel.lsmod() == [] and kernel.dmesg()[3:] == []


def test_tutorial_tasklet_clash_names_the_inner_call(kernel: Kernel) -> None:
    """The message says the call inside would reach the module's own function."""
    with pytest.raises(ModuleLoadError, match="the call at line 24 would call the module's own "
                                              r"tasklet_init\(\) instead of the kernel's"):
        kernel.insmod(example("tutorial_verbatim/tasklet_driver.py"))


# ----------------------------------------------------------------------
# module parameters


def test_module_params_are_converted(kernel: Kernel) -> None:
    """insmod(path, count=...) converts each value as param_set_<type> does."""
    mod = kernel.insmod(module_path("params_mod.py"), count="0x10", name="bob", verbose="y",
                        mask=255)
    assert (mod.module.count, mod.module.name, mod.module.verbose, mod.module.mask) == \
        (16, "bob", True, 255)
    assert messages(kernel)[-1] == "params_mod: count=16 name=bob verbose=1 mask=0xff"
    kernel.rmmod("params_mod")
    mod = kernel.insmod(module_path("params_mod.py"), count=-3, verbose=False)
    assert (mod.module.count, mod.module.verbose, mod.module.name) == (-3, False, "default")


def test_unknown_module_param_is_ignored_with_a_message(kernel: Kernel) -> None:
    """A parameter the module does not declare: logged and ignored, the load goes on."""
    kernel.insmod(module_path("params_mod.py"), bogus=1)
    assert messages(kernel)[-2:] == ["params_mod: unknown parameter 'bogus' ignored",
                                     "params_mod: count=1 name=default verbose=0 mask=0x0"]


@pytest.mark.parametrize("params, shown", [
    ({"count": "abc"}, "`abc' invalid for parameter `count'"),
    ({"count": 2**31}, "`2147483648' invalid for parameter `count'"),
    ({"mask": -1}, "`-1' invalid for parameter `mask'"),
    ({"verbose": "maybe"}, "`maybe' invalid for parameter `verbose'"),
    ({"count": 1.5}, "`1.5' invalid for parameter `count'"),
])
def test_invalid_module_param_is_refused(kernel: Kernel, params: dict[str, Any],
                                         shown: str) -> None:
    """A value the type cannot hold: EINVAL ("Invalid parameters"), init never runs."""
    with pytest.raises(ModuleLoadError, match="Invalid parameters") as info:
        kernel.insmod(module_path("params_mod.py"), **params)
    assert info.value.errno == errno.EINVAL
    assert messages(kernel)[-1] == f"params_mod: {shown}"
    assert kernel.lsmod() == []


# ----------------------------------------------------------------------
# code called after its module is gone


def test_deferred_work_left_by_exit_faults_later(kernel: Kernel) -> None:
    """Tasklet, timer and work queued by a sloppy exit: each call is a page-fault Oops."""
    mod = kernel.insmod(module_path("leaves_work.py"))
    kernel.rmmod("leaves_work")
    kernel.call(L.tasklet_enable, mod.module.my_tasklet)
    kernel.run_for(300)
    kernel.run_until_idle(timeout_ms=5000)
    lines = messages(kernel)
    assert not any(m.startswith("leaves_work: ") and m.endswith(" ran") for m in lines)
    notes = [m for m in lines if m.startswith("bottomhalf: the ")]
    assert notes == [
        f"bottomhalf: the {what} {fn}() belongs to module leaves_work, which was unloaded "
        "while it was still queued or registered"
        for what, fn in [("tasklet", "leftover_tasklet"), ("timer", "leftover_timer"),
                         ("work", "leftover_work")]]
    faults = [m for m in lines if m.startswith("BUG: unable to handle page fault for address: ")]
    assert len(faults) == 3
    assert sum(m == "#PF: supervisor instruction fetch in kernel mode" for m in lines) == 3
    assert "D" in kernel.taint
    kernel.insmod(module_path("fresh_globals.py"))
    assert messages(kernel)[-1] == "fresh_globals: loads=1"


def test_page_fault_report_exact_on_sim(sim: Kernel) -> None:
    """The Oops for the leftover timer, line by line."""
    sim.insmod(module_path("leaves_work.py"))
    sim.rmmod("leaves_work")
    sim.run_for(150)
    lines = messages(sim)
    i = next(i for i, m in enumerate(lines) if m.startswith("BUG: unable to handle page fault"))
    addr = lines[i].rsplit(" ", 1)[1]
    assert lines[i:] == [
        f"BUG: unable to handle page fault for address: {addr}",
        "#PF: supervisor instruction fetch in kernel mode",
        "#PF: error_code(0x0010) - not-present page",
        "Oops: 0010 [#1] PREEMPT SMP NOPTI",
        "CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Tainted: G           O       6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        f"RIP: 0010:0x{int(addr, 16):x}",
        f"Code: Unable to access opcode bytes at 0x{int(addr, 16) - 0x2a:x}.",
        "Call Trace:",
        " <IRQ>",
        " call_timer_fn",
        " expire_timers",
        " __run_timers",
        " run_timer_softirq",
        " handle_softirqs",
        " irq_exit_rcu",
        *IRQ_FROM_IDLE,
        "Modules linked in: [last unloaded: leaves_work(O)]",
        f"CR2: {addr}",
        "Disabling lock debugging due to kernel taint",
        "---[ end trace 0000000000000000 ]---",
        "bottomhalf: the timer leftover_timer() belongs to module leaves_work, which was "
        "unloaded while it was still queued or registered",
        "bottomhalf: Linux would now panic (Kernel panic - not syncing: Fatal exception in "
        "interrupt); this kernel keeps running",
    ]
    assert int(addr, 16) >> 32 == 0xFFFFFFFF
