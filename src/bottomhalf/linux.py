"""The kernel API for module code: ``from bottomhalf.linux import *``.

Names, arguments, return values and context rules are Linux's
(include/linux/{printk,interrupt,workqueue,timer,jiffies,delay,spinlock,mutex,
completion,wait,atomic,slab,kthread,module}.h).  Pointers are object
references; a function that returns a negative errno returns a negative int;
one that returns NULL returns None.  Every function finds the running kernel,
the CPU and ``current`` through the execution context of the calling code, so
the same module file runs on either engine.

This module is thin on purpose: each function checks its arguments, then
hands over to the subsystem that owns the rule.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

from . import module as _module
from .context import ExecCtx, _local
from .context import current_ctx as _ctx
from .errnos import (
    E2BIG,
    EACCES,
    EAGAIN,
    EALREADY,
    EBADF,
    EBADMSG,
    EBUSY,
    ECANCELED,
    ECHILD,
    ECONNREFUSED,
    EDEADLK,
    EDOM,
    EEXIST,
    EFAULT,
    EFBIG,
    EILSEQ,
    EINPROGRESS,
    EINTR,
    EINVAL,
    EIO,
    EISDIR,
    EMFILE,
    ENAMETOOLONG,
    ENFILE,
    ENODATA,
    ENODEV,
    ENOENT,
    ENOEXEC,
    ENOLINK,
    ENOMEM,
    ENOSPC,
    ENOSYS,
    ENOTDIR,
    ENOTEMPTY,
    ENOTSUPP,
    ENOTTY,
    ENXIO,
    EOPNOTSUPP,
    EOVERFLOW,
    EPERM,
    EPIPE,
    EPROTO,
    ERANGE,
    ERESTARTSYS,
    EROFS,
    ESPIPE,
    ESRCH,
    ETIME,
    ETIMEDOUT,
    EWOULDBLOCK,
    EXDEV,
)
from .irq import (
    IRQ_HANDLED,
    IRQ_NONE,
    IRQ_RETVAL,
    IRQ_WAKE_THREAD,
    IRQF_COND_ONESHOT,
    IRQF_NO_AUTOEN,
    IRQF_NO_SUSPEND,
    IRQF_NO_THREAD,
    IRQF_NOBALANCING,
    IRQF_ONESHOT,
    IRQF_PERCPU,
    IRQF_PROBE_SHARED,
    IRQF_SHARED,
    IRQF_TIMER,
    IRQF_TRIGGER_FALLING,
    IRQF_TRIGGER_HIGH,
    IRQF_TRIGGER_LOW,
    IRQF_TRIGGER_NONE,
    IRQF_TRIGGER_RISING,
)
from .locking import (
    atomic_long_t,
    atomic_t,
    completion,
    mutex,
    spinlock_t,
    wait_queue_head_t,
)
from .locking import complete as _complete
from .locking import local_irq_restore as _local_irq_restore
from .locking import local_irq_save as _local_irq_save
from .printk import (
    KERN_ALERT,
    KERN_CONT,
    KERN_CRIT,
    KERN_DEBUG,
    KERN_DEFAULT,
    KERN_EMERG,
    KERN_ERR,
    KERN_INFO,
    KERN_NOTICE,
    KERN_SOH,
    KERN_WARNING,
)
from .softirq import (
    BLOCK_SOFTIRQ,
    HI_SOFTIRQ,
    HRTIMER_SOFTIRQ,
    IRQ_POLL_SOFTIRQ,
    NET_RX_SOFTIRQ,
    NET_TX_SOFTIRQ,
    NR_SOFTIRQS,
    RCU_SOFTIRQ,
    SCHED_SOFTIRQ,
    TASKLET_SOFTIRQ,
    TIMER_SOFTIRQ,
)
from .task import TASK_INTERRUPTIBLE, TASK_NEW, TASK_RUNNING, TASK_UNINTERRUPTIBLE, Task
from .tasklet import tasklet_struct
from .timer import (
    HZ,
    MAX_JIFFY_OFFSET,
    TIMER_DEFERRABLE,
    TIMER_IRQSAFE,
    TIMER_PINNED,
    jiffies_to_msecs,
    jiffies_to_usecs,
    msecs_to_jiffies,
    timer_list,
    usecs_to_jiffies,
)
from .workqueue import (
    __WQ_LEGACY,
    __WQ_ORDERED,
    W_IDLE,
    WORK_BUSY_PENDING,
    WORK_BUSY_RUNNING,
    WORK_CPU_UNBOUND,
    WQ_BH,
    WQ_CPU_INTENSIVE,
    WQ_DFL_ACTIVE,
    WQ_FREEZABLE,
    WQ_HIGHPRI,
    WQ_MAX_ACTIVE,
    WQ_MEM_RECLAIM,
    WQ_PERCPU,
    WQ_POWER_EFFICIENT,
    WQ_SYSFS,
    WQ_UNBOUND,
    WQ_UNBOUND_MAX_ACTIVE,
    delayed_work,
    work_struct,
    workqueue_struct,
)

MAX_SCHEDULE_TIMEOUT = (1 << 63) - 1
NR_CPUS = WORK_CPU_UNBOUND

# include/linux/gfp_types.h
__GFP_HIGH = 0x20
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_DIRECT_RECLAIM = 0x400
__GFP_KSWAPD_RECLAIM = 0x800
__GFP_NOWARN = 0x2000
__GFP_ZERO = 0x100
__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
KMALLOC_MAX_SIZE = 1 << 22


def _need(obj: Any, cls: type, fn: str, arg: str) -> None:
    if not isinstance(obj, cls):
        got = "None" if obj is None else f"{type(obj).__name__} {obj!r}"
        raise TypeError(f"{fn}(): {arg} must be a {cls.__name__}, got {got}")


def _need_fn(f: Any, fn: str, arg: str) -> None:
    if not callable(f):
        raise TypeError(f"{fn}(): {arg} must be a function, got {f!r}")


# ======================================================================
# printk (include/linux/printk.h)


def printk(fmt: str, *args: Any) -> None:
    """Log a message; start ``fmt`` with a level, e.g. ``KERN_INFO + "..."``."""
    if not isinstance(fmt, str):
        raise TypeError(f"printk(): the format must be a str, got {fmt!r}")
    ctx = _ctx()
    ctx.kernel.printk(ctx, fmt, *args)


def _pr(level: str, fmt: str, args: tuple[Any, ...], depth: int = 2) -> None:
    g = sys._getframe(depth).f_globals
    pf = g.get("pr_fmt")
    if callable(pf):
        fmt = pf(fmt)
    printk(level + fmt, *args)


def pr_emerg(fmt: str, *args: Any) -> None:
    _pr(KERN_EMERG, fmt, args)


def pr_alert(fmt: str, *args: Any) -> None:
    _pr(KERN_ALERT, fmt, args)


def pr_crit(fmt: str, *args: Any) -> None:
    _pr(KERN_CRIT, fmt, args)


def pr_err(fmt: str, *args: Any) -> None:
    _pr(KERN_ERR, fmt, args)


def pr_warn(fmt: str, *args: Any) -> None:
    _pr(KERN_WARNING, fmt, args)


pr_warning = pr_warn


def pr_notice(fmt: str, *args: Any) -> None:
    _pr(KERN_NOTICE, fmt, args)


def pr_info(fmt: str, *args: Any) -> None:
    _pr(KERN_INFO, fmt, args)


def pr_debug(fmt: str, *args: Any) -> None:
    """Compiled out unless the module sets ``DEBUG = True`` (as ``#define DEBUG``)."""
    if sys._getframe(1).f_globals.get("DEBUG"):
        _pr(KERN_DEBUG, fmt, args)


def pr_cont(fmt: str, *args: Any) -> None:
    printk(KERN_CONT + fmt, *args)


def _warn_here(message: str | None) -> None:
    ctx = _ctx()
    from . import report

    report.warn(ctx.kernel, ctx, message, None, sys._getframe(2))


def WARN_ON(condition: Any) -> bool:  # noqa: N802
    if condition:
        _warn_here(None)
    return bool(condition)


def WARN_ON_ONCE(condition: Any) -> bool:  # noqa: N802
    """Warns the first time this call site sees a true condition (per load of
    the module, as each load has its own once-flags)."""
    if condition:
        f = sys._getframe(1)
        # code objects compare by value, so the site is keyed by the module's
        # globals (kept alive after unload), the file and the line
        if _ctx().kernel.log.once((id(f.f_globals), f.f_code.co_filename, f.f_lineno)):
            _warn_here(None)
    return bool(condition)


def WARN(condition: Any, fmt: str, *args: Any) -> bool:  # noqa: N802
    if condition:
        ctx = _ctx()
        from .printk import vsprintf

        msg = vsprintf(fmt, args, ctx.kernel.symbols.symbol, ctx.kernel.symbols.pointer)
        _warn_here(msg.rstrip("\n"))
    return bool(condition)


class _KernelBug(Exception):
    """Unwinds the current handler after BUG() has been reported."""


def BUG() -> None:  # noqa: N802
    """Report "kernel BUG at FILE:LINE!" and an Oops, then unwind the caller."""
    ctx = _ctx()
    from . import report

    where = report.bug(ctx.kernel, ctx, sys._getframe(1))
    exc = _KernelBug(f"kernel BUG at {where}")
    exc._bh_reported = True  # type: ignore[attr-defined]
    raise exc


def BUG_ON(condition: Any) -> None:  # noqa: N802
    if condition:
        BUG()


def dump_stack() -> None:
    ctx = _ctx()
    from . import report

    report.dump_stack(ctx.kernel, ctx, sys._getframe(1), 4)


# ======================================================================
# modules (include/linux/module.h)


def _meta(depth: int = 2) -> _module.ModuleMeta:
    return _module.meta_of(sys._getframe(depth).f_globals)


def module_init(fn: Callable[[], int]) -> Callable[[], int]:
    """Register the module's init (also usable as a decorator)."""
    _need_fn(fn, "module_init", "fn")
    _meta().init = fn
    return fn


def module_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Register the module's exit (also usable as a decorator)."""
    _need_fn(fn, "module_exit", "fn")
    _meta().exit = fn
    return fn


def MODULE_LICENSE(s: str) -> None:  # noqa: N802
    _meta().license = str(s)


def MODULE_AUTHOR(s: str) -> None:  # noqa: N802
    m = _meta()
    m.author = f"{m.author}, {s}" if m.author else str(s)


def MODULE_DESCRIPTION(s: str) -> None:  # noqa: N802
    _meta().description = str(s)


def MODULE_VERSION(s: str) -> None:  # noqa: N802
    _meta().version = str(s)


def module_param(name: str, type: str, perm: int) -> None:  # noqa: A002
    """Declare a module global as a parameter: ``module_param("count", "int", 0o644)``."""
    if type not in ("int", "uint", "long", "ulong", "short", "ushort", "byte", "ullong",
                    "bool", "invbool", "charp", "string"):
        raise ValueError(f"module_param(): unknown type {type!r}")
    _meta().params[name] = (type, perm)


def MODULE_PARM_DESC(name: str, desc: str) -> None:  # noqa: N802
    _meta().param_desc[name] = desc


# ======================================================================
# context (include/linux/preempt.h, irqflags.h, bottom_half.h, smp.h, sched.h)


def in_interrupt() -> bool:
    return _ctx().in_interrupt()


def in_hardirq() -> bool:
    return _ctx().in_hardirq()


in_irq = in_hardirq


def in_softirq() -> bool:
    return _ctx().in_softirq()


def in_serving_softirq() -> bool:
    return _ctx().in_serving_softirq()


def in_task() -> bool:
    return _ctx().in_task()


def in_atomic() -> bool:
    return _ctx().in_atomic()


def in_nmi() -> bool:
    return False


def preempt_count() -> int:
    return _ctx().preempt_count


def irqs_disabled() -> bool:
    return _ctx().irqs_off


def smp_processor_id() -> int:
    return _ctx().cpu


raw_smp_processor_id = smp_processor_id


def num_online_cpus() -> int:
    return _ctx().kernel.ncpus


num_possible_cpus = num_online_cpus


def cpu_online(cpu: int) -> bool:
    return 0 <= cpu < _ctx().kernel.ncpus


class _Current:
    """``current``: the task the calling code runs for (.comm, .pid)."""

    @property
    def comm(self) -> str:
        return _ctx().task.comm

    @property
    def pid(self) -> int:
        return _ctx().task.pid

    @property
    def state(self) -> int:
        return _ctx().task.state

    @property
    def task(self) -> Task:
        return _ctx().task

    def __repr__(self) -> str:
        t = _ctx().task
        return f"<current {t.comm}/{t.pid}>"


current = _Current()


def get_current() -> Task:
    return _ctx().task


def might_sleep() -> None:
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "might_sleep")


