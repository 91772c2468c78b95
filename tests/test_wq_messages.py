"""Workqueue diagnostics with Linux's exact text (kernel/workqueue.c, 6.12), on sim."""

from __future__ import annotations

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages


def _after_boot(k: Kernel) -> list[str]:
    msgs = messages(k)
    return msgs[msgs.index("smp: Brought up 1 node, 2 CPUs") + 1:]


def _warning_sites(k: Kernel) -> list[str]:
    """The function named by each WARNING line (the text after the location)."""
    return [m.rsplit(" ", 1)[1].split("+", 1)[0] for m in messages(k)
            if m.startswith("WARNING: CPU: ")]


def test_drain_workqueue_reports_slow_drains_at_10_and_every_100_tries(sim: Kernel) -> None:
    """An item that keeps requeueing itself (chained queueing is allowed while
    draining) makes drain_workqueue() flush over and over: pr_warn at 10 and 100."""
    runs = [0]
    box: dict = {}

    def again(w: L.work_struct) -> None:
        L.msleep(1)  # still running when the drainer checks again
        runs[0] += 1
        if runs[0] < 112:
            L.queue_work(box["wq"], w)

    w = L.DECLARE_WORK(again)

    def go() -> None:
        box["wq"] = L.alloc_workqueue("drainq", 0, 0)
        L.queue_work(box["wq"], w)
        L.drain_workqueue(box["wq"])

    sim.call(go)
    sim.run_until_idle()
    assert runs == [112]
    assert _after_boot(sim) == [
        "workqueue drainq: drain_workqueue() isn't complete after 10 tries",
        "workqueue drainq: drain_workqueue() isn't complete after 100 tries",
    ]


def test_long_workqueue_name_is_truncated_with_one_warning(sim: Kernel) -> None:
    """WQ_NAME_LEN is 32: the name keeps 31 characters; pr_warn_once."""
    def go() -> list[str]:
        return [L.alloc_workqueue("a_workqueue_name_of_forty_characters", 0, 0).name,
                L.alloc_workqueue("b_workqueue_name_of_forty_characters", 0, 0).name]

    assert sim.call(go) == ["a_workqueue_name_of_forty_chara", "b_workqueue_name_of_forty_chara"]
    assert _after_boot(sim) == [
        "workqueue: name exceeds WQ_NAME_LEN. Truncating to: a_workqueue_name_of_forty_chara"]


def test_mem_reclaim_worker_flushing_a_plain_queue_warns(sim: Kernel) -> None:
    """check_flush_dependency(): flush_work names the target item, flush_workqueue
    passes NULL (%ps prints 0x0); WARN_ONCE, so only the first is reported."""
    box: dict = {}
    ow = L.DECLARE_WORK(lambda w: None)

    def flusher(w: L.work_struct) -> None:
        L.queue_work(box["plain"], ow)
        L.flush_work(ow)
        L.flush_workqueue(box["plain"])

    def other(w: L.work_struct) -> None:
        pass

    L.INIT_WORK(ow, other)
    fw = L.DECLARE_WORK(flusher)

    def go() -> None:
        box["plain"] = L.alloc_workqueue("plainq", 0, 0)
        box["rec"] = L.alloc_workqueue("reclaimq", L.WQ_MEM_RECLAIM, 0)
        L.queue_work(box["rec"], fw)

    sim.call(go)
    sim.run_until_idle()
    msgs = messages(sim)
    assert [m for m in msgs if "is flushing" in m] == [
        "workqueue: WQ_MEM_RECLAIM reclaimq:flusher is flushing !WQ_MEM_RECLAIM plainq:other"]
    assert _warning_sites(sim) == ["check_flush_dependency"]


def test_work_item_leaking_preemption_is_reported(sim: Kernel) -> None:
    """process_one_work(): pr_err of two lines, then a stack dump."""
    def leaky(w: L.work_struct) -> None:
        L.preempt_disable()

    lw = L.DECLARE_WORK(leaky)
    sim.call(lambda: L.schedule_work(lw))
    sim.run_until_idle()
    out = _after_boot(sim)
    assert out[:3] == ["BUG: workqueue leaked atomic, lock or RCU: kworker/0:0[5]",
                       "     preempt=0x00000001 lock=0->0 RCU=0->0 workfn=leaky",
                       "CPU: 0 UID: 0 PID: 5 Comm: kworker/0:0 Not tainted 6.12.0-bottomhalf #1"]
    assert "Call Trace:" in out


def test_disable_count_overflow_warns_once_and_keeps_the_count(sim: Kernel) -> None:
    """The disable depth stops at 65535: WARN_ONCE, and the depth is not changed."""
    w = L.DECLARE_WORK(lambda work: None)

    def go() -> tuple[list[bool], int]:
        for _ in range(65535):
            L.disable_work(w)
        return [L.disable_work(w), L.disable_work(w)], w.disable

    assert sim.call(go) == ([False, False], 65535)
    assert [m for m in messages(sim) if "overflowed" in m] == [
        "workqueue: work disable count overflowed"]
    assert _warning_sites(sim) == ["work_offqd_disable"]


