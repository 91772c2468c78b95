"""Views of the workqueues: /sys/kernel/debug/workqueue and the wq_monitor counters.

* ``/sys/kernel/debug/workqueue`` is bottomhalf's live view of every pool,
  worker and workqueue.  Linux has no such file (reference §9.4): on a real
  kernel the same facts come from ``tools/workqueue/wq_dump.py`` (pools and
  the CPU -> pool map, whose layout is followed here), ``wq_monitor.py``
  (counters) and SysRq-t (busy workers).
* ``wq_monitor()`` returns what ``tools/workqueue/wq_monitor.py -i 0`` prints
  (one round: a blank line, the header, a row per workqueue, in its exact
  column layout); ``monitor_stats()`` gives the same counters as dicts with
  the keys of its ``-j`` output.  The file ``/sys/kernel/debug/bottomhalf/wq_monitor``
  shows the table; Linux has no such file either (the script reads kernel
  memory with drgn).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import wqmonitor
from .context import ExecCtx
from .task import PF_WQ_WORKER
from .wqdefs import (
    PWQ_NR_STATS,
    PWQ_STAT_CM_WAKEUP,
    PWQ_STAT_COMPLETED,
    PWQ_STAT_CPU_INTENSIVE,
    PWQ_STAT_CPU_TIME,
    PWQ_STAT_MAYDAY,
    PWQ_STAT_REPATRIATED,
    PWQ_STAT_RESCUED,
    PWQ_STAT_STARTED,
    WORK_BUSY_PENDING,
    WORK_BUSY_RUNNING,
    WORK_CPU_UNBOUND,
    WQ_BH,
    WQ_MEM_RECLAIM,
    WQF_DESTROYING,
    WQF_DRAINING,
)
from .wqpool import WORKER_IDLE, WORKER_PREP, Worker, WorkerPool

if TYPE_CHECKING:
    from .kernel import Kernel
    from .workqueue import work_struct, workqueue_struct

HEADER = (
    "# bottomhalf's live view of every workqueue, pool and worker.\n"
    "# Linux has no /sys/kernel/debug/workqueue: there, use tools/workqueue/wq_dump.py,\n"
    "# wq_monitor.py, SysRq-t (echo t > /proc/sysrq-trigger) and the workqueue tracepoints.\n"
)


def debug_workqueue(k: Kernel) -> str:
    wqs = k.wq
    sym = k.symbols
    out = [HEADER, "Worker Pools", "============"]
    for pool in wqs.pools:
        if pool.is_bh:
            nw, ni = 1, (1 if pool.bh_worker and pool.bh_worker.flags & WORKER_PREP else 0)
        else:
            nw, ni = pool.nr_workers, pool.nr_idle
        line = (f"pool[{pool.id:02d}] flags=0x{pool.flags:02x} ref={pool.refcnt:2d} "
                f"nice={pool.nice:3d} idle/workers={ni:3d}/{nw:3d} ")
        if pool.cpu >= 0:
            line += f"cpu={pool.cpu:3d}" + (" bh" if pool.is_bh else "")
        else:
            line += f"cpus={wqs.cpumask_str()} pod_cpus={wqs.cpumask_str()}"
        line += f" nr_running={pool.nr_running}"
        out.append(line)
        for w in pool.workers:
            t = w.task
            pid = t.pid if t else 0
            if w.current_work is not None:
                state = (f"running {sym.symbol(w.current_func)} for "
                         f"{w.current_pwq.wq.name if w.current_pwq else '?'}")
                if t is not None and t.state and t.wait_desc:
                    state += f", sleeping in {t.wait_desc}"
            elif w.flags & WORKER_IDLE:
                state = "idle"
            else:
                state = "runnable"
            out.append(f"    {w.comm()} (pid {pid}): {state}")
        if pool.worklist:
            out.append("    worklist: " + ", ".join(sym.symbol(x.func) for x in pool.worklist))
    out += ["", "Workqueue CPU -> pool", "====================="]
    cpus = " ".join(f"{c:3d}" for c in range(k.ncpus))
    out.append(f"[{'workqueue':^24s} \\ type   CPU {cpus} dfl]")
    for wq in wqs.workqueues:
        if len(wq.pwqs) == 1:
            ids = " ".join(f"{wq.pwqs[0].pool.id:3d}" for _ in range(k.ncpus))
            dfl = f"{wq.pwqs[0].pool.id:3d}"
        else:
            ids = " ".join(f"{p.pool.id:3d}" for p in wq.pwqs)
            dfl = "  -"
        out.append(f"{wq.name[-24:]:24s} {wq.kind():8s}    {ids} {dfl}")
    out += ["", "Workqueue -> rescuer", "===================="]
    for wq in wqs.workqueues:
        if wq.rescuer is not None and wq.rescuer.task is not None:
            out.append(f"{wq.name[-24:]:24s} pid={wq.rescuer.task.pid:5d} "
                       f"{wq.rescuer.name()}")
    out += ["", "Workqueues", "=========="]
    for wq in wqs.workqueues:
        active = sum(p.nr_active for p in wq.pwqs)
        inactive = sum(len(p.inactive) for p in wq.pwqs)
        flags = []
        if wq.flags & WQF_DRAINING:
            flags.append("draining")
        if wq.flags & WQF_DESTROYING:
            flags.append("destroying")
        out.append(f"{wq.name:24s} {wq.kind():8s} flags=0x{wq.flags:x} max_active={wq.max_active} "
                   f"active={active} inactive={inactive}" + (" " + " ".join(flags) if flags else ""))
    return "\n".join(out) + "\n"


def _sum_stats(wq: workqueue_struct) -> list[int]:
    stats = [0] * PWQ_NR_STATS
    for pwq in wq.pwqs:
        for i, v in enumerate(pwq.stats):
            stats[i] += v
    return stats


def monitor_stats(k: Kernel) -> list[dict[str, Any]]:
    """wq_monitor.py -j: one dict per workqueue, summed over its pwqs."""
    now = k.now_ns / 1e9
    out = []
    for wq in k.wq.workqueues:
        s = _sum_stats(wq)
        out.append({
            "timestamp": now, "name": wq.name, "unbound": wq.unbound,
            "mem_reclaim": bool(wq.flags & WQ_MEM_RECLAIM), "started": s[PWQ_STAT_STARTED],
            "completed": s[PWQ_STAT_COMPLETED], "cpu_time": s[PWQ_STAT_CPU_TIME],
            "cpu_intensive": s[PWQ_STAT_CPU_INTENSIVE], "cm_wakeup": s[PWQ_STAT_CM_WAKEUP],
            "repatriated": s[PWQ_STAT_REPATRIATED], "mayday": s[PWQ_STAT_MAYDAY],
            "rescued": s[PWQ_STAT_RESCUED],
        })
    return out


def wq_monitor(k: Kernel) -> str:
    """One round of wq_monitor.py's table, byte for byte."""
    lines = ["", wqmonitor.header(), *map(wqmonitor.row, monitor_stats(k))]
    return "\n".join(lines) + "\n"


