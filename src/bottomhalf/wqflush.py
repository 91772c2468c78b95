"""Waiting for and stopping work: flush, drain, cancel, disable, delayed work.

Mirrors the second half of kernel/workqueue.c (6.12; reference §5.6, §7):

* ``flush_work`` inserts a barrier work right after the item (or at the head
  of the scheduled list of the worker running it) and waits for it; True if
  it waited.  ``flush_workqueue`` waits for every instance queued before the
  call (it starts a new flush colour and waits for the older ones), never
  for later ones.
* ``drain_workqueue`` flushes until the queue is empty; meanwhile only
  chained queueing is accepted (see ``Workqueues._queue_work``).
* ``try_to_grab_pending`` steals PENDING from an item wherever it is (timer,
  inactive list, worklist); ``cancel_work_sync`` = disable + grab + flush +
  enable, so queueing attempts during the cancel fail.
* Delayed work arms a timer_list whose callback queues the item from the
  TIMER softirq; the ``workqueue_queue_work`` tracepoint fires then.  A delay
  of 0 queues at once; ``mod_delayed_work`` re-arms and returns whether the
  item was pending; ``flush_delayed_work`` fires the timer early.
* A flush that can never finish - a work item flushing its own ordered
  queue, or flushing its own workqueue - gets lockdep's report, as a
  CONFIG_LOCKDEP kernel prints it (Debian's kernels have no lockdep and just
  hang; the hung-task report follows either way).

Locking legend: as in :mod:`bottomhalf.workqueue` (W, L, Q).
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import TYPE_CHECKING

from . import report
from .context import ExecCtx, current_ctx
from .locking import complete, completion, debug_locks_off, wait_for_completion
from .task import TASK_UNINTERRUPTIBLE
from .timer import timer_list
from .wqdefs import (
    W_ACTIVE,
    W_GRABBED,
    W_IDLE,
    W_INACTIVE,
    W_SCHEDULED,
    W_STUCK,
    W_TIMER,
    WORK_CPU_UNBOUND,
    WORK_OFFQ_DISABLE_MAX,
    WQ_MEM_RECLAIM,
    WQF_DRAINING,
    WQF_LEGACY,
)

if TYPE_CHECKING:
    from .kernel import Kernel
    from .workqueue import delayed_work, pool_workqueue, work_struct, workqueue_struct
    from .wqpool import Worker

def wq_barrier_func(work: work_struct) -> None:
    """The function of flush_work()'s barrier: complete the flusher's wait."""
    assert work.barrier_done is not None
    complete(current_ctx(), work.barrier_done)


class FlushCancel:
    """The flush/cancel half of Workqueues (a mixin)."""

    kernel: Kernel
    bits: threading.Lock  # PENDING and the off-queue state (Workqueues.bits)
    items_in_flight: int

    if TYPE_CHECKING:  # provided by Workqueues; stubs here would shadow them in the MRO
        def _queue_work(self, ctx: ExecCtx, req_cpu: int, wq: workqueue_struct,
                        work: work_struct) -> None: ...
        def pwq_activate_work(self, ctx: ExecCtx, pwq: pool_workqueue,
                              work: work_struct) -> None: ...
        def pwq_dec_nr_in_flight(self, ctx: ExecCtx, pwq: pool_workqueue, counted: bool,
                                 color: int) -> None: ...
        def current_worker(self, ctx: ExecCtx) -> Worker | None: ...
        def _warn_once(self, ctx: ExecCtx | None, site: str, message: str | None,
                       where: str) -> None: ...

    # ------------------------------------------------------------------
    # flush_work
    def flush_work(self, ctx: ExecCtx, work: work_struct, from_cancel: bool = False) -> bool:
        k = self.kernel
        if not from_cancel:
            k.sched.might_sleep(ctx, "flush_work", depth=3)
        if work.func is None:
            k.warn(ctx, None, where="__flush_work")
            return False
        barr = self._start_flush_work(ctx, work, from_cancel)
        if barr is None:
            return False
        assert barr.barrier_done is not None
        if from_cancel and work.bh:
            # A BH item runs in softirq context and finishes quickly: busy-wait.
            self._bh_busy_wait(ctx, barr.barrier_done)
        else:
            wait_for_completion(ctx, barr.barrier_done,
                                what=f"flush_work({k.symbols.symbol(work.func)})")
        return True

    def _bh_busy_wait(self, ctx: ExecCtx, done: completion) -> None:
        k = self.kernel
        while not done.done:
            if not ctx.in_interrupt():
                k.softirq.local_bh_disable(ctx)
                k.softirq.local_bh_enable(ctx)
            if not done.done:
                k.sched.busy_wait(ctx, 1000)
        done.done -= 1

    def _start_flush_work(self, ctx: ExecCtx, work: work_struct,
                          from_cancel: bool) -> work_struct | None:
        from .workqueue import work_struct as _work_struct

        pool = work.pwq.pool if work.pwq is not None else work.last_pool
        if pool is None:
            return None
        pool.lock.acquire(ctx)
        try:
            worker = None
            pwq = work.pwq
            if pwq is not None and work.state in (W_INACTIVE, W_ACTIVE, W_SCHEDULED):
                if pwq.pool is not pool:
                    return None
            else:
                worker = pool.busy.get(id(work))
                if worker is None or worker.current_func is not work.func:
                    return None
                pwq = worker.current_pwq
                assert pwq is not None
            wq = pwq.wq
            self.check_flush_dependency(ctx, wq, work, from_cancel)
            barr = _work_struct()
            barr.func = wq_barrier_func
            barr.is_barrier = True
            barr.bh = work.bh or pool.is_bh
            barr.barrier_done = completion()
            barr.barrier_task = ctx.task
            barr.pwq = pwq
            pwq.nr_in_flight += 1
            self.items_in_flight += 1
            barr.color = wq.color
            wq.color_inflight[wq.color] = wq.color_inflight.get(wq.color, 0) + 1
            if worker is not None:
                barr.state = W_SCHEDULED
                worker.scheduled.appendleft(barr)
            else:
                lst = self._list_of(work)
                idx = lst.index(work)
                barr.linked = work.linked
                work.linked = True
                barr.state = work.state
                lst.insert(idx + 1, barr)
        finally:
            pool.lock.release(ctx)
        # Lockdep: flushing from inside a single-threaded or rescuer-equipped
        # queue can never finish if the flusher is what the item waits behind.
        if not from_cancel and (wq.saved_max_active == 1 or wq.rescuer is not None):
            self.touch_wq_lockdep_map(ctx, wq)
        return barr

    def _list_of(self, work: work_struct) -> deque[work_struct]:
        pwq = work.pwq
        assert pwq is not None
        if work.state == W_INACTIVE:
            return pwq.inactive
        if work.state == W_ACTIVE:
            return pwq.pool.worklist
        for w in pwq.pool.all_workers():
            if work in w.scheduled:
                return w.scheduled
        rescuer = pwq.wq.rescuer
        if rescuer is not None and work in rescuer.scheduled:
            return rescuer.scheduled
        raise RuntimeError(f"{work!r} is on no list")

    # ------------------------------------------------------------------
    # lockdep's view of flush dependencies (reference §5.12)
    def check_flush_dependency(self, ctx: ExecCtx, wq: workqueue_struct,
                               work: work_struct | None, from_cancel: bool) -> None:
        """WARN_ONCE when a WQ_MEM_RECLAIM worker flushes a !WQ_MEM_RECLAIM queue."""
        if from_cancel or wq.flags & WQ_MEM_RECLAIM:
            return
        worker = self.current_worker(ctx)
        if worker is None or worker.current_pwq is None:
            return
        cur = worker.current_pwq.wq
        if cur.flags & (WQ_MEM_RECLAIM | WQF_LEGACY) == WQ_MEM_RECLAIM:
            sym = self.kernel.symbols.symbol
            target = sym(work.func) if work is not None else "0x0"
            self._warn_once(ctx, "check_flush_dependency:WQ_MEM_RECLAIM",
                           f"workqueue: WQ_MEM_RECLAIM {cur.name}:{sym(worker.current_func)} is "
                           f"flushing !WQ_MEM_RECLAIM {wq.name}:{target}",
                           "check_flush_dependency")

    def touch_wq_lockdep_map(self, ctx: ExecCtx, wq: workqueue_struct) -> None:
        """lock_map_acquire((wq_completion)name) while a work item of ``wq`` holds
        it: lockdep's recursive-locking report, once per boot (debug_locks_off)."""
        worker = self.current_worker(ctx)
        if worker is None or worker.current_pwq is None or worker.current_pwq.wq is not wq:
            return
        k = self.kernel
        if not debug_locks_off(k):
            return
        path, line = report.caller_location(k, sys._getframe(2))
        report.recursive_locking(k, ctx, f"(wq_completion){wq.name}", k.symbols.pointer(wq, "raw"),
                                 "{0:0}", "touch_wq_lockdep_map+0x0/0x0",
                                 "process_one_work+0x0/0x0")
        k.log_line(4, f"bottomhalf: the work item {k.symbols.symbol(worker.current_func)} "
                      f"flushes its own workqueue {wq.name} at {path}:{line}")
        k.add_taint("W")

    # ------------------------------------------------------------------
    # flush_workqueue and drain_workqueue
    def flush_workqueue(self, ctx: ExecCtx, wq: workqueue_struct, what: str = "flush_workqueue",
                        check: bool = True) -> None:
        k = self.kernel
        if check:
            k.sched.might_sleep(ctx, what, depth=3)
        self.touch_wq_lockdep_map(ctx, wq)
        wq.lock.acquire(ctx)
        if not wq.color_inflight:
            wq.lock.release(ctx)
            return
        target = wq.color
        wq.color += 1  # what is queued from now on is not waited for
        task = ctx.task
        wq.flushers.append((target, task))
        self.check_flush_dependency(ctx, wq, None, False)
        wq.lock.release(ctx)

        def flushed() -> bool:
            return all(t is not task for _, t in wq.flushers)

        k.sched.sleep_until(ctx, flushed, TASK_UNINTERRUPTIBLE, f"{what}({wq.name})")

    def drain_workqueue(self, ctx: ExecCtx, wq: workqueue_struct) -> None:
        k = self.kernel
        k.sched.might_sleep(ctx, "drain_workqueue", depth=3)
        wq.lock.acquire(ctx)
        wq.nr_drainers += 1
        wq.flags |= WQF_DRAINING
        wq.lock.release(ctx)
        flush_cnt = 0
        while True:
            self.flush_workqueue(ctx, wq, "drain_workqueue", check=False)
            if not any(p.nr_active or p.inactive for p in wq.pwqs):
                break
            flush_cnt += 1
            if flush_cnt == 10 or (flush_cnt % 100 == 0 and flush_cnt <= 1000):
                k.log_line(4, f"workqueue {wq.name}: drain_workqueue() isn't complete after "
                              f"{flush_cnt} tries")
        wq.lock.acquire(ctx)
        wq.nr_drainers -= 1
        if not wq.nr_drainers:
            wq.flags &= ~WQF_DRAINING
        wq.lock.release(ctx)

    # ------------------------------------------------------------------
    # cancelling (try_to_grab_pending and friends)
    def try_to_grab_pending(self, ctx: ExecCtx, work: work_struct, is_dwork: bool) -> int:
        """Own PENDING: 1 if it was pending (and is now off its queue or timer),
        0 if it was idle.  Either way the caller owns PENDING on return."""
        k = self.kernel
        bits = self.bits
        if is_dwork and work.dwork is not None and work.state == W_TIMER:
            if k.timers.del_timer(ctx, work.dwork.timer):
                with bits:
                    work.state = W_GRABBED
                return 1
        while True:
            with bits:
                st = work.state
                if st == W_IDLE:
                    work.state = W_GRABBED
                    return 0
                if st == W_STUCK or st == W_TIMER:
                    # A dropped item, or (not a delayed-work cancel) a timer-armed
                    # one: PENDING is taken as it is, the timer left alone as Linux does.
                    work.state = W_GRABBED
                    return 1
            pwq = work.pwq
            if pwq is not None and self._grab_queued(ctx, work, pwq):
                return 1
            # Being queued or grabbed by someone else right now: retry (-EAGAIN).
            k.engine.yield_cpu(ctx)
            if k.engine.name == "sim":
                k.sched.busy_wait(ctx, 100)

    def _grab_queued(self, ctx: ExecCtx, work: work_struct, pwq: pool_workqueue) -> bool:
        pool = pwq.pool
        pool.lock.acquire(ctx)
        try:
            st = work.state
            if work.pwq is not pwq or st not in (W_INACTIVE, W_ACTIVE, W_SCHEDULED):
                return False
            if st == W_INACTIVE:
                # Barriers linked to an inactive item must not stay on the
                # inactive list (they never count in nr_active): activate the
                # item with them, then grab it from the worklist, as Linux does.
                self.pwq_activate_work(ctx, pwq, work)
            self._list_of(work).remove(work)
            work.linked = False
            work.pwq = None
            work.last_pool = pool
            work.bh = pool.is_bh
            with self.bits:
                work.state = W_GRABBED
            self.pwq_dec_nr_in_flight(ctx, pwq, True, work.color)
            return True
        finally:
            pool.lock.release(ctx)

    def release_pending(self, ctx: ExecCtx, work: work_struct) -> None:
        with self.bits:
            if work.state == W_GRABBED:
                work.state = W_IDLE

    def cancel_work(self, ctx: ExecCtx, work: work_struct, is_dwork: bool = False,
                    disable: bool = False) -> bool:
        """__cancel_work(): True if the item was pending."""
        ret = self.try_to_grab_pending(ctx, work, is_dwork)
        if disable:
            self._disable_inc(ctx, work)
        self.release_pending(ctx, work)
        return bool(ret)

    def cancel_work_sync(self, ctx: ExecCtx, work: work_struct, is_dwork: bool = False,
                         disable: bool = False, what: str = "cancel_work_sync") -> bool:
        """__cancel_work_sync(): cancel, then wait for a running instance."""
        k = self.kernel
        ret = self.cancel_work(ctx, work, is_dwork, disable=True)
        if work.bh:
            if ctx.in_hardirq():
                self._warn_once(ctx, "__cancel_work_sync", None, "__cancel_work_sync")
        else:
            k.sched.might_sleep(ctx, what, depth=3)
        self.flush_work(ctx, work, from_cancel=True)
        if not disable:
            self.enable_work(ctx, work)
        return ret

    def _disable_inc(self, ctx: ExecCtx, work: work_struct) -> None:
        if work.disable >= WORK_OFFQ_DISABLE_MAX:
            self._warn_once(ctx, "work_offqd_disable", "workqueue: work disable count overflowed",
                           "work_offqd_disable")
            return
        work.disable += 1

    def enable_work(self, ctx: ExecCtx, work: work_struct) -> bool:
        """True if the disable count reached 0; never queues anything."""
        self.try_to_grab_pending(ctx, work, False)
        if work.disable:
            work.disable -= 1
        else:
            self._warn_once(ctx, "work_offqd_enable", "workqueue: work disable count underflowed",
                           "work_offqd_enable")
        zero = work.disable == 0
        self.release_pending(ctx, work)
        return zero

    # ------------------------------------------------------------------
    # delayed work (reference §7)
    def queue_delayed_work_on(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                              dwork: delayed_work, delay: int) -> bool:
        work = dwork.work
        if work.state != W_IDLE:
            return False
        with self.bits:  # test_and_set_bit(WORK_STRUCT_PENDING_BIT)
            if work.state != W_IDLE or work.disable:
                return False
            work.state = W_GRABBED
        self._queue_delayed_work(ctx, cpu, wq, dwork, delay)
        return True

    def _queue_delayed_work(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                            dwork: delayed_work, delay: int) -> None:
        if delay <= 0:
            self._queue_work(ctx, cpu, wq, dwork.work)
            return
        k = self.kernel
        dwork.wq = wq
        dwork.cpu = cpu
        with self.bits:
            dwork.work.state = W_TIMER
        k.timers.mod_timer(ctx, dwork.timer, k.timers.jiffies() + delay,
                           cpu=None if cpu == WORK_CPU_UNBOUND else cpu)

    def mod_delayed_work_on(self, ctx: ExecCtx, cpu: int, wq: workqueue_struct,
                            dwork: delayed_work, delay: int) -> bool:
        """True if it was pending and was modified; False if it was idle and is now queued."""
        work = dwork.work
        ret = self.try_to_grab_pending(ctx, work, True)
        if work.disable:
            self.release_pending(ctx, work)  # clear_pending_if_disabled()
        else:
            self._queue_delayed_work(ctx, cpu, wq, dwork, delay)
        return bool(ret)

    def flush_delayed_work(self, ctx: ExecCtx, dwork: delayed_work) -> bool:
        k = self.kernel
        work = dwork.work
        if work.state == W_TIMER and k.timers.del_timer_sync(ctx, dwork.timer, internal=True):
            with self.bits:
                work.state = W_GRABBED
            assert dwork.wq is not None
            self._queue_work(ctx, dwork.cpu, dwork.wq, work)
        return self.flush_work(ctx, work)


def delayed_work_timer_fn(t: timer_list) -> None:
    """The timer function of every delayed_work: queue the item from the TIMER softirq."""
    ctx = current_ctx()
    wqs = ctx.kernel.wq
    dwork = container_of_timer(t)
    work = dwork.work
    with wqs.bits:
        if work.state != W_TIMER:
            return
        work.state = W_GRABBED
    assert dwork.wq is not None
    wqs._queue_work(ctx, dwork.cpu, dwork.wq, work)


def container_of_timer(t: timer_list) -> delayed_work:
    from .workqueue import delayed_work as _delayed_work

    dw = getattr(t, "_bh_container", None)
    if isinstance(dw, _delayed_work):
        return dw
    raise RuntimeError("delayed_work timer without its delayed_work")
