"""Delayed work, flush, cancel, disable and destroy (reference §13 items 10-13)."""

from __future__ import annotations

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages
from .test_workqueue import Recorder


def test_delayed_work_fires_at_tick_and_traces_queueing_then(sim: Kernel) -> None:
    """A 10 ms delay (3 jiffies) queues at the tick after expiry, traced then, not at the call."""
    sim.run_for(100)
    sim.write("/sys/kernel/tracing/set_event", "workqueue:workqueue_queue_work")
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw"))
    assert sim.call(lambda: L.schedule_delayed_work(dw, L.msecs_to_jiffies(10))) is True
    assert L.msecs_to_jiffies(10) == 3
    assert sim.read("/sys/kernel/tracing/trace").count("workqueue_queue_work") == 0
    sim.run_until_idle()
    assert rec.log[0][0] == 116.0  # expires at jiffy +3, runs at the tick making it +4
    line = [x for x in sim.read("/sys/kernel/tracing/trace").splitlines()
            if "workqueue_queue_work" in x][0]
    assert "<idle>-0       [000] d.s2.     0.116000: workqueue_queue_work: " in line


def test_delayed_work_zero_delay_queues_at_once(sim: Kernel) -> None:
    """queue_delayed_work with delay 0 queues immediately, without a timer."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw"))
    sim.run_for(1)
    sim.call(lambda: L.queue_delayed_work(L.system_wq, dw, 0))
    assert not L.timer_pending(dw.timer)
    sim.run_until_idle()
    assert rec.log[0][0] == 1.0


def test_queue_delayed_work_pending_keeps_its_timer(kernel: Kernel) -> None:
    """A second queue_delayed_work returns False and leaves the expiry unchanged."""
    dw = L.DECLARE_DELAYED_WORK(lambda w: None)

    def go() -> tuple[bool, bool, int, int]:
        a = L.queue_delayed_work(L.system_wq, dw, 50)
        exp = dw.timer.expires
        b = L.queue_delayed_work(L.system_wq, dw, 5)
        return a, b, exp, dw.timer.expires

    a, b, e1, e2 = kernel.call(go)
    assert (a, b, e1 == e2, L.delayed_work_pending(dw)) == (True, False, True, True)
    assert kernel.call(lambda: L.cancel_delayed_work_sync(dw)) is True


def test_mod_delayed_work_returns_and_rearms(sim: Kernel) -> None:
    """mod_delayed_work: False when idle (queued now), True when pending (re-armed)."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw"))
    assert sim.call(lambda: L.mod_delayed_work(L.system_wq, dw, 100)) is False
    sim.run_for(200)  # 100 jiffies = 400 ms: not yet
    assert sim.call(lambda: L.mod_delayed_work(L.system_wq, dw, 5)) is True
    sim.run_until_idle()
    assert [t for t, *_ in rec.log][:1] == [224.0]
    assert sim.call(lambda: L.mod_delayed_work(L.system_wq, dw, 0)) is False
    sim.run_until_idle()
    assert len(rec.events()) == 2


