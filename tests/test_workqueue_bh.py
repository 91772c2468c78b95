"""BH workqueues and bad use of the workqueue API: Linux's answer, never a crash."""

from __future__ import annotations

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages


def test_bh_work_runs_in_the_queueing_cpus_softirq(kernel: Kernel) -> None:
    """A system_bh_wq item runs in softirq context on the CPU that queued it."""
    seen: list[tuple[bool, bool, int, object]] = []

    def fn(work: L.work_struct) -> None:
        seen.append((L.in_serving_softirq(), L.in_task(), L.smp_processor_id(),
                     L.current_work()))

    w = L.DECLARE_WORK(fn)
    kernel.call(lambda: L.queue_work(L.system_bh_wq, w), cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [(True, False, 1, None)]


def test_bh_order_in_one_softirq_pass(kernel: Kernel) -> None:
    """One pass runs highpri BH work, HI tasklets, BH work, then tasklets."""
    order: list[str] = []
    t_hi = L.tasklet_struct()
    t_lo = L.tasklet_struct()
    L.tasklet_setup(t_hi, lambda t: order.append("HI tasklet"))
    L.tasklet_setup(t_lo, lambda t: order.append("tasklet"))
    b_hi = L.DECLARE_WORK(lambda w: order.append("highpri BH work"))
    b_lo = L.DECLARE_WORK(lambda w: order.append("BH work"))

    def go() -> None:
        L.local_bh_disable()
        L.tasklet_schedule(t_lo)
        L.queue_work(L.system_bh_wq, b_lo)
        L.tasklet_hi_schedule(t_hi)
        L.queue_work(L.system_bh_highpri_wq, b_hi)
        L.local_bh_enable()

    kernel.call(go)
    kernel.run_until_idle(timeout_ms=5000)
    assert order == ["highpri BH work", "HI tasklet", "BH work", "tasklet"]


def test_bh_worker_restart_limit(sim: Kernel) -> None:
    """A softirq pass runs at most 10 BH items; the rest run in a later pass."""
    sim.write("/sys/kernel/tracing/set_event", "irq:softirq_entry")
    works = [L.DECLARE_WORK(lambda w: None) for _ in range(25)]
    ran = []
    for i, w in enumerate(works):
        L.INIT_WORK(w, lambda work, i=i: ran.append(i))

    def go() -> None:
        L.local_bh_disable()
        for w in works:
            L.queue_work(L.system_bh_wq, w)
        L.local_bh_enable()

    sim.call(go)
    sim.run_until_idle()
    assert ran == list(range(25))
    entries = [x for x in sim.read("/sys/kernel/tracing/trace").splitlines()
               if "action=TASKLET" in x]
    assert len(entries) == 3


def test_bh_queue_rejects_flags_and_max_active(kernel: Kernel) -> None:
    """alloc_workqueue(WQ_BH) with other flags or a max_active WARNs and returns NULL."""
    def go() -> list[object]:
        return [L.alloc_workqueue("bh1", L.WQ_BH | L.WQ_UNBOUND, 0),
                L.alloc_workqueue("bh2", L.WQ_BH, 4),
                L.alloc_workqueue("bh3", L.WQ_BH | L.WQ_HIGHPRI, 0) is not None]

    assert kernel.call(go) == [None, None, True]
    warns = [m for m in messages(kernel) if m.startswith("WARNING:")]
    assert len(warns) == 2 and all("__alloc_workqueue" in m for m in warns)


def test_bh_cancel_work_sync_from_softirq_busy_waits(sim: Kernel) -> None:
    """cancel_work_sync from a tasklet on CPU0 meets the BH item running on CPU1:
    it busy-waits (no sleep, no splat) and returns as soon as the item is done."""
    t: dict = {}

    def slow(w: L.work_struct) -> None:
        t["start"] = (L.ktime_get_ns(), L.smp_processor_id(), L.in_serving_softirq())
        L.mdelay(5)
        t["end"] = L.ktime_get_ns()

    target = L.DECLARE_WORK(slow)

    def canceller(tl: L.tasklet_struct) -> None:
        L.mdelay(1)  # CPU1 is now 1 ms into slow()
        t["call"] = (L.ktime_get_ns(), L.smp_processor_id(), L.in_serving_softirq())
        t["ret"] = L.cancel_work_sync(target)
        t["back"] = L.ktime_get_ns()

    tl = L.tasklet_struct()
    L.tasklet_setup(tl, canceller)

    def go() -> None:
        L.queue_work_on(1, L.system_bh_wq, target)
        L.tasklet_schedule(tl)

    sim.call(go, cpu=0)
    sim.run_until_idle()
    assert t["start"] == (0, 1, True)
    assert t["call"] == (1_000_000, 0, True)
    assert t["end"] == 5_000_000
    # It was running, not pending (False); the barrier behind it completes at 5 ms.
    assert t["back"] == 5_000_000 and t["ret"] is False
    assert not any("sleeping function" in m for m in messages(sim))


def test_cancel_work_sync_from_softirq_splats(kernel: Kernel) -> None:
    """cancel_work_sync on a normal item from a tasklet gets the sleeping-in-atomic splat."""
    w = L.DECLARE_WORK(lambda work: None)
    box: dict = {}

    def from_tasklet(t: L.tasklet_struct) -> None:
        box["r"] = L.cancel_work_sync(w)

    t = L.tasklet_struct()
    L.tasklet_setup(t, from_tasklet)
    kernel.call(lambda: L.tasklet_schedule(t))
    kernel.run_until_idle(timeout_ms=5000)
    assert box["r"] is False
    msgs = messages(kernel)
    assert any(m.startswith("BUG: sleeping function called from invalid context at ")
               for m in msgs)
    assert any(m.startswith("in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: ")
               for m in msgs)


def test_exception_in_work_function_is_an_oops_and_the_queue_goes_on(kernel: Kernel) -> None:
    """A raising work function gets an Oops report; the worker and the queue keep working."""
    ran: list[str] = []

    def bad(work: L.work_struct) -> None:
        raise ValueError("boom")

    def good(work: L.work_struct) -> None:
        ran.append("good")

    wb = L.DECLARE_WORK(bad)
    wg = L.DECLARE_WORK(good)

    def go() -> None:
        wq = L.alloc_ordered_workqueue("oopsq", 0)
        L.queue_work(wq, wb)
        L.queue_work(wq, wg)

    kernel.call(go)
    kernel.run_until_idle(timeout_ms=5000)
    assert ran == ["good"]
    msgs = messages(kernel)
    assert any(m.startswith("BUG: unhandled Python exception in work bad (process context): "
                            "ValueError: boom") for m in msgs)
    assert any(m.startswith("Oops: 0000 [#1] PREEMPT SMP NOPTI") for m in msgs)
    assert kernel.call(lambda: L.queue_work(L.system_wq, wb)) is True
    kernel.run_until_idle(timeout_ms=5000)


def test_python_misuse_raises(kernel: Kernel) -> None:
    """Passing the wrong object to the API raises TypeError naming the function."""
    import pytest

    dw = L.DECLARE_DELAYED_WORK(lambda w: None)
    with pytest.raises(TypeError, match="queue_work"):
        kernel.call(lambda: L.queue_work(L.system_wq, dw))
    with pytest.raises(TypeError, match="workqueue is None"):
        kernel.call(lambda: L.queue_work(None, L.DECLARE_WORK(lambda w: None)))


def test_init_work_forgets_the_bh_pool(sim: Kernel) -> None:
    """After INIT_WORK, an item that last ran on system_bh_wq is an ordinary item again:
    cancel_work_sync from a tasklet gets the sleeping-in-atomic splat."""
    w = L.DECLARE_WORK(lambda work: None)
    sim.call(lambda: L.queue_work(L.system_bh_wq, w))
    sim.run_until_idle()
    assert w.bh
    L.INIT_WORK(w, lambda work: None)
    assert (w.bh, w.color, w.dispatch_ns, w.last_pool) == (False, 0, -1, None)
    t = L.tasklet_struct()
    L.tasklet_setup(t, lambda t: L.cancel_work_sync(w))
    sim.call(lambda: L.tasklet_schedule(t))
    sim.run_until_idle()
    assert any(m.startswith("BUG: sleeping function called from invalid context at ")
               for m in messages(sim))
