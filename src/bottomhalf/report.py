"""Kernel reports: WARN, BUG, Oops, the sleeping-in-atomic splat, dump_stack,
lockups and hung tasks.

Each report is printed line by line through printk, in the layout of the
corresponding Linux report (kernel/panic.c ``__warn``, lib/bug.c
``report_bug``, arch/x86/kernel/dumpstack.c ``die``, kernel/sched/core.c
``__might_resched``, lib/dump_stack.c, kernel/watchdog.c, kernel/hung_task.c), with two
additions Linux cannot make, both marked as such in the log:

* after the ``Call Trace`` block comes the Python traceback of the module
  code involved, so the learner sees the file and line of their own code;
* a line starting ``bottomhalf:`` says in words what went wrong, or that
  Linux would have panicked where this kernel keeps running.

The ``Call Trace`` is built from the real Python stack: module frames are
shown as ``func+0xOFF/0xSIZE [module]`` (the bytecode offset and the code
size); the kernel's own frames by the name of the kernel function they
model.  As on x86, frames that ran on the interrupt stack (a hard IRQ, or
softirqs run at irq_exit or local_bh_enable) sit between ``<IRQ>`` and
``</IRQ>``, the interrupted task's frames between ``<TASK>`` and ``</TASK>``.
Register dumps (``RSP:``, ``RAX:``...) and ``Code:`` bytes are left out:
Python has no registers to show.
"""

from __future__ import annotations

import linecache
import os
import traceback
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import ExecCtx
    from .kernel import Kernel
    from .task import Task

UTS_RELEASE = "6.12.0-bottomhalf"
UTS_VERSION = "#1"

# (true letter, false letter) in taint_flags order (kernel/panic.c, 6.12)
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"
TAINT_FALSE = {"P": "G"}

CUT_HERE = "------------[ cut here ]------------"
END_TRACE = "---[ end trace 0000000000000000 ]---"
OOPS_FLAGS = "PREEMPT SMP NOPTI"

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_ENGINE_DIR = os.path.join(_PKG_DIR, "engines")
# our frames that are plumbing, not kernel functions
_SKIP_FUNCS = {"call_handler", "check", "<lambda>", "main", "sleep_until", "_sleep_on",
               "might_sleep", "_take_irq", "_park", "wrapper", "report_atomic_sleep",
               "warn", "oops", "dump_stack", "_call_trace_lines", "_frames", "_warn_here",
               "call_trace_lines", "BUG", "BUG_ON", "WARN_ON", "WARN_ON_ONCE", "WARN",
               "kthread_fn", "_warn_once", "_run"}
# our function names that differ from the kernel function they model
_KERNEL_NAMES = {
    "_action_common": "tasklet_action_common",
    "run_task": "kthread",
    "handle": "__common_interrupt",
    "do_irq": "common_interrupt",
    "raise_irq": "asm_common_interrupt",
    "schedule": "schedule",
    "do_softirq_irqs_off": "irq_exit_rcu",
    "_tick_sched_timer": "tick_sched_timer",
    "_interrupt": "hrtimer_interrupt",
    "_irq_thread": "irq_thread",
    "worker_thread": "worker_thread",
    "run_timer_softirq": "run_timer_softirq",
    "_call_timer_fn": "call_timer_fn",
    "_expire_timers": "expire_timers",
    "_run_timers": "__run_timers",
    "load_in_task": "load_module",
    "unload_in_task": "__do_sys_delete_module",
    "insmod_main": "do_syscall_64",
    "rmmod_main": "do_syscall_64",
    "call_main": "do_syscall_64",
    "_queue_work": "__queue_work",
    "_queue_delayed_work": "__queue_delayed_work",
    "_start_flush_work": "start_flush_work",
    "_grab_queued": "try_to_grab_pending",
    "set_max_active": "workqueue_set_max_active",
}
# where a stack enters the interrupt stack: everything older was interrupted
_IRQ_ENTRIES = ("common_interrupt", "do_softirq")


def print_tainted(kernel: Kernel) -> str:
    taint = kernel.taint
    if not taint:
        return "Not tainted"
    s = "".join(c if c in taint else TAINT_FALSE.get(c, " ") for c in TAINT_FLAGS)
    return "Tainted: " + s