def test_flush_delayed_work_fires_the_timer_early(sim: Kernel) -> None:
    """flush_delayed_work queues an armed item at once and waits: True."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw", burn_ms=2))

    def go() -> tuple[bool, float]:
        L.queue_delayed_work(L.system_wq, dw, 1000)
        r = L.flush_delayed_work(dw)
        return r, sim.now_ns / 1e6

    assert sim.call(go) == (True, 2.0)
    assert sim.call(lambda: L.flush_delayed_work(dw)) is False


def test_flush_work_return_values(kernel: Kernel) -> None:
    """flush_work returns True if it waited for the item, False if it was idle."""
    rec = Recorder(kernel)
    w = L.DECLARE_WORK(rec.fn("w", sleep_us=2000))

    def go() -> list[bool]:
        r0 = L.flush_work(w)
        L.schedule_work(w)
        r1 = L.flush_work(w)
        return [r0, r1, L.work_pending(w), L.work_busy(w) != 0]

    assert kernel.call(go) == [False, True, False, False]
    assert rec.events("end") == ["w"]


def test_flush_workqueue_waits_only_for_earlier_items(sim: Kernel) -> None:
    """flush_workqueue returns when the items queued before it are done, not later ones."""
    rec = Recorder(sim)
    box: dict = {}
    late = L.DECLARE_WORK(rec.fn("late", sleep_us=50_000))

    def early_fn(work: L.work_struct) -> None:
        L.queue_work(box["wq"], late)  # queued while the flush waits
        L.usleep_range(10_000, 10_000)

    early = L.DECLARE_WORK(early_fn)

    def go() -> float:
        box["wq"] = wq = L.alloc_workqueue("fq", 0, 0)
        L.queue_work(wq, early)
        L.flush_workqueue(wq)
        return sim.now_ns / 1e6

    assert sim.call(go) == 10.0
    sim.run_until_idle()
    assert rec.events("end") == ["late"]


def test_drain_accepts_only_chained_queueing(kernel: Kernel) -> None:
    """While draining, a work item may requeue on its queue; a timer's queueing is dropped."""
    count = [0]
    box: dict = {}
    outsider = L.DECLARE_DELAYED_WORK(lambda w: count.append(-1))

    def chain(work: L.work_struct) -> None:
        count[0] += 1
        L.usleep_range(10_000, 10_000)
        if count[0] < 3:
            assert L.queue_work(box["wq"], work)

    w = L.DECLARE_WORK(chain)

    def go() -> list[bool]:
        box["wq"] = wq = L.alloc_workqueue("dq", 0, 0)
        L.queue_work(wq, w)
        queued = L.queue_delayed_work(wq, outsider, 1)  # fires while draining
        L.drain_workqueue(wq)
        return [queued, L.delayed_work_pending(outsider)]

    assert kernel.call(go) == [True, True]
    kernel.run_until_idle(timeout_ms=5000)
    assert count == [3]
    assert "workqueue: cannot queue <lambda> on wq dq" in messages(kernel)


def test_cancel_return_values(kernel: Kernel) -> None:
    """cancel_work and cancel_delayed_work return True only if they removed a pending item."""
    w = L.DECLARE_WORK(lambda work: None)
    dw = L.DECLARE_DELAYED_WORK(lambda work: None)

    def go() -> list[bool]:
        wq = L.alloc_workqueue("cq", 0, 1)
        blocker = L.DECLARE_WORK(lambda work: L.usleep_range(5000, 5000))
        L.queue_work_on(0, wq, blocker)
        L.queue_work_on(0, wq, w)  # inactive behind the blocker
        r = [L.cancel_work(w), L.cancel_work(w)]
        L.queue_delayed_work(wq, dw, 100)
        r += [L.cancel_delayed_work(dw), L.cancel_delayed_work(dw), L.work_pending(w)]
        return r

    assert kernel.call(go) == [True, False, True, False, False]
    kernel.run_until_idle(timeout_ms=5000)


def test_cancel_work_sync_waits_for_the_running_instance(sim: Kernel) -> None:
    """cancel_work_sync returns after the running instance, False when it was not pending."""
    rec = Recorder(sim)
    w = L.DECLARE_WORK(rec.fn("w", burn_ms=5))
    sim.call(lambda: L.queue_work_on(1, L.system_wq, w))
    sim.run_for(2)

    def go() -> tuple[bool, float, bool, bool]:
        r = L.cancel_work_sync(w)
        return r, sim.now_ns / 1e6, L.queue_work(L.system_wq, w), L.cancel_work_sync(w)

    assert sim.call(go) == (False, 5.0, True, True)
    assert rec.events() == ["w"]