def test_enable_and_queue_work_queues_only_when_the_depth_reaches_0(sim: Kernel) -> None:
    ran = []
    w = L.DECLARE_WORK(lambda work: ran.append("ran"))

    def go() -> list[bool]:
        L.disable_work(w)
        L.disable_work(w)
        return [L.enable_and_queue_work(L.system_wq, w), L.work_pending(w),
                L.enable_and_queue_work(L.system_wq, w), L.work_pending(w)]

    assert sim.call(go) == [False, False, True, True]
    sim.run_until_idle()
    assert ran == ["ran"]


def test_queue_work_node_warns_once_for_a_per_cpu_queue(sim: Kernel) -> None:
    """Meant for unbound queues: WARN_ON_ONCE otherwise, and the item is queued anyway."""
    ran = []
    w = L.DECLARE_WORK(lambda work: ran.append("unbound"))
    w2 = L.DECLARE_WORK(lambda work: ran.append("percpu"))

    def go() -> list[bool]:
        r = [L.queue_work_node(0, L.system_unbound_wq, w),
             L.queue_work_node(0, L.system_unbound_wq, w),
             L.queue_work_node(0, L.system_wq, w2)]
        L.flush_work(w2)
        return r + [L.queue_work_node(0, L.system_highpri_wq, w2)]

    assert sim.call(go) == [True, False, True, True]
    sim.run_until_idle()
    assert sorted(ran) == ["percpu", "percpu", "unbound"]
    assert _warning_sites(sim) == ["queue_work_node"]


def test_set_max_active_refuses_a_bh_queue_each_time(sim: Kernel) -> None:
    """max_active means nothing for BH queues: WARN_ON (every time) and ignore."""
    sim.call(lambda: L.workqueue_set_max_active(L.system_bh_wq, 4))
    sim.call(lambda: L.workqueue_set_max_active(L.system_bh_wq, 4))
    assert sim.wq.system["system_bh_wq"].max_active == 2**31 - 1  # INT_MAX, as for every BH queue
    assert _warning_sites(sim) == ["workqueue_set_max_active"] * 2
    out = _after_boot(sim)
    i = out.index("Call Trace:")
    assert out[i:i + 4] == ["Call Trace:", " <TASK>", " workqueue_set_max_active",
                            " do_syscall_64"]


# ----------------------------------------------------------------------
# WARN_ONCE: once per boot per call site, whatever the queue or the API


def test_flush_dependency_warns_once_per_boot_not_once_per_queue(sim: Kernel) -> None:
    """Two WQ_MEM_RECLAIM queues flushing a plain queue: one WARN_ONCE site, one report."""
    box: dict = {}

    def flusher(w: L.work_struct) -> None:
        L.flush_workqueue(box["plain"])

    w1 = L.DECLARE_WORK(flusher)
    w2 = L.DECLARE_WORK(flusher)

    def go() -> None:
        box["plain"] = L.alloc_workqueue("plainq", 0, 0)
        L.queue_work(box["plain"], L.DECLARE_WORK(lambda w: L.msleep(1)))
        L.queue_work(L.alloc_workqueue("reclaim1", L.WQ_MEM_RECLAIM, 0), w1)
        L.flush_work(w1)
        L.queue_work(box["plain"], L.DECLARE_WORK(lambda w: L.msleep(1)))
        L.queue_work(L.alloc_workqueue("reclaim2", L.WQ_MEM_RECLAIM, 0), w2)

    sim.call(go)
    sim.run_until_idle()
    assert [m for m in messages(sim) if "is flushing" in m] == [
        "workqueue: WQ_MEM_RECLAIM reclaim1:flusher is flushing !WQ_MEM_RECLAIM plainq:0x0"]
    assert _warning_sites(sim) == ["check_flush_dependency"]


def test_bh_cancel_sync_from_hardirq_warns_once_for_every_api(sim: Kernel) -> None:
    """cancel_work_sync and disable_work_sync share __cancel_work_sync's WARN_ON_ONCE."""
    w = L.DECLARE_WORK(lambda work: None)
    got: list[bool] = []

    def h(irq: int, dev: object) -> int:
        got.append(L.in_hardirq())
        L.cancel_work_sync(w)
        L.disable_work_sync(w)
        L.cancel_work_sync(w)
        return L.IRQ_HANDLED

    def go() -> None:
        L.queue_work(L.system_bh_wq, w)
        L.flush_work(w)  # it has run on a BH pool: WORK_OFFQ_BH
        assert L.request_irq(17, h, 0, "mydev", "d") == 0

    sim.call(go)
    sim.raise_irq(17, cpu=0)
    sim.run_until_idle()
    assert got == [True]
    assert _warning_sites(sim) == ["__cancel_work_sync"]


def test_warn_once_call_trace_has_no_helper_frame(sim: Kernel) -> None:
    """WARN_ON_ONCE is a macro: the trace starts at the function that warns."""
    sim.call(lambda: L.queue_work_node(0, L.system_wq, L.DECLARE_WORK(lambda w: None)))
    out = _after_boot(sim)
    start = out.index("Call Trace:")
    assert out[start:start + 4] == ["Call Trace:", " <TASK>", " queue_work_node", " do_syscall_64"]


def test_worker_creation_failure_is_logged_once(sim: Kernel) -> None:
    """pr_err_once: the second failed creation is silent."""
    sim.wq.fail_worker_creation = True
    pool = sim.wq.cpu_pools[0][0]
    assert sim.call(lambda: [pool.create_worker(None), pool.create_worker(None)]) == [None, None]
    assert _after_boot(sim) == ["workqueue: Failed to create a worker thread: -ENOMEM"]
