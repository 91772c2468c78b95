"""printk: levels, continuation, C conversions, the ring buffer and dmesg, the console
and /proc/sys/kernel/printk, and the WARN/BUG/dump_stack reports (reference §10)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import KernelFileError
from bottomhalf.printk import (
    _RECORD_OVERHEAD,
    LOG_BUF_LEN,
    PrintkFormatError,
    format_timestamp,
    vsprintf,
)

from .conftest import messages, module_path, unoffset


def records(k: Kernel) -> list[tuple[int, str]]:
    """(level, text) of every record after boot."""
    return [(r.level, r.text) for r in k.log.snapshot()[3:]]


# ----------------------------------------------------------------------
# levels and helpers


def test_levels_pr_helpers_and_pr_fmt(kernel: Kernel) -> None:
    """KERN_* set the level, no level or KERN_DEFAULT means 4; pr_* add pr_fmt, pr_cont not."""
    kernel.insmod(module_path("printk_levels.py"))
    pre = "printk_levels: "
    assert records(kernel) == [
        (4, "printk_levels: loading out-of-tree module taints kernel."),
        (0, "emerg"), (1, "alert"), (2, "crit"), (3, "err"), (4, "warning"), (5, "notice"),
        (6, "info"), (7, "debug"), (4, "default"), (4, "none"),
        (0, pre + "pr_emerg 0"), (1, pre + "pr_alert 1"), (2, pre + "pr_crit 2"),
        (3, pre + "pr_err 3"), (4, pre + "pr_warn 4"), (5, pre + "pr_notice 5"),
        (6, pre + "pr_info 6"), (6, pre + "pr_info then pr_cont (no pr_fmt)"),
    ]


def test_pr_debug_prints_when_the_module_defines_debug(kernel: Kernel) -> None:
    """pr_debug is compiled in by DEBUG and logs at KERN_DEBUG."""
    kernel.insmod(module_path("printk_debug.py"))
    assert records(kernel)[-1] == (7, "debugging on")


def test_default_message_loglevel_comes_from_the_sysctl(kernel: Kernel) -> None:
    """A message without a level gets the second value of /proc/sys/kernel/printk."""
    kernel.write("/proc/sys/kernel/printk", "7 6")
    kernel.call(L.printk, "plain\n")
    assert records(kernel)[-1] == (6, "plain")


# ----------------------------------------------------------------------
# KERN_CONT


def test_cont_appends_to_the_same_callers_open_record(kernel: Kernel) -> None:
    """Without a newline the record stays open; the caller's KERN_CONT pieces join it."""

    def scenario() -> None:
        L.printk(L.KERN_INFO + "a")
        L.pr_cont("b")
        L.printk(L.KERN_CONT + L.KERN_ERR + "c")  # a level with KERN_CONT still appends
        L.pr_cont("d\n")
        L.pr_cont("e\n")  # nothing open any more: a record of its own, default level

    kernel.call(scenario)
    assert records(kernel) == [(6, "abcd"), (4, "e")]


def test_cont_cannot_join_another_callers_record(kernel: Kernel) -> None:
    """A tasklet printing in between (CPU caller id) closes the task's open record."""
    t = L.tasklet_struct()

    def scenario() -> None:
        L.tasklet_init(t, lambda data: L.printk(L.KERN_INFO + "tasklet\n"), 0)
        L.printk(L.KERN_INFO + "part1")
        L.local_bh_disable()
        L.tasklet_schedule(t)
        L.local_bh_enable()  # the tasklet prints here, as a softirq
        L.pr_cont(" part2\n")

    kernel.call(scenario)
    assert records(kernel) == [(6, "part1"), (6, "tasklet"), (4, " part2")]


def test_a_new_record_from_the_same_caller_closes_the_open_one(kernel: Kernel) -> None:
    """printk with a level (not KERN_CONT) starts a new record even from the same task."""

    def scenario() -> None:
        L.printk(L.KERN_INFO + "one")
        L.printk(L.KERN_NOTICE + "two\n")

    kernel.call(scenario)
    assert records(kernel) == [(6, "one"), (5, "two")]