def cpu_line(kernel: Kernel, ctx: ExecCtx | None) -> str:
    if ctx is None:
        cpu, pid, comm = 0, 0, "swapper/0"
    else:
        cpu, pid, comm = ctx.cpu, ctx.task.pid, ctx.task.comm
    return (f"CPU: {cpu} UID: 0 PID: {pid} Comm: {comm[:20]} {print_tainted(kernel)} "
            f"{UTS_RELEASE} {UTS_VERSION}")


def hardware_line(kernel: Kernel) -> str:
    return (f"Hardware name: bottomhalf virtual machine ({kernel.engine.name} engine, "
            f"{kernel.ncpus} CPUs, seed {kernel.seed})")


def _frames(start: types.FrameType | None) -> list[types.FrameType]:
    out = []
    f = start
    while f is not None:
        out.append(f)
        f = f.f_back
    return out


def _is_kernel_file(path: str) -> bool:
    return path.startswith(_PKG_DIR) and not path.startswith(_ENGINE_DIR)


def frame_symbol(kernel: Kernel, f: types.FrameType) -> str:
    """``%pS`` of the instruction a frame is at: ``func+0xOFF/0xSIZE [mod]``."""
    code = f.f_code
    text = f"{code.co_name}+0x{f.f_lasti:x}/0x{max(len(code.co_code), 1):x}"
    mod = kernel.modules.name_for_globals(f.f_globals)
    return f"{text} [{mod}]" if mod else text


def _on_irq_stack(ctx: ExecCtx | None) -> bool:
    """x86 runs hard IRQs, and softirqs not run by ksoftirqd, on the IRQ stack."""
    if ctx is None:
        return False
    return ctx.in_hardirq() or (ctx.in_serving_softirq()
                                and not ctx.task.comm.startswith("ksoftirqd/"))


def call_trace_lines(kernel: Kernel, ctx: ExecCtx | None, start: types.FrameType | None,
                     skip_top: int = 0, top: tuple[str, ...] = ()
                     ) -> tuple[list[str], list[str]]:
    """(Call Trace lines, Python traceback lines) for the stack from ``start``.

    ``top`` names kernel functions to show above the first frame (the
    reporting functions Linux's own trace starts with).
    """
    frames = _frames(start)[skip_top:]
    trace: list[str] = [" " + name for name in top]
    user: list[types.FrameType] = []
    user_task = ctx is not None and not ctx.task.flags & 0x00200000  # !PF_KTHREAD
    modules = kernel.modules
    irq_split = -1  # index in trace after the outermost IRQ entry frame
    for f in frames:
        code = f.f_code
        path = code.co_filename
        if modules.name_for_globals(f.f_globals) is not None:
            trace.append(" " + frame_symbol(kernel, f))
            user.append(f)
        elif _is_kernel_file(path):
            name = code.co_name
            if name in _SKIP_FUNCS or name.startswith("__") and name != "__queue_work":
                continue
            if name == "run_task" and user_task:
                name = "entry_SYSCALL_64_after_hwframe"
            else:
                name = _KERNEL_NAMES.get(name, name)
            entry = " " + name
            if not trace or trace[-1] != entry:
                trace.append(entry)
                if name in _IRQ_ENTRIES:
                    irq_split = len(trace)
    if _on_irq_stack(ctx):
        assert ctx is not None
        irq_part = trace if irq_split < 0 else trace[:irq_split]
        task_part = [] if irq_split < 0 else trace[irq_split:]
        if ctx.task.is_idle and not task_part:
            task_part = [" do_idle", " cpu_startup_entry"]
        lines = ["Call Trace:", " <IRQ>", *irq_part, " </IRQ>"]
        if task_part:
            lines += [" <TASK>", *task_part, " </TASK>"]
    else:
        lines = ["Call Trace:", " <TASK>", *trace, " </TASK>"]
    py: list[str] = []
    if user:
        py.append("Python traceback (most recent call last):")
        for f in reversed(user):
            py.append(f'  File "{f.f_code.co_filename}", line {f.f_lineno}, in {f.f_code.co_name}')
            src = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
            if src:
                py.append(f"    {src}")
    return lines, py


def caller_frame(kernel: Kernel, start: types.FrameType | None) -> types.FrameType | None:
    """The innermost module frame, else the innermost frame outside bottomhalf."""
    f = start
    fallback: types.FrameType | None = None
    while f is not None:
        if kernel.modules.name_for_globals(f.f_globals) is not None:
            return f
        if fallback is None and not f.f_code.co_filename.startswith(_PKG_DIR):
            fallback = f
        f = f.f_back
    return fallback


