"""Helpers and constants shared by the kernel API modules."""

from __future__ import annotations

from typing import Any

from ..errnos import (
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
from ..irqdesc import (
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
from ..locking import (
    atomic_long_t,
    atomic_t,
    completion,
    mutex,
    spinlock_t,
    wait_queue_head_t,
)
from ..printk import (
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
from ..softirq import (
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
from ..task import TASK_INTERRUPTIBLE, TASK_NEW, TASK_RUNNING, TASK_UNINTERRUPTIBLE
from ..tasklet import tasklet_struct
from ..timer import (
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
from ..workqueue import (
    __WQ_LEGACY,
    __WQ_ORDERED,
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


# Everything here is re-exported: linux.py takes what modules may use, the
# kapi modules take the helpers they share.
__all__ = [
    "E2BIG", "EACCES", "EAGAIN", "EALREADY", "EBADF", "EBADMSG", "EBUSY", "ECANCELED", "ECHILD",
    "ECONNREFUSED", "EDEADLK", "EDOM", "EEXIST", "EFAULT", "EFBIG", "EILSEQ", "EINPROGRESS",
    "EINTR", "EINVAL", "EIO", "EISDIR", "EMFILE", "ENAMETOOLONG", "ENFILE", "ENODATA", "ENODEV",
    "ENOENT", "ENOEXEC", "ENOLINK", "ENOMEM", "ENOSPC", "ENOSYS", "ENOTDIR", "ENOTEMPTY",
    "ENOTSUPP", "ENOTTY", "ENXIO", "EOPNOTSUPP", "EOVERFLOW", "EPERM", "EPIPE", "EPROTO", "ERANGE",
    "ERESTARTSYS", "EROFS", "ESPIPE", "ESRCH", "ETIME", "ETIMEDOUT", "EWOULDBLOCK", "EXDEV",
    "IRQ_HANDLED", "IRQ_NONE", "IRQ_RETVAL", "IRQ_WAKE_THREAD", "IRQF_COND_ONESHOT",
    "IRQF_NO_AUTOEN", "IRQF_NO_SUSPEND", "IRQF_NO_THREAD", "IRQF_NOBALANCING", "IRQF_ONESHOT",
    "IRQF_PERCPU", "IRQF_PROBE_SHARED", "IRQF_SHARED", "IRQF_TIMER", "IRQF_TRIGGER_FALLING",
    "IRQF_TRIGGER_HIGH", "IRQF_TRIGGER_LOW", "IRQF_TRIGGER_NONE", "IRQF_TRIGGER_RISING",
    "atomic_long_t", "atomic_t", "completion", "mutex", "spinlock_t", "wait_queue_head_t",
    "KERN_ALERT", "KERN_CONT", "KERN_CRIT", "KERN_DEBUG", "KERN_DEFAULT", "KERN_EMERG", "KERN_ERR",
    "KERN_INFO", "KERN_NOTICE", "KERN_SOH", "KERN_WARNING", "BLOCK_SOFTIRQ", "HI_SOFTIRQ",
    "HRTIMER_SOFTIRQ", "IRQ_POLL_SOFTIRQ", "NET_RX_SOFTIRQ", "NET_TX_SOFTIRQ", "NR_SOFTIRQS",
    "RCU_SOFTIRQ", "SCHED_SOFTIRQ", "TASKLET_SOFTIRQ", "TIMER_SOFTIRQ", "TASK_INTERRUPTIBLE",
    "TASK_NEW", "TASK_RUNNING", "TASK_UNINTERRUPTIBLE", "tasklet_struct", "HZ", "MAX_JIFFY_OFFSET",
    "TIMER_DEFERRABLE", "TIMER_IRQSAFE", "TIMER_PINNED", "jiffies_to_msecs", "jiffies_to_usecs",
    "msecs_to_jiffies", "timer_list", "usecs_to_jiffies", "__WQ_LEGACY", "__WQ_ORDERED",
    "WORK_BUSY_PENDING", "WORK_BUSY_RUNNING", "WORK_CPU_UNBOUND", "WQ_BH", "WQ_CPU_INTENSIVE",
    "WQ_DFL_ACTIVE", "WQ_FREEZABLE", "WQ_HIGHPRI", "WQ_MAX_ACTIVE", "WQ_MEM_RECLAIM", "WQ_PERCPU",
    "WQ_POWER_EFFICIENT", "WQ_SYSFS", "WQ_UNBOUND", "WQ_UNBOUND_MAX_ACTIVE", "delayed_work",
    "work_struct", "workqueue_struct", "MAX_SCHEDULE_TIMEOUT", "NR_CPUS", "__GFP_HIGH", "__GFP_IO",
    "__GFP_FS", "__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM", "__GFP_NOWARN", "__GFP_ZERO",
    "__GFP_RECLAIM", "GFP_ATOMIC", "GFP_KERNEL", "GFP_NOWAIT", "GFP_NOIO", "GFP_NOFS",
    "KMALLOC_MAX_SIZE",
]

def _need(obj: Any, cls: type, fn: str, arg: str) -> None:
    if not isinstance(obj, cls):
        got = "None" if obj is None else f"{type(obj).__name__} {obj!r}"
        raise TypeError(f"{fn}(): {arg} must be a {cls.__name__}, got {got}")


def _need_fn(f: Any, fn: str, arg: str) -> None:
    if not callable(f):
        raise TypeError(f"{fn}(): {arg} must be a function, got {f!r}")