def preempt_disable() -> None:
    _ctx().preempt_count += 1


def preempt_enable() -> None:
    ctx = _ctx()
    if not ctx.preempt_count & 0xFF:
        ctx.kernel.warn(ctx, "preempt_enable() without preempt_disable()")
        return
    ctx.preempt_count -= 1


def local_bh_disable() -> None:
    ctx = _ctx()
    ctx.kernel.softirq.local_bh_disable(ctx)


def local_bh_enable() -> None:
    ctx = _ctx()
    ctx.kernel.softirq.local_bh_enable(ctx)


def local_irq_save() -> int:
    """Disable local interrupts; returns the flags for local_irq_restore."""
    return _local_irq_save(_ctx())


def local_irq_restore(flags: int) -> None:
    _local_irq_restore(_ctx(), flags)


def local_irq_disable() -> None:
    ctx = _ctx()
    ctx.kernel.engine.local_irq_disable(ctx)


def local_irq_enable() -> None:
    ctx = _ctx()
    if ctx.in_hardirq():
        ctx.kernel.warn(ctx, "local_irq_enable() in hard-IRQ context")
        return
    ctx.kernel.engine.local_irq_enable(ctx)


def cpu_relax() -> None:
    """A spin-loop hint.  In sim it takes 100 ns so that spinning lets time pass."""
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, 100)


def barrier() -> None:
    pass


smp_mb = smp_rmb = smp_wmb = barrier


# ======================================================================
# kernel threads (include/linux/kthread.h, sched.h)


def kthread_create(threadfn: Callable[[Any], int], data: Any, namefmt: str, *args: Any) -> Task:
    """Create a stopped kernel thread; start it with wake_up_process()."""
    _need_fn(threadfn, "kthread_create", "threadfn")
    ctx = _ctx()
    from .printk import vsprintf

    name = vsprintf(namefmt, args) if args else namefmt
    k = ctx.kernel

    def kthread_fn() -> Any:
        return threadfn(data)

    kthread_fn.__wrapped__ = threadfn  # type: ignore[attr-defined]  # whose code it runs
    task = k.sched.new_task(kthread_fn, name, None)
    task.cpu = ctx.cpu
    task.ctx.cpu = ctx.cpu
    return task


def kthread_run(threadfn: Callable[[Any], int], data: Any, namefmt: str, *args: Any) -> Task:
    task = kthread_create(threadfn, data, namefmt, *args)
    _ctx().kernel.engine.start_task(task)
    return task


def kthread_should_stop() -> bool:
    return _ctx().task.should_stop


def kthread_stop(task: Task) -> Any:
    _need(task, Task, "kthread_stop", "task")
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "kthread_stop")
    if task.state == TASK_NEW:  # never woken: start it so it can see should_stop
        task.should_stop = True
        ctx.kernel.engine.start_task(task)
    return ctx.kernel.kthread_stop(ctx, task)