def caller_location(kernel: Kernel, start: types.FrameType | None) -> tuple[str, int]:
    """File and line of the innermost module (or non-kernel) frame; for the
    kernel's own checks, the bottomhalf source line (as Linux names its .c)."""
    f = caller_frame(kernel, start)
    if f is not None:
        return f.f_code.co_filename, f.f_lineno
    if start is not None:
        path = os.path.relpath(start.f_code.co_filename, os.path.dirname(_PKG_DIR))
        return path, start.f_lineno
    return "kernel/unknown.c", 0


def emit(kernel: Kernel, level: int, lines: list[str]) -> None:
    for line in lines:
        kernel.log_line(level, line)


def dump_stack(kernel: Kernel, ctx: ExecCtx | None, start: types.FrameType | None,
               level: int = 4) -> None:
    """lib/dump_stack.c: the CPU and hardware lines, then the Call Trace."""
    lines, py = call_trace_lines(kernel, ctx, start, top=("dump_stack_lvl",))
    emit(kernel, level, [cpu_line(kernel, ctx), hardware_line(kernel), *lines, *py])


def warn(kernel: Kernel, ctx: ExecCtx | None, message: str | None, where: str | None,
         start: types.FrameType | None) -> None:
    """__warn(): cut here, message, WARNING line, modules, CPU, trace, end; taint W."""
    path, line = caller_location(kernel, start)
    if where is not None:
        func = f"{where}+0x0/0x0"
    else:
        site = caller_frame(kernel, start)
        func = frame_symbol(kernel, site) if site is not None else "0x0"
    cpu = ctx.cpu if ctx is not None else 0
    pid = ctx.task.pid if ctx is not None else 0
    out = [CUT_HERE]
    if message:
        out.append(message)
    out.append(f"WARNING: CPU: {cpu} PID: {pid} at {path}:{line} {func}")
    out.append("Modules linked in:" + kernel.modules.linked_in())
    out.append(cpu_line(kernel, ctx))
    out.append(hardware_line(kernel))
    out.append(f"RIP: 0010:{func}")
    lines, py = call_trace_lines(kernel, ctx, start)
    out.extend(lines)
    out.extend(py)
    out.append(END_TRACE)
    emit(kernel, 4, out)
    kernel.add_taint("W")


def recursive_locking(kernel: Kernel, ctx: ExecCtx, lock: str, ptr: str, subclass: str,
                      acquire_at: str, held_at: str | None) -> None:
    """lockdep's print_deadlock_bug(): "possible recursive locking detected".

    ``lock`` is the lock class as lockdep names it (``&name``,
    ``(wq_completion)name``), ``subclass`` its wait-type pair (``{4:4}``).
    The caller gates the report with ``locking.debug_locks_off()``, so it
    appears at most once per boot, as in Linux.
    """
    task = ctx.task
    held = f"{ptr} ({lock}){{+.+.}}-{subclass}"
    emit(kernel, 4, [
        "",
        "============================================",
        "WARNING: possible recursive locking detected",
        f"{UTS_RELEASE} {UTS_VERSION} {print_tainted(kernel)}",
        "--------------------------------------------",
        f"{task.comm}/{task.pid} is trying to acquire lock:",
        f"{held}, at: {acquire_at}",
        "",
        "but task is already holding lock:",
        held + (f", at: {held_at}" if held_at else ""),
        "",
        "other info that might help us debug this:",
        " Possible unsafe locking scenario:",
        "",
        "       CPU0",
        "       ----",
        f"  lock({lock});",
        f"  lock({lock});",
        "",
        " *** DEADLOCK ***",
        "",
        " May be due to missing lock nesting notation",
        "",
    ])


def _python_traceback(exc: BaseException) -> list[str]:
    """The exception's traceback without bottomhalf's own frames."""
    frames = [fs for fs in traceback.extract_tb(exc.__traceback__)
              if not fs.filename.startswith(_PKG_DIR)]
    out = ["Python traceback (most recent call last):"]
    for chunk in traceback.format_list(frames):
        out.extend(chunk.rstrip("\n").split("\n"))
    for chunk in traceback.format_exception_only(type(exc), exc):
        out.extend(chunk.rstrip("\n").split("\n"))
    return out