def test_continuations_count_towards_the_ring_buffer_size(kernel: Kernel) -> None:
    """KERN_CONT text is counted, so old records are dropped to keep LOG_BUF_LEN."""
    piece = "x" * 1000
    pieces = 3 * LOG_BUF_LEN // 4 // len(piece)  # each record fills 3/4 of the buffer

    def scenario() -> None:
        for name in ("first", "second"):
            L.printk(L.KERN_INFO + name)
            for _ in range(pieces):
                L.pr_cont(piece)
            L.pr_cont("\n")

    kernel.call(scenario)
    log = kernel.log
    kept = log.snapshot(include_cleared=True)
    assert [r.text for r in kept] == ["second" + piece * pieces]
    assert log.size == len(kept[0].text) + _RECORD_OVERHEAD <= LOG_BUF_LEN


def test_ring_buffer_keeps_the_newest_records_within_log_buf_len(kernel: Kernel) -> None:
    """Once full, the oldest records go first; the size never exceeds LOG_BUF_LEN."""
    line = "y" * 200

    def scenario() -> None:
        for i in range(2 * LOG_BUF_LEN // len(line)):
            L.printk(L.KERN_INFO + f"{i:05d}{line}\n")

    kernel.call(scenario)
    log = kernel.log
    kept = log.snapshot(include_cleared=True)
    assert 0 < log.size <= LOG_BUF_LEN
    assert log.size == sum(len(r.text) + _RECORD_OVERHEAD for r in kept)
    assert [r.seq for r in kept] == list(range(kept[0].seq, log.seq + 1))
    assert kept[-1].text.startswith(f"{2 * LOG_BUF_LEN // len(line) - 1:05d}")


# ----------------------------------------------------------------------
# dmesg


def test_dmesg_timestamps_and_multiline_records(sim: Kernel) -> None:
    """[%5lu.%06lu] before every line; a record with newlines prints each line."""
    sim.run_for(1234.567)
    sim.call(L.printk, L.KERN_INFO + "first\nsecond\n")
    assert sim.dmesg()[-2:] == ["[    1.234567] first", "[    1.234567] second"]
    assert records(sim) == [(6, "first\nsecond")]


def test_dmesg_seconds_widen_past_99999(sim: Kernel) -> None:
    """The seconds field is %5lu: at 100000 s it grows to six digits."""
    sim.run_for(99_999_999.999)
    sim.call(L.printk, L.KERN_INFO + "before\n")
    sim.run_for(0.001)
    sim.call(L.printk, L.KERN_INFO + "after\n")
    assert sim.dmesg()[-2:] == ["[99999.999999] before", "[100000.000000] after"]


def test_format_timestamp() -> None:
    """Microseconds are truncated, not rounded."""
    assert format_timestamp(0) == "[    0.000000]"
    assert format_timestamp(1_999_999_999) == "[    1.999999]"
    assert format_timestamp(123_456_789_012_345) == "[123456.789012]"


# ----------------------------------------------------------------------
# /proc/sys/kernel/printk and the console


def test_sysctl_reads_four_tab_separated_values(kernel: Kernel) -> None:
    """console_loglevel, default_message_loglevel, minimum, default console level."""
    assert kernel.read("/proc/sys/kernel/printk") == "7\t4\t1\t7\n"


@pytest.mark.parametrize("text, expect", [
    ("1", "1\t4\t1\t7\n"),
    ("3 5\n", "3\t5\t1\t7\n"),
    ("8\t6 2 9", "8\t6\t2\t9\n"),
    ("2 3 4 5 6 7", "2\t3\t4\t5\n"),
    ("0x10 010", "16\t8\t1\t7\n"),
    ("-1", "-1\t4\t1\t7\n"),
])
def test_sysctl_write_updates_leading_values(kernel: Kernel, text: str, expect: str) -> None:
    """proc_dointvec: as many values as given, from the first; base 0; extras ignored."""
    kernel.write("/proc/sys/kernel/printk", text)
    assert kernel.read("/proc/sys/kernel/printk") == expect


@pytest.mark.parametrize("text", ["", "abc", "5 x", "08", "+3", "2147483648", "4.5"])
def test_sysctl_bad_write_is_refused_and_changes_nothing(kernel: Kernel, text: str) -> None:
    """A value that is not a C int: EINVAL, and no value changes (not even leading ones)."""
    kernel.write("/proc/sys/kernel/printk", "6 4 1 7")
    with pytest.raises(KernelFileError) as info:
        kernel.write("/proc/sys/kernel/printk", text)
    assert info.value.errno == 22
    assert kernel.read("/proc/sys/kernel/printk") == "6\t4\t1\t7\n"


def test_console_shows_only_levels_below_console_loglevel(kernel: Kernel) -> None:
    """`echo 1 > /proc/sys/kernel/printk` hides KERN_INFO from the console, not from dmesg."""
    console = io.StringIO()
    kernel.log.attach_console(console)
    kernel.call(L.pr_info, "visible\n")
    kernel.call(L.printk, L.KERN_DEBUG + "debug is level 7: never at loglevel 7\n")
    kernel.write("/proc/sys/kernel/printk", "1")
    kernel.call(L.pr_info, "Workqueue scheduled\n")
    kernel.call(L.pr_emerg, "emergency\n")
    shown = [line.split("] ", 1)[1] for line in console.getvalue().splitlines()]
    assert shown == ["visible", "emergency"]
    assert messages(kernel)[-4:] == ["visible", "debug is level 7: never at loglevel 7",
                                     "Workqueue scheduled", "emergency"]
    kernel.log.detach_console(console)


def test_console_gets_a_continued_line_when_it_is_finished(kernel: Kernel) -> None:
    """Continuation pieces reach the console as one line, once the newline arrives."""
    console = io.StringIO()
    kernel.log.attach_console(console)

    def scenario() -> str:
        L.printk(L.KERN_INFO + "a")
        L.pr_cont("b")
        seen = console.getvalue()
        L.pr_cont("c\n")
        return seen

    assert kernel.call(scenario) == ""
    assert [line.split("] ", 1)[1] for line in console.getvalue().splitlines()] == ["abc"]


# ----------------------------------------------------------------------
# conversions (lib/vsprintf.c)


@pytest.mark.parametrize("fmt, args, out", [
    ("%d %i %u", (-5, 7, 3), "-5 7 3"),
    ("%u", (-1,), "4294967295"),
    ("%lu %llu %zu", (-1, 2**64 + 5, -2), "18446744073709551615 5 18446744073709551614"),
    ("%d", (2**31,), "-2147483648"),
    ("%ld %lld %zd", (2**63, -3, -4), "-9223372036854775808 -3 -4"),
    ("%hhd %hhu %hd %hu", (255, -1, 65535, -1), "-1 255 -1 65535"),
    ("%x %X %lx %#x %#X", (255, 255, 2**40, 255, 255), "ff FF 10000000000 0xff 0XFF"),
    ("%x", (-1,), "ffffffff"),
    ("%o %#o %#o %#x", (8, 8, 0, 0), "10 010 0 0x0"),
    ("%5d|%-5d|%05d|%+d|% d", (42, 42, 42, 42, 42), "   42|42   |00042|+42| 42"),
    ("%+u % x", (42, 42), "42 2a"),
    ("%.3d|%8.3d|%-8.3d|", (7, 7, 7), "007|     007|007     |"),
    ("%08.3d", (7,), "00000007"),
    ("%.0d|%.d", (0, 0), "0|0"),
    ("%*d|%-*d|%.*d", (5, 1, 3, 2, 4, 3), "    1|2  |0003"),
    ("%*d", (-4, 9), "9   "),
    ("%s|%5s|%-5s|%.2s|%5.1s", ("ab", "ab", "ab", "abc", "xyz"), "ab|   ab|ab   |ab|    x"),
    ("%s", (None,), "(null)"),
    ("%c%c|%3c|%-3c|", (72, "i", 65, 66), "Hi|  A|B  |"),
    ("%c", (256 + 65,), "A"),
    ("100%% %5%", (), "100% %"),
    ("%p", (None,), "0000000000000000"),
])
def test_conversions(fmt: str, args: tuple[Any, ...], out: str) -> None:
    """Each conversion prints what the kernel's vsprintf prints."""
    assert vsprintf(fmt, args) == out


def test_pointer_conversions_in_a_kernel(sim: Kernel) -> None:
    """%ps/%pS name a module function, %p hashes (stable per object), %px is raw."""
    mod = sim.insmod(module_path("warn_bug.py"))
    fn = mod.module.do_dump_stack
    obj = L.tasklet_struct()

    def scenario() -> list[str]:
        L.printk("%ps|%pS|%pB\n", fn, fn, fn)
        L.printk("%p|%p|%p\n", obj, obj, None)
        L.printk("%px|%pK|%pSR\n", obj, obj, fn)
        return messages(sim)[-3:]

    syms, hashed, raw = sim.call(scenario)
    assert unoffset([syms]) == ["do_dump_stack [warn_bug]|do_dump_stack+0x?/0x? [warn_bug]|"
                                "do_dump_stack+0x?/0x? [warn_bug]"]
    a, b, c = hashed.split("|")
    assert a == b and re.fullmatch("00000000[0-9a-f]{8}", a) and c == "0" * 16
    px, pk, psr = raw.split("|")
    assert re.fullmatch("ffff[0-9a-f]{12}", px) and pk == a
    assert unoffset([psr]) == ["do_dump_stack+0x?/0x? [warn_bug]"]


@pytest.mark.parametrize("fmt, args, what", [
    ("%d and %d\n", (1,), "'%d' has no argument"),
    ("%*d\n", (), "'%*' has no argument"),
    ("%y\n", (1,), "'%y' is not a conversion"),
    ("%n\n", (1,), "'%n' is not supported"),
    ("50%", (), "is incomplete"),
    ("%d\n", ("5",), "needs an integer, got str"),
    ("%d\n", (1.5,), "needs an integer, got float"),
    ("%pM\n", (b"\0" * 6,), "does not model"),
])
def test_bad_formats_raise_and_log_nothing(kernel: Kernel, fmt: str, args: tuple[Any, ...],
                                           what: str) -> None:
    """A format that does not fit its arguments raises PrintkFormatError naming the conversion."""
    before = kernel.dmesg()
    with pytest.raises(PrintkFormatError, match=re.escape(what)):
        kernel.call(L.printk, L.KERN_INFO + fmt, *args)
    assert kernel.dmesg() == before


_FLAGS = st.sampled_from(["", "-", "+", " ", "#", "0", "-+", "+0", " 0", "#0", "-#"])
_WIDTH = st.one_of(st.just(""), st.integers(0, 25).map(str))
_PREC = st.one_of(st.just(""), st.integers(0, 25).map(lambda p: f".{p}"))


@given(_FLAGS, _WIDTH, _PREC, st.sampled_from(["d", "i"]), st.sampled_from(["", "l", "ll"]),
       st.integers(-(2**31), 2**31 - 1))
def test_signed_conversions_agree_with_python(flags: str, width: str, prec: str, conv: str,
                                              length: str, value: int) -> None:
    """%d/%i match Python's % except zero padding with a precision (Linux keeps it)."""
    if "0" in flags and prec:
        return
    assert vsprintf(f"%{flags}{width}{prec}{length}{conv}", (value,)) == \
        f"%{flags}{width}{prec}{conv}" % value


@given(_FLAGS, _WIDTH, _PREC, st.sampled_from(["u", "x", "X", "o"]),
       st.sampled_from(["", "l", "z"]), st.integers(0, 2**32 - 1))
def test_unsigned_conversions_agree_with_python(flags: str, width: str, prec: str, conv: str,
                                                length: str, value: int) -> None:
    """%u/%x/%X/%o match Python's % where C's rules and Python's coincide."""
    if "0" in flags and prec or "+" in flags or " " in flags or conv in "uo" and "#" in flags:
        return
    assert vsprintf(f"%{flags}{width}{prec}{length}{conv}", (value,)) == \
        f"%{flags}{width}{prec}{'d' if conv == 'u' else conv}" % value


@given(_FLAGS, _WIDTH, _PREC, st.text(alphabet=st.characters(blacklist_characters="%\0"),
                                      max_size=30))
def test_string_conversion_agrees_with_python(flags: str, width: str, prec: str, s: str) -> None:
    """%s pads and truncates as Python does."""
    assert vsprintf(f"%{flags}{width}{prec}s", (s,)) == f"%{flags}{width}{prec}s" % s


@given(st.sampled_from(["", "-"]), _WIDTH, st.integers(0, 255))
def test_char_conversion_agrees_with_python(flags: str, width: str, value: int) -> None:
    """%c of an int prints that character, padded with spaces."""
    assert vsprintf(f"%{flags}{width}c", (value,)) == f"%{flags}{width}c" % value


# ----------------------------------------------------------------------
# WARN_ON, WARN_ON_ONCE, WARN, BUG_ON, dump_stack


def report_from(k: Kernel, first: str) -> list[str]:
    lines = messages(k)
    i = max(i for i, line in enumerate(lines) if line.startswith(first))
    return unoffset(lines[i:])


def test_warn_on_report(sim: Kernel) -> None:
    """WARN_ON(true): cut here, WARNING at file:line, modules, CPU, RIP, trace; taint W."""
    path = module_path("warn_bug.py")
    mod = sim.insmod(path)
    assert sim.call(mod.module.do_warn_on, 0) is False
    assert sim.call(mod.module.do_warn_on, 1) is True
    assert report_from(sim, "------------[ cut here ]") == [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 0 PID: 1002 at {path}:7 do_warn_on+0x?/0x? [warn_bug]",
        "Modules linked in: warn_bug(O)",
        "CPU: 0 UID: 0 PID: 1002 Comm: python3 Tainted: G           O       6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        "RIP: 0010:do_warn_on+0x?/0x? [warn_bug]",
        "Call Trace:",
        " <TASK>",
        " do_warn_on+0x?/0x? [warn_bug]",
        " do_syscall_64",
        " entry_SYSCALL_64_after_hwframe",
        " </TASK>",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 7, in do_warn_on',
        "    return WARN_ON(cond)",
        "---[ end trace 0000000000000000 ]---",
    ]
    assert sim.taint == {"O", "W"}


def test_warn_prints_its_message_after_cut_here(kernel: Kernel) -> None:
    """WARN(cond, fmt, ...) puts the formatted message between cut here and WARNING."""
    mod = kernel.insmod(module_path("warn_bug.py"))
    assert kernel.call(mod.module.do_warn, 2) is False
    assert kernel.call(mod.module.do_warn, 3) is True
    lines = messages(kernel)
    i = lines.index("------------[ cut here ]------------")
    assert lines[i + 1] == "value 3 is above 2"
    assert lines[i + 2].startswith("WARNING: CPU: 0 PID: ")


def test_warn_on_once_warns_once_per_site_and_load(kernel: Kernel) -> None:
    """WARN_ON_ONCE reports the first time only; a fresh load of the module has fresh flags."""
    mod = kernel.insmod(module_path("warn_bug.py"))
    assert [kernel.call(mod.module.do_warn_on_once) for _ in range(3)] == [True, True, True]
    assert sum(line.startswith("WARNING:") for line in messages(kernel)) == 1
    kernel.rmmod("warn_bug")
    mod = kernel.insmod(module_path("warn_bug.py"))
    kernel.call(mod.module.do_warn_on_once)
    assert sum(line.startswith("WARNING:") for line in messages(kernel)) == 2


def test_bug_on_report_and_the_caller_is_unwound(sim: Kernel) -> None:
    """BUG_ON(true): kernel BUG at file:line!, an invalid-opcode Oops, taint D, caller killed."""
    path = module_path("warn_bug.py")
    mod = sim.insmod(path)
    assert sim.call(mod.module.do_bug_on, 0) == "survived"
    with pytest.raises(Exception, match=re.escape(f"kernel BUG at {path}:19")):
        sim.call(mod.module.do_bug_on, 1)
    assert report_from(sim, "------------[ cut here ]") == [
        "------------[ cut here ]------------",
        f"kernel BUG at {path}:19!",
        "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        "CPU: 0 UID: 0 PID: 1002 Comm: python3 Tainted: G           O       6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        "RIP: 0010:do_bug_on+0x?/0x? [warn_bug]",
        "Call Trace:",
        " <TASK>",
        " do_bug_on+0x?/0x? [warn_bug]",
        " do_syscall_64",
        " entry_SYSCALL_64_after_hwframe",
        " </TASK>",
        "Modules linked in: warn_bug(O)",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 19, in do_bug_on',
        "    BUG_ON(cond)",
        "Disabling lock debugging due to kernel taint",
        "---[ end trace 0000000000000000 ]---",
    ]
    assert "D" in sim.taint
    assert [line for line in messages(sim) if line.startswith("kernel BUG")] == \
        [f"kernel BUG at {path}:19!"]


def test_dump_stack_report(sim: Kernel) -> None:
    """dump_stack: CPU and hardware lines, then the Call Trace from dump_stack_lvl."""
    path = module_path("warn_bug.py")
    mod = sim.insmod(path)
    sim.call(mod.module.do_dump_stack)
    assert report_from(sim, "CPU: 0 UID: 0") == [
        "CPU: 0 UID: 0 PID: 1001 Comm: python3 Tainted: G           O       6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        "Call Trace:",
        " <TASK>",
        " dump_stack_lvl",
        " do_dump_stack+0x?/0x? [warn_bug]",
        " do_syscall_64",
        " entry_SYSCALL_64_after_hwframe",
        " </TASK>",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 24, in do_dump_stack',
        "    dump_stack()",
    ]
    assert "W" not in sim.taint


def test_reports_on_both_engines_keep_the_kernel_running(kernel: Kernel) -> None:
    """After WARN_ON, BUG_ON and dump_stack the kernel still loads and unloads modules."""
    mod = kernel.insmod(module_path("warn_bug.py"))
    kernel.call(mod.module.do_warn_on, 1)
    with pytest.raises(Exception, match="kernel BUG at"):
        kernel.call(mod.module.do_bug_on, 1)
    kernel.call(mod.module.do_dump_stack)
    kernel.rmmod("warn_bug")
    kernel.insmod(module_path("printk_debug.py"))
    assert messages(kernel)[-1] == "debugging on"
    assert {"W", "D", "O"} <= kernel.taint
    counts = [sum(line.startswith(p) for line in messages(kernel))
              for p in ("WARNING:", "kernel BUG at", "Oops: invalid opcode", "Call Trace:")]
    assert counts == [1, 1, 1, 3]


def test_sim_log_is_identical_for_the_same_seed() -> None:
    """Two sim runs with one seed log the same bytes: hashed pointers, reports and all."""

    def run() -> list[str]:
        with Kernel(cpus=2, engine="sim", seed=7) as k:
            mod = k.insmod(module_path("oops_handlers.py"))
            k.raise_irq(43)
            k.call(mod.module.schedule_both)
            k.call(mod.module.arm_timers)
            k.call(mod.module.queue_works)
            k.call(L.printk, "%p %p %p\n", mod.module.bad_work, mod.module.good_work, mod)
            k.run_until_idle()
            k.rmmod("oops_handlers")
            k.insmod(module_path("sleep_in_tasklet.py"))
            k.run_until_idle()
            return k.dmesg()

    first = run()
    assert len(first) > 100
    assert run() == first
