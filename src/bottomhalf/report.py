"""Kernel reports: WARN, Oops, the sleeping-in-atomic splat, dump_stack, hung tasks.

Each report is printed line by line through printk, in the layout of the
corresponding Linux report (kernel/panic.c ``__warn``, arch/x86 ``die``,
kernel/sched/core.c ``__might_resched``, lib/dump_stack.c,
kernel/hung_task.c), with one addition Linux cannot make: after the
``Call Trace`` block comes the Python traceback of the module code involved,
so the learner sees the file and line of their own code.

The ``Call Trace`` is built from the real Python stack: module frames are
shown as ``func+0x0/0xSIZE [module]``; the kernel's own frames by the name of
the kernel function they model.
"""

from __future__ import annotations

import linecache
import os
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import ExecCtx
    from .kernel import Kernel

UTS_RELEASE = "6.12.0-bottomhalf"
UTS_VERSION = "#1"

# (true letter, false letter) in taint_flags order (kernel/panic.c, 6.12)
TAINT_FLAGS = "PFSRMBUDAWCIOELKXTN"
TAINT_FALSE = {"P": "G"}

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_ENGINE_DIR = os.path.join(_PKG_DIR, "engines")
# our frames that are plumbing, not kernel functions
_SKIP_FUNCS = {"call_handler", "check", "<lambda>", "main", "sleep_until", "_sleep_on",
               "might_sleep", "_take_irq", "_park", "wrapper", "report_atomic_sleep",
               "warn", "oops", "dump_stack", "_call_trace_lines", "_frames"}
# our method names that differ from the kernel function they model
_KERNEL_NAMES = {
    "_action_common": "tasklet_action_common",
    "run_task": "kthread",
    "handle": "__irq_exit_rcu",
    "handle_irq_line": "handle_irq_event",
    "schedule": "schedule",
    "do_softirq_irqs_off": "irq_exit_rcu",
    "_tick_handler": "tick_sched_timer",
    "_irq_thread": "irq_thread",
    "worker_thread": "worker_thread",
    "run_timer_softirq": "run_timer_softirq",
    "_delayed_work_timer_fn": "delayed_work_timer_fn",
    "_queue_work": "__queue_work",
    "_queue_delayed_work": "__queue_delayed_work",
    "_start_flush_work": "start_flush_work",
    "_grab_queued": "try_to_grab_pending",
}


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


def call_trace_lines(kernel: Kernel, ctx: ExecCtx | None, start: types.FrameType | None,
                     skip_top: int = 0) -> tuple[list[str], list[str]]:
    """(Call Trace lines, Python traceback lines) for the stack from ``start``."""
    frames = _frames(start)[skip_top:]
    trace: list[str] = []
    user: list[types.FrameType] = []
    modules = kernel.modules
    for f in frames:
        code = f.f_code
        path = code.co_filename
        mod = modules.name_for_globals(f.f_globals)
        if mod is not None:
            size = max(len(code.co_code), 1)
            trace.append(f" {code.co_name}+0x{f.f_lasti:x}/0x{size:x} [{mod}]")
            user.append(f)
        elif _is_kernel_file(path):
            name = code.co_name
            if name in _SKIP_FUNCS or name.startswith("__") and name != "__queue_work":
                continue
            entry = " " + _KERNEL_NAMES.get(name, name)
            if not trace or trace[-1] != entry:
                trace.append(entry)
    # x86 marks frames on the IRQ stack: hard IRQs, and softirqs run at irq_exit
    # (not those run by ksoftirqd, which uses its own task stack).
    marker = "TASK"
    if ctx is not None:
        if ctx.in_hardirq() or (ctx.in_serving_softirq()
                                and not ctx.task.comm.startswith("ksoftirqd/")):
            marker = "IRQ"
    lines = ["Call Trace:", f" <{marker}>", *trace, f" </{marker}>"]
    py: list[str] = []
    if user:
        py.append("Python traceback (most recent call last):")
        for f in reversed(user):
            py.append(f'  File "{f.f_code.co_filename}", line {f.f_lineno}, in {f.f_code.co_name}')
            src = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
            if src:
                py.append(f"    {src}")
    return lines, py


def caller_location(kernel: Kernel, start: types.FrameType | None) -> tuple[str, int]:
    """File and line of the innermost module (or non-kernel) frame."""
    f = start
    fallback: tuple[str, int] | None = None
    while f is not None:
        path = f.f_code.co_filename
        if kernel.modules.name_for_globals(f.f_globals) is not None:
            return path, f.f_lineno
        if fallback is None and not path.startswith(_PKG_DIR):
            fallback = (path, f.f_lineno)
        f = f.f_back
    if fallback is not None:
        return fallback
    return "kernel/unknown.c", 0


