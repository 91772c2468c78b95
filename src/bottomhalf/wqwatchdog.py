"""The workqueue lockup watchdog and the busy-workqueue dump.

Mirrors CONFIG_WQ_WATCHDOG and show_all_workqueues() of kernel/workqueue.c
(6.12; reference §5.11, §9.4):

* Every ``workqueue.watchdog_thresh`` seconds (30 by default, 0 disables,
  writable at /sys/module/workqueue/parameters/watchdog_thresh) a timer
  checks each pool with a non-empty worklist: if neither the pool made
  progress (an item started, or the worklist went from empty to non-empty)
  nor the watchdog last ran within the threshold, it prints
  ``BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 31s!``
  then the SysRq-t style dump of busy workqueues and pools, and for stalled
  per-CPU pools the running workers.
* ``workqueue.panic_on_stall=N`` (0 by default) counts the timer runs that
  reported a stall and BUG()s at the Nth; the kernel survives the Oops that
  Linux would panic on (reported as such) and the unwound timer does not
  re-arm (the next non-empty worklist arms it again, as below).
* The dump (``show_all_workqueues``, ``show_one_workqueue``, ``show_pwq``)
  is also printed by destroy_workqueue() when a queue is still busy.

Two differences from Linux, both for the sim engine's sake: the watchdog
timer is armed when a worklist first becomes non-empty rather than at boot
(Linux's timer is deferrable and never wakes an idle machine either), and
after reporting a stall it re-arms only if some work item started since the
previous check, so that a sim run whose only remaining event would be the
watchdog's next report ends and is reported as a hang.  Linux repeats the
report every period for as long as the stall lasts.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import report
from .context import ExecCtx
from .task import TASK_RUNNING
from .timer import HZ, INITIAL_JIFFIES, TICK_NSEC, TIMER_DEFERRABLE, jiffies_to_msecs, timer_list
from .wqpool import WORKER_PREP

if TYPE_CHECKING:
    from .kernel import Kernel
    from .workqueue import pool_workqueue, work_struct, workqueue_struct
    from .wqpool import Worker, WorkerPool


def _jiffies_of(ns: int) -> int:
    return INITIAL_JIFFIES + ns // TICK_NSEC


class Watchdog:
    """The watchdog and dump half of Workqueues (a mixin)."""

    kernel: Kernel
    pools: list[WorkerPool]
    workqueues: list[workqueue_struct]
    started_total: int

    def __init__(self) -> None:
        self.watchdog_timer = timer_list()
        self.watchdog_timer.housekeeping = True
        self.watchdog_timer.flags |= TIMER_DEFERRABLE
        self.watchdog_timer.function = self.wq_watchdog_timer_fn
        self.watchdog_armed = False
        self.watchdog_touched = INITIAL_JIFFIES
        self._watchdog_started = 0
        self.wq_stall = 0  # stall reports counted for workqueue.panic_on_stall

    def watchdog_thresh(self) -> int:
        return int(self.kernel.params["workqueue.watchdog_thresh"])

    def arm_watchdog(self, ctx: ExecCtx | None) -> None:
        thresh = self.watchdog_thresh()
        if not thresh:
            return
        k = self.kernel
        c = ctx if ctx is not None else k.current_ctx()
        self.watchdog_armed = True
        self.watchdog_touched = k.timers.jiffies()
        self._watchdog_started = self.started_total
        k.timers.mod_timer(c, self.watchdog_timer, k.timers.jiffies() + thresh * HZ)

    def set_watchdog_thresh(self, ctx: ExecCtx, thresh: int) -> None:
        """wq_watchdog_set_thresh(): stop the timer, then restart it if thresh > 0."""
        k = self.kernel
        k.params["workqueue.watchdog_thresh"] = thresh
        k.timers.del_timer(ctx, self.watchdog_timer)
        self.watchdog_armed = False
        if thresh and any(p.worklist for p in self.pools):
            self.arm_watchdog(ctx)

    def wq_watchdog_timer_fn(self, _t: timer_list) -> None:
        k = self.kernel
        ctx = k.current_ctx()
        self.watchdog_armed = False
        thresh = self.watchdog_thresh() * HZ
        if not thresh:
            return
        now = k.timers.jiffies()
        lockup = False
        cpu_stall = False
        busy = False
        for pool in self.pools:
            pool.cpu_stall = False
            if not pool.worklist:
                continue
            busy = True
            pool_ts = _jiffies_of(pool.watchdog_ts)
            ts = max(pool_ts, self.watchdog_touched)
            if now > ts + thresh:
                lockup = True
                if pool.cpu >= 0 and not pool.is_bh:
                    pool.cpu_stall = True
                    cpu_stall = True
                secs = jiffies_to_msecs(now - pool_ts) // 1000
                k.log_line(0, f"BUG: workqueue lockup - pool {pool.describe()} stuck for {secs}s!")
        if lockup:
            for line in self.show_all_workqueues():
                k.log_line(6, line)
        if cpu_stall:
            k.log_line(6, "Showing backtraces of running workers in stalled CPU-bound "
                          "worker pools:")
            for pool in self.pools:
                if pool.cpu_stall:
                    self._show_cpu_pool_hog(pool)
        if lockup and not self.panic_on_wq_watchdog(ctx):
            return  # BUG() unwound the timer function: it does not re-arm
        progressed = self.started_total != self._watchdog_started
        if busy and (not lockup or progressed):
            self.arm_watchdog(ctx)

    def panic_on_wq_watchdog(self, ctx: ExecCtx) -> bool:
        """``workqueue.panic_on_stall=N``: BUG() at the Nth stall report of the boot
        (the count runs only while N > 0).  True when the caller goes on."""
        k = self.kernel
        limit = int(k.params.get("workqueue.panic_on_stall", 0))
        if not limit:
            return True
        self.wq_stall += 1
        if self.wq_stall < limit:
            return True
        # BUG_ON() in the timer softirq: the Oops ends in "Fatal exception in
        # interrupt", which this kernel reports but survives.
        report.bug(k, ctx, sys._getframe(0))
        return False

    def _show_cpu_pool_hog(self, pool: WorkerPool) -> None:
        k = self.kernel
        for w in list(pool.busy.values()):
            t = w.task
            if t is not None and t.state == TASK_RUNNING:
                k.log_line(6, f"pool {pool.id}:")
                k.log_line(6, f"task:{t.comm:<15.15} state:R  running task     stack:0     "
                              f"pid:{t.pid:<5} tgid:{t.pid:<5} ppid:2      flags:0x00004008")
                k.log_line(6, f"Workqueue: {w.desc} {k.symbols.symbol(w.current_func)}")

    # ------------------------------------------------------------------
    # the dump (SysRq-t, the watchdog, destroy_workqueue)
    def show_all_workqueues(self) -> list[str]:
        out = ["Showing busy workqueues and worker pools:"]
        for wq in self.workqueues:
            out.extend(self.show_one_workqueue(wq))
        for pool in self.pools:
            out.extend(self.show_one_worker_pool(pool))
        return out

    def show_one_workqueue(self, wq: workqueue_struct) -> list[str]:
        busy = [p for p in wq.pwqs if p.nr_active or p.inactive]
        if not busy:
            return []
        out = [f"workqueue {wq.name}: flags=0x{wq.flags:x}"]
        for pwq in busy:
            out.extend(self.show_pwq(pwq))
        return out

    def show_pwq(self, pwq: pool_workqueue) -> list[str]:
        pool = pwq.pool
        sym = self.kernel.symbols.symbol
        mayday = pwq in pwq.wq.maydays
        refcnt = 1 + pwq.nr_in_flight + (1 if mayday else 0)
        out = [f"  pwq {pool.id}: {pool.describe()} active={pwq.nr_active} refcnt={refcnt}"
               + (" MAYDAY" if mayday else "")]
        workers = [w for w in self._pool_workers(pool) if w.current_pwq is pwq]
        if workers:
            line = "    in-flight:"
            for i, w in enumerate(workers):
                line += " " + ("," if i else "") + self._worker_id(w) + ":" + sym(w.current_func)
                line += _works_text(list(w.scheduled), sym, False)
            out.append(line)
        pending = [x for x in pool.worklist if x.pwq is pwq]
        if pending:
            out.append("    pending:" + _works_text(pending, sym, True))
        if pwq.inactive:
            out.append("    inactive:" + _works_text(list(pwq.inactive), sym, True))
        return out

    def _pool_workers(self, pool: WorkerPool) -> list[Worker]:
        ws = list(pool.all_workers())
        for wq in self.workqueues:
            r = wq.rescuer
            if r is not None and r.pool is pool and r.current_work is not None:
                ws.append(r)
        return ws

    def _worker_id(self, w: Worker) -> str:
        """pr_cont_worker_id()."""
        if w.pool.is_bh:
            return "bh-hi" if w.pool.nice < 0 else "bh"
        pid = w.task.pid if w.task is not None else 0
        return f"{pid}(RESCUER)" if w.rescue_wq is not None else str(pid)

    def show_one_worker_pool(self, pool: WorkerPool) -> list[str]:
        if pool.is_bh:
            bw = pool.bh_worker
            idle = 1 if bw is not None and bw.flags & WORKER_PREP else 0
            if idle and not pool.worklist:
                return []
            idle_ids = ["bh-hi" if pool.nice < 0 else "bh"] if idle else []
            nr_workers = 1
        else:
            if pool.nr_workers == pool.nr_idle:
                return []
            idle_ids = [self._worker_id(w) for w in pool.idle_list]
            nr_workers = pool.nr_workers
        hung = 0
        if pool.worklist:
            hung = jiffies_to_msecs(self.kernel.timers.jiffies() - _jiffies_of(pool.watchdog_ts)) // 1000
        line = f"pool {pool.id}: {pool.describe()} hung={hung}s workers={nr_workers}"
        if pool.manager is not None and pool.manager.task is not None:
            line += f" manager: {pool.manager.task.pid}"
        for i, wid in enumerate(idle_ids):
            line += " " + ("" if i else "idle: ") + wid
        return [line]


def _works_text(works: list[work_struct], sym: Any, commas: bool) -> str:
    """pr_cont_work(): ' f1, 2*f2, BAR(123)' with repeats folded."""
    out = ""
    run_func: Any = None
    run_n = 0
    run_comma = False
    comma = False

    def flush() -> str:
        if not run_n:
            return ""
        lead = "," if run_comma else ""
        return f"{lead} {sym(run_func)}" if run_n == 1 else f"{lead} {run_n}*{sym(run_func)}"

    for work in works:
        if work.is_barrier:
            out += flush()
            run_n = 0
            pid = work.barrier_task.pid if work.barrier_task is not None else 0
            out += f"{',' if comma else ''} BAR({pid})"
        elif run_n and work.func is run_func:
            run_n += 1
        else:
            out += flush()
            run_func, run_n, run_comma = work.func, 1, comma
        comma = commas and not work.linked
    out += flush()
    return out