def test_cancel_delayed_work_may_return_while_running(sim: Kernel) -> None:
    """cancel_delayed_work does not wait: the callback is still running on return."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw", burn_ms=5))
    sim.call(lambda: L.queue_delayed_work_on(1, L.system_wq, dw, 1))
    sim.run_for(10)  # expires at jiffy +1, runs 8-13 ms
    assert sim.call(lambda: (L.cancel_delayed_work(dw), L.work_busy(dw.work))) == (
        False, L.WORK_BUSY_RUNNING)
    assert sim.call(lambda: L.cancel_delayed_work_sync(dw)) is False
    assert rec.events("end") == ["dw"]


def test_disable_enable_counting(kernel: Kernel) -> None:
    """disable nests; queueing a disabled item fails; enable_work is True only at depth 0."""
    rec = Recorder(kernel)
    w = L.DECLARE_WORK(rec.fn("w"))

    def go() -> list[bool]:
        return [L.disable_work(w), L.disable_work_sync(w), L.queue_work(L.system_wq, w),
                L.work_pending(w), L.enable_work(w), L.queue_work(L.system_wq, w),
                L.enable_work(w), L.queue_work(L.system_wq, w)]

    assert kernel.call(go) == [False, False, False, False, False, False, True, True]
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["w"]


def test_disable_work_cancels_pending_and_enable_does_not_queue(kernel: Kernel) -> None:
    """disable_work on a pending item returns True and drops it; enable_work never queues."""
    rec = Recorder(kernel)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("dw"))

    def go() -> list[bool]:
        L.queue_delayed_work(L.system_wq, dw, 100)
        return [L.disable_delayed_work(dw), L.delayed_work_pending(dw),
                L.enable_delayed_work(dw), L.delayed_work_pending(dw),
                L.mod_delayed_work(L.system_wq, dw, 0)]

    assert kernel.call(go) == [True, False, True, False, False]
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["dw"]


def test_enable_underflow_warns(kernel: Kernel) -> None:
    """enable_work on an enabled item warns 'work disable count underflowed'."""
    w = L.DECLARE_WORK(lambda work: None)
    assert kernel.call(lambda: L.enable_work(w)) is True
    assert "workqueue: work disable count underflowed" in messages(kernel)


def test_destroy_drains_and_refuses_later_queueing(kernel: Kernel) -> None:
    """destroy_workqueue runs what is queued; later queue_work returns True but is dropped."""
    rec = Recorder(kernel)
    works = [L.DECLARE_WORK(rec.fn(f"w{i}", sleep_us=1000)) for i in range(3)]
    late = L.DECLARE_WORK(rec.fn("late"))
    box: dict = {}

    def go() -> list[bool]:
        box["wq"] = wq = L.alloc_workqueue("dwq", 0, 1)
        for w in works:
            L.queue_work(wq, w)
        L.destroy_workqueue(wq)
        return [L.queue_work(wq, late), L.work_pending(late), L.queue_work(wq, late)]

    assert kernel.call(go) == [True, True, False]
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["w0", "w1", "w2"]
    msgs = messages(kernel)
    assert "workqueue: cannot queue late on wq dwq" in msgs
    assert any(m.startswith("WARNING: CPU: ") and "__queue_work" in m for m in msgs)


def test_destroy_busy_queue_reports_busy_pwq(sim: Kernel, monkeypatch) -> None:  # noqa: ANN001
    """A queue still busy at the sanity check gets Linux's busy-pwq report and is not freed."""
    rec = Recorder(sim)
    first = L.DECLARE_WORK(rec.fn("first", sleep_us=50_000))
    second = L.DECLARE_WORK(rec.fn("second"))
    box: dict = {}

    def go() -> None:
        box["wq"] = wq = L.alloc_workqueue("busyq", 0, 1)
        L.queue_work_on(0, wq, first)
        L.queue_work_on(0, wq, second)

    sim.call(go)
    sim.run_for(1)
    # What a refcounting bug looks like: the drain misses work still in flight.
    monkeypatch.setattr(sim.wq, "drain_workqueue", lambda ctx, wq: None)
    sim.call(lambda: L.destroy_workqueue(box["wq"]))
    pid = next(t.pid for t in sim.sched.tasks.values()
               if t.worker is not None and t.worker.current_work is first)
    msgs = messages(sim)
    i = msgs.index("destroy_workqueue: busyq has the following busy pwq")
    assert msgs[i - 1] == "---[ end trace 0000000000000000 ]---"
    assert msgs[i + 1:i + 8] == [
        "  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=1 refcnt=3",
        f"    in-flight: {pid}:first",
        "    inactive: second",
        "workqueue busyq: flags=0x8000",
        "  pwq 2: cpus=0 node=0 flags=0x0 nice=0 active=1 refcnt=3",
        f"    in-flight: {pid}:first",
        "    inactive: second",
    ]
    assert box["wq"] in sim.wq.workqueues