def wake_up_process(task: Task) -> int:
    _need(task, Task, "wake_up_process", "task")
    ctx = _ctx()
    if task.state == TASK_NEW:  # created by kthread_create(), never started
        ctx.kernel.engine.start_task(task)
        return 1
    return 1 if ctx.kernel.sched.wake_up_process(task) else 0


def set_current_state(state: int) -> None:
    _ctx().task.state = state


__set_current_state = set_current_state


def schedule() -> None:
    ctx = _ctx()
    ctx.kernel.sched.might_sleep(ctx, "schedule")
    ctx.kernel.sched.schedule(ctx)
    ctx.task.state = TASK_RUNNING


def schedule_timeout(timeout: int) -> int:
    """Sleep ``timeout`` jiffies in the state set by set_current_state()."""
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "schedule_timeout")
    state = ctx.task.state
    if state == TASK_RUNNING:
        return timeout
    return k.sched.schedule_timeout(ctx, timeout, state)


def schedule_timeout_interruptible(timeout: int) -> int:
    set_current_state(TASK_INTERRUPTIBLE)
    return schedule_timeout(timeout)


def schedule_timeout_uninterruptible(timeout: int) -> int:
    set_current_state(TASK_UNINTERRUPTIBLE)
    return schedule_timeout(timeout)


def cond_resched() -> int:
    ctx = _ctx()
    ctx.kernel.engine.yield_cpu(ctx)
    return 0


# ======================================================================
# time (include/linux/jiffies.h, delay.h, timekeeping.h)


def jiffies() -> int:
    """The current tick count (a function: Python has no volatile globals)."""
    return _ctx().kernel.timers.jiffies()


def get_jiffies_64() -> int:
    return jiffies()


def time_after(a: int, b: int) -> bool:
    return _signed64(b - a) < 0


def time_before(a: int, b: int) -> bool:
    return time_after(b, a)


def time_after_eq(a: int, b: int) -> bool:
    return _signed64(a - b) >= 0


def time_before_eq(a: int, b: int) -> bool:
    return time_after_eq(b, a)


def _signed64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def ktime_get_ns() -> int:
    return _ctx().kernel.now_ns


ktime_get = ktime_get_ns
ktime_get_boottime_ns = ktime_get_ns


def msleep(msecs: int) -> None:
    """Sleep at least ``msecs`` ms: msecs_to_jiffies(msecs) + 1 ticks on the timer wheel."""
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "msleep")
    k.sched.msleep(ctx, int(msecs))


def msleep_interruptible(msecs: int) -> int:
    msleep(msecs)
    return 0


def ssleep(seconds: int) -> None:
    msleep(int(seconds) * 1000)


def usleep_range(min_us: int, max_us: int) -> None:
    """Sleep on an hrtimer; with nothing else to wake it, it fires at ``max_us``."""
    if max_us < min_us:
        raise ValueError(f"usleep_range({min_us}, {max_us}): max is below min")
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "usleep_range")
    k.sched.hrtimer_sleep(ctx, int(max_us) * 1000, f"usleep_range({min_us}, {max_us})",
                          min_ns=int(min_us) * 1000)


def fsleep(usecs: int) -> None:
    usleep_range(usecs, usecs)


def ndelay(nsecs: int) -> None:
    """Busy-wait: occupy the CPU for ``nsecs`` (in sim, virtual time)."""
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(nsecs))


def udelay(usecs: int) -> None:
    ctx = _local.ctx or _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(usecs) * 1000)


def mdelay(msecs: int) -> None:
    ctx = _ctx()
    ctx.kernel.sched.busy_wait(ctx, int(msecs) * 1_000_000)


# ======================================================================
# timers (include/linux/timer.h)


def timer_setup(timer: timer_list, callback: Callable[[timer_list], None], flags: int) -> None:
    _need(timer, timer_list, "timer_setup", "timer")
    _need_fn(callback, "timer_setup", "callback")
    ctx = _ctx()
    ctx.kernel.timers.detach(ctx, timer)
    timer.function = callback
    timer.flags = flags
    timer.shutdown = False


def DEFINE_TIMER(callback: Callable[[timer_list], None]) -> timer_list:  # noqa: N802
    t = timer_list()
    t.function = callback
    return t


def add_timer(timer: timer_list) -> None:
    """Arm an inactive timer for ``timer.expires`` (WARN_ON_ONCE if it is pending)."""
    _need(timer, timer_list, "add_timer", "timer")
    ctx = _ctx()
    ctx.kernel.timers.add_timer(ctx, timer)


def add_timer_on(timer: timer_list, cpu: int) -> None:
    _need(timer, timer_list, "add_timer_on", "timer")
    ctx = _ctx()
    if not isinstance(cpu, int) or not 0 <= cpu < ctx.kernel.ncpus:
        raise ValueError(f"add_timer_on(): CPU {cpu!r} does not exist")
    ctx.kernel.timers.add_timer_on(ctx, timer, cpu)