def _die(kernel: Kernel, ctx: ExecCtx | None, head: list[str], oops: str, rip: str,
         start: types.FrameType | None, extra: list[str], after_rip: tuple[str, ...] = (),
         tail: tuple[str, ...] = ()) -> None:
    """die(): the Oops line, CPU, RIP, trace, modules, then oops_end() (taint D,
    which turns lock debugging off) and the end marker."""
    kernel.oops_count += 1
    out = [*head, f"Oops: {oops}[#{kernel.oops_count}] {OOPS_FLAGS}",
           cpu_line(kernel, ctx), hardware_line(kernel), f"RIP: 0010:{rip}", *after_rip]
    lines, _ = call_trace_lines(kernel, ctx, start)
    out.extend(lines)
    out.append("Modules linked in:" + kernel.modules.linked_in())
    out.extend(extra)
    emit(kernel, 4, out)
    kernel.add_taint("D", lockdep_ok=False)
    out = [END_TRACE, *tail]
    if ctx is not None and ctx.in_interrupt():
        out.append("bottomhalf: Linux would now panic (Kernel panic - not syncing: Fatal "
                   "exception in interrupt); this kernel keeps running")
    emit(kernel, 4, out)


def oops(kernel: Kernel, ctx: ExecCtx | None, exc: BaseException, what: str) -> None:
    """An exception escaped module code: an Oops-style report, then go on."""
    tb = exc.__traceback__
    inner = None
    while tb is not None:
        inner = tb.tb_frame
        tb = tb.tb_next
    where = ctx.describe() if ctx is not None else "process context"
    head = [f"BUG: unhandled Python exception in {what} ({where}): "
            f"{type(exc).__name__}: {exc}"]
    rip = frame_symbol(kernel, inner) if inner is not None else "0x0"
    _die(kernel, ctx, head, "0000 ", rip, inner, _python_traceback(exc))


def bug(kernel: Kernel, ctx: ExecCtx | None, start: types.FrameType | None) -> str:
    """BUG(): report_bug() then die("invalid opcode"); returns "FILE:LINE"."""
    path, line = caller_location(kernel, start)
    site = caller_frame(kernel, start) or start
    kernel.log_line(4, CUT_HERE)
    kernel.log_line(2, f"kernel BUG at {path}:{line}!")
    _, py = call_trace_lines(kernel, ctx, site)
    rip = frame_symbol(kernel, site) if site is not None else "0x0"
    _die(kernel, ctx, [], "invalid opcode: 0000 ", rip, site, py)
    return f"{path}:{line}"