class Introspect:
    """work_busy(), current_work(), workqueue_congested(), workqueue_set_max_active()
    and the kernel's own busy reports, mixed into Workqueues."""

    kernel: Kernel
    pools: list[WorkerPool]
    workqueues: list[workqueue_struct]

    if TYPE_CHECKING:  # provided by Workqueues; stubs here would shadow them in the MRO
        def clamp_max_active(self, max_active: int, name: str) -> int:
            raise NotImplementedError
        def pwq_activate(self, ctx: ExecCtx, pwq: Any) -> None: ...

    def work_busy(self, work: work_struct) -> int:
        ret = WORK_BUSY_PENDING if work.pending else 0
        pool = work.last_pool
        if pool is not None:
            w = pool.busy.get(id(work))
            if w is not None and w.current_func is work.func:
                ret |= WORK_BUSY_RUNNING
        return ret

    def current_worker(self, ctx: ExecCtx) -> Worker | None:
        """current_wq_worker(): the worker ``current`` is, in process context."""
        task = ctx.task
        if not ctx.in_task() or not task.flags & PF_WQ_WORKER:
            return None
        return task.worker

    def current_work(self, ctx: ExecCtx) -> work_struct | None:
        w = self.current_worker(ctx)
        return w.current_work if w is not None else None

    def workqueue_congested(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct) -> bool:
        if cpu == WORK_CPU_UNBOUND:
            cpu = ctx.cpu
        return bool(wq.pwq_for(cpu).inactive)

    def set_max_active(self, ctx: ExecCtx, wq: workqueue_struct, max_active: int) -> None:
        """workqueue_set_max_active(): WARN and ignore for BH and ordered queues."""
        k = self.kernel
        if wq.flags & WQ_BH or wq.ordered:
            k.warn(ctx, None, where="workqueue_set_max_active")
            return
        max_active = self.clamp_max_active(max_active, wq.name)
        wq.saved_max_active = max_active
        wq.max_active = max_active
        for pwq in wq.pwqs:
            pwq.pool.lock.acquire(ctx)
            self.pwq_activate(ctx, pwq)
            pwq.pool.lock.release(ctx)

    def busy_items(self) -> list[str]:
        sym = self.kernel.symbols.symbol
        out = []
        for pool in self.pools:
            for w in pool.all_workers():
                if w.current_work is not None:
                    who = w.name() if w.task is None else f"{w.task.comm}/{w.task.pid}"
                    extra = f", blocked in {w.task.wait_desc}" if w.task and w.task.wait_desc \
                        and w.task.state else ""
                    out.append(f"work {sym(w.current_func)} running on {who}{extra}")
            for work in pool.worklist:
                out.append(f"work {sym(work.func)} queued on pool {pool.id} ({pool.describe()})")
        for wq in self.workqueues:
            for pwq in wq.pwqs:
                for work in pwq.inactive:
                    out.append(f"work {sym(work.func)} inactive on {wq.name}")
        return out

    def pending_owned(self, owns: Callable[[Any], bool]) -> list[work_struct]:
        """Pending (queued, inactive or timer-armed) items whose function belongs
        to a module that is being rolled back."""
        out: list[work_struct] = []
        for pool in self.pools:
            out.extend(w for w in pool.worklist if not w.is_barrier and owns(w.func))
        for wq in self.workqueues:
            for pwq in wq.pwqs:
                out.extend(w for w in pwq.inactive if owns(w.func))
        from .workqueue import delayed_work

        for t in self.kernel.timers.all_pending():
            dw = getattr(t, "_bh_container", None)
            if isinstance(dw, delayed_work) and owns(dw.work.func):
                out.append(dw.work)
        return out
