"""The constants of include/linux/workqueue.h and kernel/workqueue.c that
several workqueue modules use: flags, limits, the states of a work item and
the pool_workqueue statistics.

A leaf module (it imports nothing from the package), so that every workqueue
module can use these by name.  :mod:`bottomhalf.workqueue` re-exports them.
"""

from __future__ import annotations

__all__ = [
    "NR_CPUS",
    "WORK_CPU_UNBOUND",
    "WQ_BH",
    "WQ_UNBOUND",
    "WQ_FREEZABLE",
    "WQ_MEM_RECLAIM",
    "WQ_HIGHPRI",
    "WQ_CPU_INTENSIVE",
    "WQ_SYSFS",
    "WQ_POWER_EFFICIENT",
    "WQ_PERCPU",
    "__WQ_DESTROYING",
    "__WQ_DRAINING",
    "__WQ_ORDERED",
    "__WQ_LEGACY",
    "__WQ_BH_ALLOWS",
    "WQF_DESTROYING",
    "WQF_DRAINING",
    "WQF_ORDERED",
    "WQF_LEGACY",
    "WQF_BH_ALLOWS",
    "WQ_MAX_ACTIVE",
    "WQ_UNBOUND_MAX_ACTIVE",
    "WQ_DFL_ACTIVE",
    "WQ_DFL_MIN_ACTIVE",
    "WQ_NAME_LEN",
    "WORKER_DESC_LEN",
    "WORK_OFFQ_DISABLE_MAX",
    "INT_MAX",
    "WORK_BUSY_PENDING",
    "WORK_BUSY_RUNNING",
    "W_IDLE",
    "W_TIMER",
    "W_INACTIVE",
    "W_ACTIVE",
    "W_SCHEDULED",
    "W_STUCK",
    "W_GRABBED",
    "PWQ_STAT_STARTED",
    "PWQ_STAT_COMPLETED",
    "PWQ_STAT_CPU_TIME",
    "PWQ_STAT_CPU_INTENSIVE",
    "PWQ_STAT_CM_WAKEUP",
    "PWQ_STAT_REPATRIATED",
    "PWQ_STAT_MAYDAY",
    "PWQ_STAT_RESCUED",
    "PWQ_NR_STATS",
]

NR_CPUS = 8192  # CONFIG_NR_CPUS of Debian's amd64 kernels
WORK_CPU_UNBOUND = NR_CPUS

WQ_BH = 1 << 0
WQ_UNBOUND = 1 << 1
WQ_FREEZABLE = 1 << 2
WQ_MEM_RECLAIM = 1 << 3
WQ_HIGHPRI = 1 << 4
WQ_CPU_INTENSIVE = 1 << 5
WQ_SYSFS = 1 << 6
WQ_POWER_EFFICIENT = 1 << 7
WQ_PERCPU = 1 << 8
__WQ_DESTROYING = 1 << 15
__WQ_DRAINING = 1 << 16
__WQ_ORDERED = 1 << 17
__WQ_LEGACY = 1 << 18
__WQ_BH_ALLOWS = WQ_BH | WQ_HIGHPRI | WQ_PERCPU
# Aliases usable inside class bodies (where __NAME would be name-mangled).
WQF_DESTROYING = __WQ_DESTROYING
WQF_DRAINING = __WQ_DRAINING
WQF_ORDERED = __WQ_ORDERED
WQF_LEGACY = __WQ_LEGACY
WQF_BH_ALLOWS = __WQ_BH_ALLOWS

WQ_MAX_ACTIVE = 2048
WQ_UNBOUND_MAX_ACTIVE = WQ_MAX_ACTIVE
WQ_DFL_ACTIVE = WQ_MAX_ACTIVE // 2
WQ_DFL_MIN_ACTIVE = 8
WQ_NAME_LEN = 32
WORKER_DESC_LEN = 32  # set_worker_desc()'s buffer, NUL included (6.5+)
WORK_OFFQ_DISABLE_MAX = (1 << 16) - 1
INT_MAX = 0x7FFFFFFF

WORK_BUSY_PENDING = 1 << 0
WORK_BUSY_RUNNING = 1 << 1

# Where a work item is (the PENDING bit is "state != W_IDLE").
W_IDLE = 0
W_TIMER = 1  # delayed work: timer armed
W_INACTIVE = 2  # on pwq.inactive (over max_active)
W_ACTIVE = 3  # on pool.worklist
W_SCHEDULED = 4  # on a worker's scheduled list
W_STUCK = 5  # PENDING set but dropped (destroyed/draining queue): stuck until re-init
W_GRABBED = 6  # PENDING owned by a canceller or queuer in progress

# pool_workqueue stats (enum pool_workqueue_stats)
PWQ_STAT_STARTED = 0
PWQ_STAT_COMPLETED = 1
PWQ_STAT_CPU_TIME = 2
PWQ_STAT_CPU_INTENSIVE = 3
PWQ_STAT_CM_WAKEUP = 4
PWQ_STAT_REPATRIATED = 5
PWQ_STAT_MAYDAY = 6
PWQ_STAT_RESCUED = 7
PWQ_NR_STATS = 8