def emit(kernel: Kernel, level: int, lines: list[str]) -> None:
    for line in lines:
        kernel.log_line(level, line)


def dump_stack(kernel: Kernel, ctx: ExecCtx | None, start: types.FrameType | None,
               level: int = 4) -> None:
    lines, py = call_trace_lines(kernel, ctx, start)
    emit(kernel, level, [cpu_line(kernel, ctx), hardware_line(kernel), *lines, *py])


def warn(kernel: Kernel, ctx: ExecCtx | None, message: str | None, where: str | None,
         start: types.FrameType | None) -> None:
    """__warn(): cut here, message, WARNING line, modules, CPU, trace, end."""
    path, line = caller_location(kernel, start)
    func = where or (start.f_code.co_name if start is not None else "unknown")
    cpu = ctx.cpu if ctx is not None else 0
    pid = ctx.task.pid if ctx is not None else 0
    out = ["------------[ cut here ]------------"]
    if message:
        out.append(message)
    out.append(f"WARNING: CPU: {cpu} PID: {pid} at {path}:{line} {func}+0x0/0x0")
    out.append("Modules linked in:" + kernel.modules.linked_in())
    out.append(cpu_line(kernel, ctx))
    out.append(hardware_line(kernel))
    out.append(f"RIP: 0010:{func}+0x0/0x0")
    lines, py = call_trace_lines(kernel, ctx, start)
    out.extend(lines)
    out.extend(py)
    out.append("---[ end trace 0000000000000000 ]---")
    emit(kernel, 4, out)
    kernel.add_taint("W")


def oops(kernel: Kernel, ctx: ExecCtx | None, exc: BaseException, what: str) -> None:
    """An exception escaped module code: an Oops-style report, then go on."""
    kernel.oops_count += 1
    tb = exc.__traceback__
    inner = None
    while tb is not None:
        inner = tb.tb_frame
        tb = tb.tb_next
    rip = "unknown"
    if inner is not None:
        code = inner.f_code
        mod = kernel.modules.name_for_globals(inner.f_globals)
        rip = f"{code.co_name}+0x{inner.f_lasti:x}/0x{max(len(code.co_code), 1):x}"
        if mod:
            rip += f" [{mod}]"
    where = ctx.describe() if ctx is not None else "process context"
    out = [f"BUG: unhandled Python exception in {what} ({where}): "
           f"{type(exc).__name__}: {exc}",
           f"Oops: 0000 [#{kernel.oops_count}] PREEMPT SMP NOPTI",
           cpu_line(kernel, ctx), hardware_line(kernel), f"RIP: 0010:{rip}"]
    lines, _ = call_trace_lines(kernel, ctx, inner)
    out.extend(lines)
    out.append("Modules linked in:" + kernel.modules.linked_in())
    out.append("Python traceback (most recent call last):")
    import traceback

    for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__)[1:]:
        for ln in chunk.rstrip("\n").split("\n"):
            out.append(ln)
    out.append("---[ end trace 0000000000000000 ]---")
    if ctx is not None and ctx.in_interrupt():
        out.append("bottomhalf: Linux would now panic (Fatal exception in interrupt); "
                   "this kernel keeps running")
    emit(kernel, 4, out)
    kernel.add_taint("D")


def atomic_sleep(kernel: Kernel, ctx: ExecCtx, what: str, start: types.FrameType | None) -> None:
    """__might_resched(): BUG: sleeping function called from invalid context."""
    path, line = caller_location(kernel, start)
    task = ctx.task
    pc = ctx.preempt_count
    out = [
        f"BUG: sleeping function called from invalid context at {path}:{line}",
        f"in_atomic(): {1 if pc else 0}, irqs_disabled(): {1 if ctx.irqs_off else 0}, "
        f"non_block: 0, pid: {task.pid}, name: {task.comm}",
        f"preempt_count: {pc:x}, expected: 0",
        "RCU nest depth: 0, expected: 0",
        cpu_line(kernel, ctx),
        hardware_line(kernel),
    ]
    lines, py = call_trace_lines(kernel, ctx, start)
    out.extend(lines)
    if py:
        out.append(f"bottomhalf: {what}() may sleep and was called from {ctx.describe()}")
    out.extend(py)
    emit(kernel, 3, out)
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


def frame_of_caller(depth: int) -> types.FrameType:
    return sys._getframe(depth + 1)