def mod_timer(timer: timer_list, expires: int) -> int:
    """Arm or re-arm; returns 1 if the timer was pending."""
    _need(timer, timer_list, "mod_timer", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.mod_timer(ctx, timer, int(expires))


def mod_timer_pending(timer: timer_list, expires: int) -> int:
    ctx = _ctx()
    return ctx.kernel.timers.mod_timer(ctx, timer, int(expires), only_if_pending=True)


def del_timer(timer: timer_list) -> int:
    _need(timer, timer_list, "del_timer", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer(ctx, timer)


timer_delete = del_timer


def del_timer_sync(timer: timer_list) -> int:
    """Deactivate and wait for a running callback (do not call it from the callback)."""
    _need(timer, timer_list, "del_timer_sync", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer_sync(ctx, timer)


timer_delete_sync = del_timer_sync


def timer_shutdown_sync(timer: timer_list) -> int:
    """del_timer_sync(), and any later arming of the timer is silently ignored."""
    _need(timer, timer_list, "timer_shutdown_sync", "timer")
    ctx = _ctx()
    return ctx.kernel.timers.del_timer_sync(ctx, timer, shutdown=True)


def timer_pending(timer: timer_list) -> bool:
    _need(timer, timer_list, "timer_pending", "timer")
    return timer.base_cpu >= 0


# ======================================================================
# container_of and friends


def container_of(ptr: Any, type_or_sample: Any, member: str) -> Any:
    """The object whose attribute ``member`` is ``ptr``.

    ``type_or_sample`` is a class (as the C macro takes a type) or an instance
    to check first.  The answer is cached on ``ptr``.
    """
    cached = getattr(ptr, "_bh_container", None)
    if cached is not None and getattr(cached, member, None) is ptr:
        return cached
    if not isinstance(type_or_sample, type) and getattr(type_or_sample, member, None) is ptr:
        _remember(ptr, type_or_sample)
        return type_or_sample
    cls = type_or_sample if isinstance(type_or_sample, type) else type(type_or_sample)
    for ref in gc.get_referrers(ptr):
        for cand in ([ref] if not isinstance(ref, dict) else gc.get_referrers(ref)):
            if isinstance(cand, cls) and getattr(cand, member, None) is ptr:
                _remember(ptr, cand)
                return cand
    raise LookupError(f"container_of(): no {cls.__name__} has .{member} == {ptr!r}")


def _remember(ptr: Any, container: Any) -> None:
    try:
        ptr._bh_container = container
    except AttributeError:
        pass


def from_tasklet(var: Any, t: tasklet_struct, field: str) -> Any:
    """``from_tasklet(var, t, field)``: the struct of ``var``'s type whose ``field``
    is ``t`` (``var`` is that class, or any instance of it)."""
    return container_of(t, var, field)


def from_timer(var: Any, timer: timer_list, field: str) -> Any:
    """``from_timer(var, timer, field)``: as from_tasklet, for an embedded timer_list."""
    return container_of(timer, var, field)


def from_work(var: Any, work: Any, field: str) -> Any:
    """``from_work(var, work, field)``: as from_tasklet, for an embedded work_struct."""
    return container_of(work, var, field)


# ======================================================================
# hard IRQs (include/linux/interrupt.h)


def request_threaded_irq(irq: int, handler: Callable[[int, Any], int] | None,
                         thread_fn: Callable[[int, Any], int] | None, flags: int, name: str,
                         dev: Any) -> int:
    ctx = _ctx()
    k = ctx.kernel
    k.sched.might_sleep(ctx, "request_threaded_irq")
    owner = k.symbols.module_of(handler) or k.symbols.module_of(thread_fn)
    return k.irq.request_threaded_irq(ctx, irq, handler, thread_fn, flags, str(name), dev, owner)


def request_irq(irq: int, handler: Callable[[int, Any], int], flags: int, name: str,
                dev: Any) -> int:
    """Register ``handler(irq, dev_id)``; returns 0 or a negative errno."""
    return request_threaded_irq(irq, handler, None, flags | IRQF_COND_ONESHOT, name, dev)


def free_irq(irq: int, dev_id: Any) -> str | None:
    ctx = _ctx()
    return ctx.kernel.irq.free_irq(ctx, irq, dev_id)


def disable_irq(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.disable_irq(ctx, irq, sync=True)


def disable_irq_nosync(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.disable_irq(ctx, irq, sync=False)


def enable_irq(irq: int) -> None:
    ctx = _ctx()
    ctx.kernel.irq.enable_irq(ctx, irq)


def synchronize_irq(irq: int) -> None:
    ctx = _ctx()
    desc = ctx.kernel.irq.descs.get(irq)
    if desc is not None:
        ctx.kernel.sched.might_sleep(ctx, "synchronize_irq")
        ctx.kernel.irq.synchronize_irq(ctx, desc)


def bh_raise_irq(irq: int, cpu: int | None = None) -> None:
    """bottomhalf's stand-in for hardware: assert interrupt line ``irq``.

    Linux has no such call (a device raises the interrupt); module code that
    simulates a device uses it, as Python code uses Kernel.raise_irq.
    """
    ctx = _ctx()
    ctx.kernel.irq.raise_irq(irq, cpu)


def bh_device(name: str) -> Any:
    """bottomhalf's stand-in for device discovery: the virtual device ``name``
    (see bottomhalf.devices), or None.  Attach with request_irq(dev.irq, ...)."""
    return _ctx().kernel.devices.get(name)


# ======================================================================
# softirqs


def raise_softirq(nr: int) -> None:
    if not isinstance(nr, int) or not 0 <= nr < NR_SOFTIRQS:
        raise ValueError(f"raise_softirq(): no softirq vector {nr!r}")
    ctx = _ctx()
    ctx.kernel.softirq.raise_softirq(ctx, nr)


# ======================================================================
# tasklets


def tasklet_init(t: tasklet_struct, func: Callable[[Any], None], data: Any) -> None:
    """Legacy initialiser: ``func(data)`` will run in softirq context."""
    _need(t, tasklet_struct, "tasklet_init", "t")
    _need_fn(func, "tasklet_init", "func")
    t.state = 0
    t.count = 0
    t.use_callback = False
    t.func = func
    t.callback = None
    t.data = data


def tasklet_setup(t: tasklet_struct, callback: Callable[[tasklet_struct], None]) -> None:
    """Since 5.9: ``callback(t)`` will run in softirq context."""
    _need(t, tasklet_struct, "tasklet_setup", "t")
    _need_fn(callback, "tasklet_setup", "callback")
    t.state = 0
    t.count = 0
    t.use_callback = True
    t.callback = callback
    t.func = None
    t.data = 0


def DECLARE_TASKLET(callback: Callable[[tasklet_struct], None], *old: Any) -> tasklet_struct:  # noqa: N802
    if old:
        raise TypeError("DECLARE_TASKLET(callback) takes a callback(t) since Linux 5.9; "
                        "for the old func(data) form use DECLARE_TASKLET_OLD(func)")
    t = tasklet_struct()
    tasklet_setup(t, callback)
    return t


def DECLARE_TASKLET_DISABLED(callback: Callable[[tasklet_struct], None]) -> tasklet_struct:  # noqa: N802
    t = DECLARE_TASKLET(callback)
    t.count = 1
    return t


def DECLARE_TASKLET_OLD(func: Callable[[Any], None]) -> tasklet_struct:  # noqa: N802
    t = tasklet_struct()
    tasklet_init(t, func, 0)
    return t


def DECLARE_TASKLET_DISABLED_OLD(func: Callable[[Any], None]) -> tasklet_struct:  # noqa: N802
    t = DECLARE_TASKLET_OLD(func)
    t.count = 1
    return t


def _tasklet_ready(t: Any, fn: str) -> ExecCtx:
    _need(t, tasklet_struct, fn, "t")
    if t.handler is None:
        raise ValueError(f"{fn}(): the tasklet was never initialised (tasklet_setup)")
    return _ctx()


def tasklet_schedule(t: tasklet_struct) -> None:
    if type(t) is tasklet_struct and (t.func is not None or t.callback is not None):
        ctx = _local.ctx or _ctx()  # the fast path of the checks below
    else:
        ctx = _tasklet_ready(t, "tasklet_schedule")
    ctx.kernel.tasklets.schedule(ctx, t)


def tasklet_hi_schedule(t: tasklet_struct) -> None:
    ctx = _tasklet_ready(t, "tasklet_hi_schedule")
    ctx.kernel.tasklets.schedule(ctx, t, hi=True)


def tasklet_kill(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_kill", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.kill(ctx, t)


def tasklet_disable_nosync(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable_nosync", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable_nosync(ctx, t)


def tasklet_disable(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable(ctx, t)


def tasklet_disable_in_atomic(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_disable_in_atomic", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.disable_in_atomic(ctx, t)


def tasklet_enable(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_enable", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.enable(ctx, t)


def tasklet_unlock_wait(t: tasklet_struct) -> None:
    _need(t, tasklet_struct, "tasklet_unlock_wait", "t")
    ctx = _ctx()
    ctx.kernel.tasklets.unlock_wait(ctx, t)


# ======================================================================
# workqueues (include/linux/workqueue.h)


class _SystemWq:
    """A system workqueue: resolves to the running kernel's object on use."""

    __slots__ = ("var",)

    def __init__(self, var: str) -> None:
        self.var = var

    def resolve(self) -> workqueue_struct:
        return _ctx().kernel.wq.system[self.var]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"<{self.var}>"


system_wq = _SystemWq("system_wq")
system_percpu_wq = _SystemWq("system_percpu_wq")
system_highpri_wq = _SystemWq("system_highpri_wq")
system_long_wq = _SystemWq("system_long_wq")
system_unbound_wq = _SystemWq("system_unbound_wq")
system_dfl_wq = _SystemWq("system_dfl_wq")
system_freezable_wq = _SystemWq("system_freezable_wq")
system_power_efficient_wq = _SystemWq("system_power_efficient_wq")
system_freezable_power_efficient_wq = _SystemWq("system_freezable_power_efficient_wq")
system_bh_wq = _SystemWq("system_bh_wq")
system_bh_highpri_wq = _SystemWq("system_bh_highpri_wq")


AnyWq = workqueue_struct | _SystemWq


def _wq(wq: Any, fn: str, ctx: ExecCtx) -> workqueue_struct:
    if isinstance(wq, _SystemWq):
        return ctx.kernel.wq.system[wq.var]
    if wq is None:
        raise TypeError(f"{fn}(): the workqueue is None (did alloc_workqueue() fail?)")
    _need(wq, workqueue_struct, fn, "wq")
    return wq


def _work(w: Any, fn: str) -> work_struct:
    if isinstance(w, delayed_work):
        raise TypeError(f"{fn}(): pass a work_struct; for a delayed_work use the *_delayed_work "
                        "functions or dwork.work")
    _need(w, work_struct, fn, "work")
    return w


def _cpu(cpu: int, fn: str, ctx: ExecCtx) -> int:
    if cpu == WORK_CPU_UNBOUND:
        return cpu
    if not isinstance(cpu, int) or not 0 <= cpu < ctx.kernel.ncpus:
        raise ValueError(f"{fn}(): CPU {cpu!r} is not online")
    return cpu


def INIT_WORK(work: work_struct, func: Callable[[work_struct], None]) -> None:  # noqa: N802
    _work(work, "INIT_WORK")
    _need_fn(func, "INIT_WORK", "func")
    work.func = func
    work.state = W_IDLE
    work.pwq = None
    work.last_pool = None
    work.disable = 0
    work.linked = False


def INIT_DELAYED_WORK(dwork: delayed_work, func: Callable[[work_struct], None]) -> None:  # noqa: N802
    _need(dwork, delayed_work, "INIT_DELAYED_WORK", "dwork")
    INIT_WORK(dwork.work, func)
    dwork.timer.function = None
    dwork.timer.base_cpu = -1


INIT_DEFERRABLE_WORK = INIT_DELAYED_WORK


def DECLARE_WORK(func: Callable[[work_struct], None]) -> work_struct:  # noqa: N802
    w = work_struct()
    INIT_WORK(w, func)
    return w


def DECLARE_DELAYED_WORK(func: Callable[[work_struct], None]) -> delayed_work:  # noqa: N802
    dw = delayed_work()
    INIT_DELAYED_WORK(dw, func)
    return dw


DECLARE_DEFERRABLE_WORK = DECLARE_DELAYED_WORK


def to_delayed_work(work: work_struct) -> delayed_work:
    dw = work.dwork
    if dw is None:
        raise TypeError("to_delayed_work(): this work_struct is not part of a delayed_work")
    return dw


def alloc_workqueue(fmt: str, flags: int, max_active: int, *args: Any) -> workqueue_struct | None:
    """Create a workqueue named ``fmt % args``; None on failure."""
    ctx = _ctx()
    k = ctx.kernel
    from .printk import vsprintf

    name = vsprintf(fmt, args) if args or "%" in fmt else fmt
    owner = None
    f = sys._getframe(1)
    while f is not None and owner is None:
        owner = k.modules.name_for_globals(f.f_globals)
        f = f.f_back  # type: ignore[assignment]
    return k.wq.alloc_workqueue(ctx, name, int(flags), int(max_active), owner=owner)


def alloc_ordered_workqueue(fmt: str, flags: int, *args: Any) -> workqueue_struct | None:
    return alloc_workqueue(fmt, WQ_UNBOUND | __WQ_ORDERED | flags, 1, *args)


def create_workqueue(name: str) -> workqueue_struct | None:
    return alloc_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, 1, name)


def create_freezable_workqueue(name: str) -> workqueue_struct | None:
    return alloc_workqueue("%s", __WQ_LEGACY | WQ_FREEZABLE | WQ_UNBOUND | WQ_MEM_RECLAIM, 1,
                           name)


def create_singlethread_workqueue(name: str) -> workqueue_struct | None:
    return alloc_ordered_workqueue("%s", __WQ_LEGACY | WQ_MEM_RECLAIM, name)


def destroy_workqueue(wq: AnyWq) -> None:
    ctx = _ctx()
    ctx.kernel.wq.destroy_workqueue(ctx, _wq(wq, "destroy_workqueue", ctx))


def queue_work_on(cpu: int, wq: AnyWq, work: work_struct) -> bool:
    """Queue on ``cpu``; False if the item was already pending (or disabled)."""
    if type(work) is work_struct:
        if work.state:
            return False  # already pending: test_and_set_bit() fails, nothing changes
    else:
        _work(work, "queue_work_on")
    ctx = _local.ctx or _ctx()
    if type(wq) is not workqueue_struct:
        wq = _wq(wq, "queue_work_on", ctx)
    if type(cpu) is not int or not 0 <= cpu < ctx.kernel.ncpus:
        cpu = _cpu(cpu, "queue_work_on", ctx)
    return ctx.kernel.wq.queue_work_on(ctx, cpu, wq, work)


def queue_work(wq: AnyWq, work: work_struct) -> bool:
    """Queue on the current CPU (or pod); False if the item was already pending."""
    if type(work) is work_struct:
        if work.state:
            return False  # already pending: test_and_set_bit() fails, nothing changes
    else:
        _work(work, "queue_work")
    ctx = _local.ctx or _ctx()
    if type(wq) is not workqueue_struct:
        wq = _wq(wq, "queue_work", ctx)
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND, wq, work)


def schedule_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND,
                                       ctx.kernel.wq.system["system_percpu_wq"],
                                       _work(work, "schedule_work"))


def schedule_work_on(cpu: int, work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_work_on(ctx, _cpu(cpu, "schedule_work_on", ctx),
                                       ctx.kernel.wq.system["system_percpu_wq"],
                                       _work(work, "schedule_work_on"))


def _dwork(dw: Any, fn: str) -> delayed_work:
    _need(dw, delayed_work, fn, "dwork")
    if dw.work.func is None:
        raise ValueError(f"{fn}(): the delayed_work was never initialised (INIT_DELAYED_WORK)")
    return dw


def queue_delayed_work_on(cpu: int, wq: AnyWq, dwork: delayed_work,
                          delay: int) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.queue_delayed_work_on(
        ctx, _cpu(cpu, "queue_delayed_work_on", ctx), _wq(wq, "queue_delayed_work_on", ctx),
        _dwork(dwork, "queue_delayed_work_on"), int(delay))


def queue_delayed_work(wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    """Queue after ``delay`` jiffies; False if already pending (delay unchanged)."""
    return queue_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay)


def mod_delayed_work_on(cpu: int, wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.mod_delayed_work_on(
        ctx, _cpu(cpu, "mod_delayed_work_on", ctx), _wq(wq, "mod_delayed_work_on", ctx),
        _dwork(dwork, "mod_delayed_work_on"), int(delay))


def mod_delayed_work(wq: AnyWq, dwork: delayed_work, delay: int) -> bool:
    """Re-arm; True if it was pending and was modified."""
    return mod_delayed_work_on(WORK_CPU_UNBOUND, wq, dwork, delay)


def schedule_delayed_work(dwork: delayed_work, delay: int) -> bool:
    return queue_delayed_work(system_percpu_wq, dwork, delay)


def schedule_delayed_work_on(cpu: int, dwork: delayed_work, delay: int) -> bool:
    return queue_delayed_work_on(cpu, system_percpu_wq, dwork, delay)


def flush_work(work: work_struct) -> bool:
    """Wait for the last queued instance to finish; True if it waited."""
    ctx = _ctx()
    return ctx.kernel.wq.flush_work(ctx, _work(work, "flush_work"))


def flush_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.flush_delayed_work(ctx, _dwork(dwork, "flush_delayed_work"))


def flush_workqueue(wq: AnyWq) -> None:
    """Wait for every item queued before the call."""
    ctx = _ctx()
    ctx.kernel.wq.flush_workqueue(ctx, _wq(wq, "flush_workqueue", ctx))


def drain_workqueue(wq: AnyWq) -> None:
    ctx = _ctx()
    ctx.kernel.wq.drain_workqueue(ctx, _wq(wq, "drain_workqueue", ctx))


def cancel_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _work(work, "cancel_work"))


def cancel_work_sync(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _work(work, "cancel_work_sync"))


def cancel_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _dwork(dwork, "cancel_delayed_work").work,
                                     is_dwork=True)


def cancel_delayed_work_sync(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _dwork(dwork, "cancel_delayed_work_sync").work,
                                          is_dwork=True, what="cancel_delayed_work_sync")


def disable_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _work(work, "disable_work"), disable=True)


def disable_work_sync(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _work(work, "disable_work_sync"), disable=True,
                                          what="disable_work_sync")


def enable_work(work: work_struct) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.enable_work(ctx, _work(work, "enable_work"))


def disable_delayed_work(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work(ctx, _dwork(dwork, "disable_delayed_work").work,
                                     is_dwork=True, disable=True)


def disable_delayed_work_sync(dwork: delayed_work) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.cancel_work_sync(ctx, _dwork(dwork, "disable_delayed_work_sync").work,
                                          is_dwork=True, disable=True,
                                          what="disable_delayed_work_sync")


def enable_delayed_work(dwork: delayed_work) -> bool:
    return enable_work(_dwork(dwork, "enable_delayed_work").work)


def enable_and_queue_work(wq: AnyWq, work: work_struct) -> bool:
    if enable_work(work):
        queue_work(wq, work)
        return True
    return False


def work_pending(work: work_struct) -> bool:
    return _work(work, "work_pending").pending


def delayed_work_pending(dwork: delayed_work) -> bool:
    _need(dwork, delayed_work, "delayed_work_pending", "dwork")
    return dwork.work.pending


def work_busy(work: work_struct) -> int:
    ctx = _ctx()
    return ctx.kernel.wq.work_busy(_work(work, "work_busy"))


def current_work() -> work_struct | None:
    ctx = _ctx()
    return ctx.kernel.wq.current_work(ctx)


def workqueue_congested(cpu: int, wq: AnyWq) -> bool:
    ctx = _ctx()
    return ctx.kernel.wq.workqueue_congested(ctx, _cpu(cpu, "workqueue_congested", ctx),
                                             _wq(wq, "workqueue_congested", ctx))


def queue_work_node(node: int, wq: AnyWq, work: work_struct) -> bool:
    """Queue on a CPU of NUMA ``node`` (one node here); meant for unbound queues (WARN otherwise)."""
    ctx = _ctx()
    q = _wq(wq, "queue_work_node", ctx)
    if not q.unbound:
        ctx.kernel.wq.warn_once(ctx, "queue_work_node", None, "queue_work_node")
    return ctx.kernel.wq.queue_work_on(ctx, WORK_CPU_UNBOUND, q, _work(work, "queue_work_node"))


def current_is_workqueue_rescuer() -> bool:
    ctx = _ctx()
    w = ctx.kernel.wq.current_worker(ctx)
    return w is not None and w.rescue_wq is not None


def set_worker_desc(fmt: str, *args: Any) -> None:
    """Describe what the running work item does: shown after the kworker name (``-desc``)."""
    ctx = _ctx()
    w = ctx.kernel.wq.current_worker(ctx)
    if w is not None:
        from .printk import vsprintf

        w.desc = (vsprintf(fmt, args) if args or "%" in fmt else fmt)[:23]


def workqueue_set_max_active(wq: AnyWq, max_active: int) -> None:
    ctx = _ctx()
    if ctx.in_hardirq():
        ctx.kernel.warn(ctx, "workqueue_set_max_active() from hard-IRQ context")
    ctx.kernel.wq.set_max_active(ctx, _wq(wq, "workqueue_set_max_active", ctx), int(max_active))


# ======================================================================
# locking and waiting


def DEFINE_SPINLOCK() -> spinlock_t:  # noqa: N802
    lock = spinlock_t()
    lock.initialized = True
    return lock


def spin_lock_init(lock: spinlock_t) -> None:
    _need(lock, spinlock_t, "spin_lock_init", "lock")
    lock.initialized = True


def _lk(lock: Any, fn: str) -> spinlock_t:
    _need(lock, spinlock_t, fn, "lock")
    return lock


def spin_lock(lock: spinlock_t) -> None:
    from .locking import spin_lock as _sl

    _sl(_ctx(), _lk(lock, "spin_lock"))


def spin_trylock(lock: spinlock_t) -> int:
    from .locking import spin_trylock as _st

    return _st(_ctx(), _lk(lock, "spin_trylock"))


def spin_unlock(lock: spinlock_t) -> None:
    from .locking import spin_unlock as _su

    _su(_ctx(), _lk(lock, "spin_unlock"))


def spin_lock_bh(lock: spinlock_t) -> None:
    local_bh_disable()
    spin_lock(lock)


def spin_unlock_bh(lock: spinlock_t) -> None:
    spin_unlock(lock)
    local_bh_enable()


def spin_lock_irq(lock: spinlock_t) -> None:
    local_irq_disable()
    spin_lock(lock)


def spin_unlock_irq(lock: spinlock_t) -> None:
    spin_unlock(lock)
    local_irq_enable()


def spin_lock_irqsave(lock: spinlock_t) -> int:
    """Returns the flags to give back to spin_unlock_irqrestore()."""
    flags = local_irq_save()
    spin_lock(lock)
    return flags


def spin_unlock_irqrestore(lock: spinlock_t, flags: int) -> None:
    spin_unlock(lock)
    local_irq_restore(flags)


def spin_is_locked(lock: spinlock_t) -> bool:
    from .locking import spin_is_locked as _sil

    return _sil(_ctx(), _lk(lock, "spin_is_locked"))


def DEFINE_MUTEX() -> mutex:  # noqa: N802
    return mutex()


def mutex_init(m: mutex) -> None:
    _need(m, mutex, "mutex_init", "lock")
    m.owner = None


def mutex_lock(m: mutex) -> None:
    from .locking import mutex_lock as _ml

    _need(m, mutex, "mutex_lock", "lock")
    _ml(_ctx(), m)


def mutex_lock_interruptible(m: mutex) -> int:
    mutex_lock(m)
    return 0


def mutex_trylock(m: mutex) -> int:
    from .locking import mutex_trylock as _mt

    _need(m, mutex, "mutex_trylock", "lock")
    return _mt(_ctx(), m)


def mutex_unlock(m: mutex) -> None:
    from .locking import mutex_unlock as _mu

    _need(m, mutex, "mutex_unlock", "lock")
    _mu(_ctx(), m)


def mutex_is_locked(m: mutex) -> bool:
    _need(m, mutex, "mutex_is_locked", "lock")
    return m.owner is not None


def DECLARE_COMPLETION() -> completion:  # noqa: N802
    return completion()


def init_completion(c: completion) -> None:
    _need(c, completion, "init_completion", "x")
    c.done = 0


def reinit_completion(c: completion) -> None:
    _need(c, completion, "reinit_completion", "x")
    c.done = 0


def complete(c: completion) -> None:
    _need(c, completion, "complete", "x")
    _complete(_ctx(), c)


def complete_all(c: completion) -> None:
    _need(c, completion, "complete_all", "x")
    _complete(_ctx(), c, all_=True)


def wait_for_completion(c: completion) -> None:
    from .locking import wait_for_completion as _wfc

    _need(c, completion, "wait_for_completion", "x")
    _wfc(_ctx(), c)


def wait_for_completion_timeout(c: completion, timeout: int) -> int:
    """0 if it timed out, else the jiffies left (at least 1)."""
    from .locking import wait_for_completion as _wfc

    _need(c, completion, "wait_for_completion_timeout", "x")
    return _wfc(_ctx(), c, int(timeout), "wait_for_completion_timeout")


def wait_for_completion_interruptible(c: completion) -> int:
    wait_for_completion(c)
    return 0


def completion_done(c: completion) -> bool:
    _need(c, completion, "completion_done", "x")
    return c.done != 0


def try_wait_for_completion(c: completion) -> bool:
    from .locking import try_wait_for_completion as _tw

    _need(c, completion, "try_wait_for_completion", "x")
    return _tw(_ctx(), c)


def DECLARE_WAIT_QUEUE_HEAD() -> wait_queue_head_t:  # noqa: N802
    return wait_queue_head_t()


def init_waitqueue_head(wq: wait_queue_head_t) -> None:
    _need(wq, wait_queue_head_t, "init_waitqueue_head", "wq_head")


def wait_event(wq: wait_queue_head_t, condition: Callable[[], Any]) -> None:
    """Sleep until ``condition()`` is true; re-checked after every wake_up."""
    from .locking import wait_event as _we

    _need(wq, wait_queue_head_t, "wait_event", "wq_head")
    _we(_ctx(), wq, condition)


def wait_event_timeout(wq: wait_queue_head_t, condition: Callable[[], Any], timeout: int) -> int:
    """0 if the condition was still false after ``timeout`` jiffies, else jiffies left (>= 1)."""
    from .locking import wait_event as _we

    _need(wq, wait_queue_head_t, "wait_event_timeout", "wq_head")
    return _we(_ctx(), wq, condition, int(timeout), "wait_event_timeout")


def wait_event_interruptible(wq: wait_queue_head_t, condition: Callable[[], Any]) -> int:
    wait_event(wq, condition)
    return 0


def wait_event_interruptible_timeout(wq: wait_queue_head_t, condition: Callable[[], Any],
                                     timeout: int) -> int:
    return wait_event_timeout(wq, condition, timeout)


def wake_up(wq: wait_queue_head_t) -> None:
    from .locking import wake_up as _wu

    _need(wq, wait_queue_head_t, "wake_up", "wq_head")
    _wu(_ctx(), wq)


wake_up_interruptible = wake_up
wake_up_all = wake_up
wake_up_interruptible_all = wake_up


def ATOMIC_INIT(i: int) -> atomic_t:  # noqa: N802
    return atomic_t(i)


def atomic_set(v: atomic_t, i: int) -> None:
    v.counter = i


def atomic_read(v: atomic_t) -> int:
    return v.counter


def atomic_add_return(i: int, v: atomic_t) -> int:
    return v.add_return(i)


def atomic_sub_return(i: int, v: atomic_t) -> int:
    return v.add_return(-i)


def atomic_inc_return(v: atomic_t) -> int:
    return v.add_return(1)


def atomic_dec_return(v: atomic_t) -> int:
    return v.add_return(-1)


def atomic_add(i: int, v: atomic_t) -> None:
    v.add_return(i)


def atomic_sub(i: int, v: atomic_t) -> None:
    v.add_return(-i)


def atomic_inc(v: atomic_t) -> None:
    v.add_return(1)


def atomic_dec(v: atomic_t) -> None:
    v.add_return(-1)


def atomic_dec_and_test(v: atomic_t) -> bool:
    return v.add_return(-1) == 0


def atomic_inc_and_test(v: atomic_t) -> bool:
    return v.add_return(1) == 0


def atomic_sub_and_test(i: int, v: atomic_t) -> bool:
    return v.add_return(-i) == 0


def atomic_cmpxchg(v: atomic_t, old: int, new: int) -> int:
    return v.cmpxchg(old, new)


def atomic_xchg(v: atomic_t, new: int) -> int:
    return v.xchg(new)


# ======================================================================
# memory (include/linux/slab.h)


def kmalloc(size: int, flags: int) -> bytearray | None:
    """A zero-filled buffer of ``size`` bytes, or None.  GFP_KERNEL may sleep."""
    ctx = _ctx()
    k = ctx.kernel
    if flags & __GFP_DIRECT_RECLAIM:
        k.sched.might_sleep(ctx, "kmalloc")
    if not isinstance(size, int) or size < 0 or size > KMALLOC_MAX_SIZE:
        if not flags & __GFP_NOWARN:
            k.warn(ctx, None, where="__kmalloc_large_node")
        return None
    if k.wq.fail_worker_creation and not flags & __GFP_HIGH:
        return None
    return bytearray(size)


def kzalloc(size: int, flags: int) -> bytearray | None:
    return kmalloc(size, flags | __GFP_ZERO)


def kcalloc(n: int, size: int, flags: int) -> bytearray | None:
    return kmalloc(n * size, flags | __GFP_ZERO)


def kfree(obj: Any) -> None:
    pass


# ======================================================================
# What `from bottomhalf.linux import *` gives a module.

__all__ = [
    "bh_device",
    "bh_raise_irq",
    "ATOMIC_INIT",
    "BLOCK_SOFTIRQ",
    "BUG",
    "BUG_ON",
    "DECLARE_COMPLETION",
    "DECLARE_DEFERRABLE_WORK",
    "DECLARE_DELAYED_WORK",
    "DECLARE_TASKLET",
    "DECLARE_TASKLET_DISABLED",
    "DECLARE_TASKLET_DISABLED_OLD",
    "DECLARE_TASKLET_OLD",
    "DECLARE_WAIT_QUEUE_HEAD",
    "DECLARE_WORK",
    "DEFINE_MUTEX",
    "DEFINE_SPINLOCK",
    "DEFINE_TIMER",
    "E2BIG",
    "EACCES",
    "EAGAIN",
    "EALREADY",
    "EBADF",
    "EBADMSG",
    "EBUSY",
    "ECANCELED",
    "ECHILD",
    "ECONNREFUSED",
    "EDEADLK",
    "EDOM",
    "EEXIST",
    "EFAULT",
    "EFBIG",
    "EILSEQ",
    "EINPROGRESS",
    "EINTR",
    "EINVAL",
    "EIO",
    "EISDIR",
    "EMFILE",
    "ENAMETOOLONG",
    "ENFILE",
    "ENODATA",
    "ENODEV",
    "ENOENT",
    "ENOEXEC",
    "ENOLINK",
    "ENOMEM",
    "ENOSPC",
    "ENOSYS",
    "ENOTDIR",
    "ENOTEMPTY",
    "ENOTSUPP",
    "ENOTTY",
    "ENXIO",
    "EOPNOTSUPP",
    "EOVERFLOW",
    "EPERM",
    "EPIPE",
    "EPROTO",
    "ERANGE",
    "ERESTARTSYS",
    "EROFS",
    "ESPIPE",
    "ESRCH",
    "ETIME",
    "ETIMEDOUT",
    "EWOULDBLOCK",
    "EXDEV",
    "GFP_ATOMIC",
    "GFP_KERNEL",
    "GFP_NOFS",
    "GFP_NOIO",
    "GFP_NOWAIT",
    "HI_SOFTIRQ",
    "HRTIMER_SOFTIRQ",
    "HZ",
    "INIT_DEFERRABLE_WORK",
    "INIT_DELAYED_WORK",
    "INIT_WORK",
    "IRQF_COND_ONESHOT",
    "IRQF_NOBALANCING",
    "IRQF_NO_AUTOEN",
    "IRQF_NO_SUSPEND",
    "IRQF_NO_THREAD",
    "IRQF_ONESHOT",
    "IRQF_PERCPU",
    "IRQF_PROBE_SHARED",
    "IRQF_SHARED",
    "IRQF_TIMER",
    "IRQF_TRIGGER_FALLING",
    "IRQF_TRIGGER_HIGH",
    "IRQF_TRIGGER_LOW",
    "IRQF_TRIGGER_NONE",
    "IRQF_TRIGGER_RISING",
    "IRQ_HANDLED",
    "IRQ_NONE",
    "IRQ_POLL_SOFTIRQ",
    "IRQ_RETVAL",
    "IRQ_WAKE_THREAD",
    "KERN_ALERT",
    "KERN_CONT",
    "KERN_CRIT",
    "KERN_DEBUG",
    "KERN_DEFAULT",
    "KERN_EMERG",
    "KERN_ERR",
    "KERN_INFO",
    "KERN_NOTICE",
    "KERN_SOH",
    "KERN_WARNING",
    "KMALLOC_MAX_SIZE",
    "MAX_JIFFY_OFFSET",
    "MAX_SCHEDULE_TIMEOUT",
    "MODULE_AUTHOR",
    "MODULE_DESCRIPTION",
    "MODULE_LICENSE",
    "MODULE_PARM_DESC",
    "MODULE_VERSION",
    "NET_RX_SOFTIRQ",
    "NET_TX_SOFTIRQ",
    "NR_CPUS",
    "NR_SOFTIRQS",
    "RCU_SOFTIRQ",
    "SCHED_SOFTIRQ",
    "TASKLET_SOFTIRQ",
    "TASK_INTERRUPTIBLE",
    "TASK_NEW",
    "TASK_RUNNING",
    "TASK_UNINTERRUPTIBLE",
    "TIMER_DEFERRABLE",
    "TIMER_IRQSAFE",
    "TIMER_PINNED",
    "TIMER_SOFTIRQ",
    "WARN",
    "WARN_ON",
    "WARN_ON_ONCE",
    "WORK_BUSY_PENDING",
    "WORK_BUSY_RUNNING",
    "WORK_CPU_UNBOUND",
    "WQ_BH",
    "WQ_CPU_INTENSIVE",
    "WQ_DFL_ACTIVE",
    "WQ_FREEZABLE",
    "WQ_HIGHPRI",
    "WQ_MAX_ACTIVE",
    "WQ_MEM_RECLAIM",
    "WQ_PERCPU",
    "WQ_POWER_EFFICIENT",
    "WQ_SYSFS",
    "WQ_UNBOUND",
    "WQ_UNBOUND_MAX_ACTIVE",
    "__GFP_DIRECT_RECLAIM",
    "__GFP_FS",
    "__GFP_HIGH",
    "__GFP_IO",
    "__GFP_KSWAPD_RECLAIM",
    "__GFP_NOWARN",
    "__GFP_RECLAIM",
    "__GFP_ZERO",
    "__WQ_LEGACY",
    "__WQ_ORDERED",
    "__set_current_state",
    "add_timer",
    "add_timer_on",
    "alloc_ordered_workqueue",
    "alloc_workqueue",
    "atomic_add",
    "atomic_add_return",
    "atomic_cmpxchg",
    "atomic_dec",
    "atomic_dec_and_test",
    "atomic_dec_return",
    "atomic_inc",
    "atomic_inc_and_test",
    "atomic_inc_return",
    "atomic_long_t",
    "atomic_read",
    "atomic_set",
    "atomic_sub",
    "atomic_sub_and_test",
    "atomic_sub_return",
    "atomic_t",
    "atomic_xchg",
    "barrier",
    "cancel_delayed_work",
    "cancel_delayed_work_sync",
    "cancel_work",
    "cancel_work_sync",
    "complete",
    "complete_all",
    "completion",
    "completion_done",
    "cond_resched",
    "container_of",
    "cpu_online",
    "cpu_relax",
    "create_freezable_workqueue",
    "create_singlethread_workqueue",
    "create_workqueue",
    "current",
    "current_is_workqueue_rescuer",
    "current_work",
    "del_timer",
    "del_timer_sync",
    "delayed_work",
    "delayed_work_pending",
    "destroy_workqueue",
    "disable_delayed_work",
    "disable_delayed_work_sync",
    "disable_irq",
    "disable_irq_nosync",
    "disable_work",
    "disable_work_sync",
    "drain_workqueue",
    "dump_stack",
    "enable_and_queue_work",
    "enable_delayed_work",
    "enable_irq",
    "enable_work",
    "flush_delayed_work",
    "flush_work",
    "flush_workqueue",
    "free_irq",
    "from_tasklet",
    "from_timer",
    "from_work",
    "fsleep",
    "get_current",
    "get_jiffies_64",
    "in_atomic",
    "in_hardirq",
    "in_interrupt",
    "in_irq",
    "in_nmi",
    "in_serving_softirq",
    "in_softirq",
    "in_task",
    "init_completion",
    "init_waitqueue_head",
    "irqs_disabled",
    "jiffies",
    "jiffies_to_msecs",
    "jiffies_to_usecs",
    "kcalloc",
    "kfree",
    "kmalloc",
    "kthread_create",
    "kthread_run",
    "kthread_should_stop",
    "kthread_stop",
    "ktime_get",
    "ktime_get_boottime_ns",
    "ktime_get_ns",
    "kzalloc",
    "local_bh_disable",
    "local_bh_enable",
    "local_irq_disable",
    "local_irq_enable",
    "local_irq_restore",
    "local_irq_save",
    "mdelay",
    "might_sleep",
    "mod_delayed_work",
    "mod_delayed_work_on",
    "mod_timer",
    "mod_timer_pending",
    "module_exit",
    "module_init",
    "module_param",
    "msecs_to_jiffies",
    "msleep",
    "msleep_interruptible",
    "mutex",
    "mutex_init",
    "mutex_is_locked",
    "mutex_lock",
    "mutex_lock_interruptible",
    "mutex_trylock",
    "mutex_unlock",
    "ndelay",
    "num_online_cpus",
    "num_possible_cpus",
    "pr_alert",
    "pr_cont",
    "pr_crit",
    "pr_debug",
    "pr_emerg",
    "pr_err",
    "pr_info",
    "pr_notice",
    "pr_warn",
    "pr_warning",
    "preempt_count",
    "preempt_disable",
    "preempt_enable",
    "printk",
    "queue_delayed_work",
    "queue_delayed_work_on",
    "queue_work",
    "queue_work_node",
    "queue_work_on",
    "raise_softirq",
    "raw_smp_processor_id",
    "reinit_completion",
    "request_irq",
    "request_threaded_irq",
    "schedule",
    "schedule_delayed_work",
    "schedule_delayed_work_on",
    "schedule_timeout",
    "schedule_timeout_interruptible",
    "schedule_timeout_uninterruptible",
    "schedule_work",
    "schedule_work_on",
    "set_current_state",
    "set_worker_desc",
    "smp_mb",
    "smp_processor_id",
    "smp_rmb",
    "smp_wmb",
    "spin_is_locked",
    "spin_lock",
    "spin_lock_bh",
    "spin_lock_init",
    "spin_lock_irq",
    "spin_lock_irqsave",
    "spin_trylock",
    "spin_unlock",
    "spin_unlock_bh",
    "spin_unlock_irq",
    "spin_unlock_irqrestore",
    "spinlock_t",
    "ssleep",
    "synchronize_irq",
    "system_bh_highpri_wq",
    "system_bh_wq",
    "system_dfl_wq",
    "system_freezable_power_efficient_wq",
    "system_freezable_wq",
    "system_highpri_wq",
    "system_long_wq",
    "system_percpu_wq",
    "system_power_efficient_wq",
    "system_unbound_wq",
    "system_wq",
    "tasklet_disable",
    "tasklet_disable_in_atomic",
    "tasklet_disable_nosync",
    "tasklet_enable",
    "tasklet_hi_schedule",
    "tasklet_init",
    "tasklet_kill",
    "tasklet_schedule",
    "tasklet_setup",
    "tasklet_struct",
    "tasklet_unlock_wait",
    "time_after",
    "time_after_eq",
    "time_before",
    "time_before_eq",
    "timer_delete",
    "timer_delete_sync",
    "timer_list",
    "timer_pending",
    "timer_setup",
    "timer_shutdown_sync",
    "to_delayed_work",
    "try_wait_for_completion",
    "udelay",
    "usecs_to_jiffies",
    "usleep_range",
    "wait_event",
    "wait_event_interruptible",
    "wait_event_interruptible_timeout",
    "wait_event_timeout",
    "wait_for_completion",
    "wait_for_completion_interruptible",
    "wait_for_completion_timeout",
    "wait_queue_head_t",
    "wake_up",
    "wake_up_all",
    "wake_up_interruptible",
    "wake_up_interruptible_all",
    "wake_up_process",
    "work_busy",
    "work_pending",
    "work_struct",
    "workqueue_congested",
    "workqueue_set_max_active",
    "workqueue_struct",
]