def page_fault(kernel: Kernel, ctx: ExecCtx, fn: object, mod_name: str, base: int, what: str,
               start: types.FrameType | None) -> None:
    """The CPU fetched an instruction from an unloaded module's freed text."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    off = (hash(code.co_name) & 0xFFF) if code is not None else 0
    addr = base + 0x1000 + off
    head = [f"BUG: unable to handle page fault for address: {addr:016x}",
            "#PF: supervisor instruction fetch in kernel mode",
            "#PF: error_code(0x0010) - not-present page"]
    tail = (f"bottomhalf: the {what} {getattr(fn, '__name__', '?')}() belongs to module "
            f"{mod_name}, which was unloaded while it was still queued or registered",)
    _die(kernel, ctx, head, "0010 ", f"0x{addr:x}", start, [f"CR2: {addr:016x}"],
         after_rip=(f"Code: Unable to access opcode bytes at 0x{addr - 0x2a:x}.",), tail=tail)


def atomic_sleep(kernel: Kernel, ctx: ExecCtx, what: str, start: types.FrameType | None) -> None:
    """__might_resched(): BUG: sleeping function called from invalid context."""
    path, line = caller_location(kernel, start)
    task = ctx.task
    pc = ctx.preempt_count
    emit(kernel, 3, [
        f"BUG: sleeping function called from invalid context at {path}:{line}",
        f"in_atomic(): {1 if pc else 0}, irqs_disabled(): {1 if ctx.irqs_off else 0}, "
        f"non_block: 0, pid: {task.pid}, name: {task.comm}",
        f"preempt_count: {pc:x}, expected: 0",
        "RCU nest depth: 0, expected: 0",
    ])
    lines, py = call_trace_lines(kernel, ctx, start,
                                 top=("dump_stack_lvl", "__might_resched", what))
    out = [cpu_line(kernel, ctx), hardware_line(kernel), *lines]
    site = caller_frame(kernel, start)
    culprit = ""
    if site is not None:
        mod = kernel.modules.name_for_globals(site.f_globals)
        culprit = f" (in {site.f_code.co_name}{f' [{mod}]' if mod else ''})"
    out.append(f"bottomhalf: {what}() may sleep and was called from {ctx.describe()}{culprit}")
    out.extend(py)
    emit(kernel, 4, out)
    kernel.add_taint("W")


def hung_task(kernel: Kernel, task_lines: list[tuple[str, int, str]], secs: int) -> None:
    """kernel/hung_task.c check_hung_task() for each stuck task."""
    for comm, pid, why in task_lines:
        out = [
            f"INFO: task {comm}:{pid} blocked for more than {secs} seconds.",
            f"      {print_tainted(kernel)} {UTS_RELEASE} {UTS_VERSION}",
            '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
            f"task:{comm:<15} state:D stack:0     pid:{pid:<5} tgid:{pid:<5} ppid:2      "
            "flags:0x00004000",
        ]
        if why:
            out.append(f"bottomhalf: {comm} is blocked in {why}")
        emit(kernel, 3, out)


# kernel/watchdog.c: the soft-lockup threshold is twice watchdog_thresh, and
# the per-CPU watchdog hrtimer samples NUM_SAMPLE_PERIODS times per threshold.
NUM_SAMPLE_PERIODS = 5
NSEC_PER_SEC = 1_000_000_000


def _watchdog_ts(ns: int) -> int:
    """get_timestamp(): running_clock() >> 30, "seconds, approximately"."""
    return ns >> 30


def _last_watchdog_sample(thresh: int, ns: int) -> int:
    """The last watchdog hrtimer sample at or before ``ns`` (the hrtimer is
    started at boot, time 0, and fires every 2 * thresh / 5 seconds)."""
    period = 2 * thresh * (NSEC_PER_SEC // NUM_SAMPLE_PERIODS)
    return ns // period * period


def lockup_detected_at(thresh: int, since: int, irqs_off: bool) -> int:
    """When the lockup detector notices a CPU spinning since ``since`` (ns).

    Interrupts on: the watchdog hrtimer keeps firing, but the stopper work
    that refreshes watchdog_touch_ts cannot run, so the soft-lockup check
    (is_softlockup: now after touch_ts + 2 * thresh) fires at the first
    sample past the threshold.  Interrupts off: the hrtimer stops counting;
    the perf NMI, every thresh seconds, sees hrtimer_interrupts unchanged
    since its previous NMI (is_hardlockup).
    """
    touch = _last_watchdog_sample(thresh, since)
    if irqs_off:
        nmi = thresh * NSEC_PER_SEC
        return (-(-touch // nmi) + 1) * nmi
    period = 2 * thresh * (NSEC_PER_SEC // NUM_SAMPLE_PERIODS)
    at = touch + period
    while _watchdog_ts(at) <= _watchdog_ts(touch) + 2 * thresh:
        at += period
    return at


def lockup(kernel: Kernel, cpu: int, task: Task, since: int, thresh: int) -> None:
    """watchdog_timer_fn()'s soft-lockup report (taint L), or
    watchdog_hardlockup_check()'s when the CPU spins with interrupts off."""
    ctx = task.ctx
    if ctx.irqs_off:
        head = f"watchdog: CPU{cpu}: Watchdog detected hard LOCKUP on cpu {cpu}"
    else:
        now = _watchdog_ts(kernel.engine.now_ns())
        duration = now - _watchdog_ts(_last_watchdog_sample(thresh, since))
        head = (f"watchdog: BUG: soft lockup - CPU#{cpu} stuck for {duration}s! "
                f"[{task.comm}:{task.pid}]")
    frame = task.e_g.gr_frame if task.e_g is not None else None
    lines, py = call_trace_lines(kernel, ctx, frame)
    rip = lines[2].strip() if len(lines) > 2 and not lines[2].startswith(" <") else "0x0"
    emit(kernel, 0, [head])
    emit(kernel, 4, ["Modules linked in:" + kernel.modules.linked_in(),
                     cpu_line(kernel, ctx), hardware_line(kernel), f"RIP: 0010:{rip}",
                     *lines, *py,
                     f"bottomhalf: {task.comm} has been {task.wait_desc or 'spinning'} "
                     f"on CPU{cpu} since {since / NSEC_PER_SEC:.6f} s"])
    if not ctx.irqs_off:
        kernel.add_taint("L")  # TAINT_SOFTLOCKUP, after the register dump