def test_system_workqueue_items_survive_queue_destruction(kernel: Kernel) -> None:
    """Items on a system workqueue are not covered by destroying one's own queue."""
    rec = Recorder(kernel)
    w = L.DECLARE_WORK(rec.fn("sys", sleep_us=1000))

    def go() -> None:
        wq = L.alloc_workqueue("mine", 0, 0)
        L.schedule_work(w)
        L.destroy_workqueue(wq)

    kernel.call(go)
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events("end") == ["sys"]


def test_destroy_does_not_cover_armed_delayed_work(sim: Kernel) -> None:
    """A delayed work still armed at destroy_workqueue fires later and is refused with a WARN."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("late"))

    def go() -> None:
        wq = L.alloc_workqueue("shortlived", 0, 0)
        L.queue_delayed_work(wq, dw, 10)
        L.destroy_workqueue(wq)

    sim.call(go)
    sim.run_until_idle()
    assert rec.log == []
    msgs = messages(sim)
    assert "workqueue: cannot queue late on wq shortlived" in msgs
    assert L.delayed_work_pending(dw)  # stuck until re-initialised
    # queued from the timer softirq by the timer function every delayed_work has
    i = msgs.index("Call Trace:")
    assert msgs[i:i + 8] == ["Call Trace:", " <IRQ>", " __queue_work", " delayed_work_timer_fn",
                             " call_timer_fn", " expire_timers", " __run_timers",
                             " run_timer_softirq"]


def test_deferrable_work_timer_is_deferrable_and_irqsafe(sim: Kernel) -> None:
    """INIT_DEFERRABLE_WORK: the timer is TIMER_DEFERRABLE|TIMER_IRQSAFE from init, on the deferrable base."""
    from bottomhalf.timer import BASE_DEF, TIMER_DEFERRABLE, TIMER_IRQSAFE

    rec = Recorder(sim)
    dw = L.delayed_work()
    L.INIT_DEFERRABLE_WORK(dw, rec.fn("dw"))
    plain = L.DECLARE_DELAYED_WORK(rec.fn("plain"))
    assert dw.timer.flags == TIMER_DEFERRABLE | TIMER_IRQSAFE
    assert plain.timer.flags == TIMER_IRQSAFE
    assert dw.timer.function is plain.timer.function is not None
    sim.call(lambda: L.queue_delayed_work(L.system_wq, dw, 3))
    assert dw.timer.base is not None and dw.timer.base.index == BASE_DEF
    sim.run_until_idle()
    assert [e[1] for e in rec.log if e[3] == "start"] == ["dw"]


def test_init_delayed_work_disarms_a_pending_timer(sim: Kernel) -> None:
    """INIT_DELAYED_WORK on an armed item takes its timer off the wheel: nothing runs."""
    rec = Recorder(sim)
    dw = L.DECLARE_DELAYED_WORK(rec.fn("old"))
    sim.call(lambda: L.queue_delayed_work(L.system_wq, dw, 10))
    sim.call(lambda: L.INIT_DELAYED_WORK(dw, rec.fn("new")))
    assert not L.timer_pending(dw.timer) and not L.delayed_work_pending(dw)
    sim.run_until_idle()
    assert rec.log == []
