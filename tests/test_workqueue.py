"""Workqueue semantics (reference §13 items 1-6): queueing, non-reentrancy,
concurrency management, max_active, ordered, CPU-intensive and unbound queues."""

from __future__ import annotations

import threading

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages


class Recorder:
    """Work functions that log (time in ms, name, cpu, event) and track overlap."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.log: list[tuple[float, str, int, str]] = []
        self.running = 0
        self.max_running: dict[str, int] = {}
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.k.now_ns / 1e6

    def fn(self, name: str, burn_ms: int = 0, sleep_us: int = 0, then=None):  # noqa: ANN001
        def work_fn(work: L.work_struct) -> None:
            with self.lock:
                self.log.append((self.now(), name, L.smp_processor_id(), "start"))
                self.running += 1
                self.max_running[name] = max(self.max_running.get(name, 0), self.running)
            if burn_ms:
                L.mdelay(burn_ms)
            if sleep_us:
                L.usleep_range(sleep_us, sleep_us)
            if then is not None:
                then(work)
            with self.lock:
                self.running -= 1
                self.log.append((self.now(), name, L.smp_processor_id(), "end"))

        work_fn.__name__ = name
        return work_fn

    def events(self, what: str = "start") -> list[str]:
        return [n for _, n, _, e in self.log if e == what]


def test_queue_work_coalesces_pending(kernel: Kernel) -> None:
    """queue_work on a pending item returns False and the item runs once."""
    rec = Recorder(kernel)
    w = L.DECLARE_WORK(rec.fn("w"))

    def go() -> list[bool]:
        return [L.schedule_work(w), L.schedule_work(w), L.queue_work(L.system_wq, w),
                L.work_pending(w)]

    assert kernel.call(go) == [True, False, False, True]
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["w"]
    assert not L.work_pending(w)


def test_pending_cleared_before_the_function_runs(kernel: Kernel) -> None:
    """Inside its function the item is not pending; requeueing it returns True, once."""
    rec = Recorder(kernel)
    seen: list[bool] = []
    count = [0]

    def requeue(work: L.work_struct) -> None:
        seen.append(L.work_pending(work))
        count[0] += 1
        if count[0] == 1:
            seen.append(L.queue_work(L.system_wq, work))
            seen.append(L.queue_work(L.system_wq, work))

    w = L.DECLARE_WORK(rec.fn("w", burn_ms=1, then=requeue))
    kernel.call(lambda: L.schedule_work(w))
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [False, True, False, False]
    assert rec.events() == ["w", "w"]
    assert rec.max_running["w"] == 1


def test_non_reentrant_across_cpus(sim: Kernel) -> None:
    """Queued on CPU 1 while running on CPU 0, the item runs again on CPU 0 afterwards."""
    rec = Recorder(sim)
    w = L.DECLARE_WORK(rec.fn("w", burn_ms=10))
    sim.call(lambda: L.queue_work_on(0, L.system_wq, w), cpu=0)
    sim.run_for(5)
    assert sim.call(lambda: L.queue_work_on(1, L.system_wq, w), cpu=1) is True
    sim.run_until_idle()
    assert [(t, cpu, e) for t, _, cpu, e in rec.log] == [
        (0.0, 0, "start"), (10.0, 0, "end"), (10.0, 0, "start"), (20.0, 0, "end")]


def test_non_reentrant_on_real(real: Kernel) -> None:
    """On real threads an item requeued on another CPU never overlaps itself."""
    rec = Recorder(real)
    w = L.DECLARE_WORK(rec.fn("w", burn_ms=20))
    real.call(lambda: L.queue_work_on(0, L.system_wq, w))
    for _ in range(50):
        if rec.log:
            break
        real.run_for(2)
    real.call(lambda: L.queue_work_on(1, L.system_wq, w), cpu=1)
    real.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["w", "w"]
    assert rec.max_running["w"] == 1


def test_max_active_gates_and_activates_in_order(kernel: Kernel) -> None:
    """Over max_active, items wait inactive (congested) and start in queueing order."""
    rec = Recorder(kernel)
    works = [L.DECLARE_WORK(rec.fn(f"w{i}", sleep_us=2000)) for i in range(4)]

    def go() -> list[bool]:
        wq = L.alloc_workqueue("gate", 0, 2)
        for w in works:
            L.queue_work_on(0, wq, w)
        return [L.workqueue_congested(0, wq), L.workqueue_congested(1, wq)]

    assert kernel.call(go) == [True, False]
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == ["w0", "w1", "w2", "w3"]
    assert rec.max_running["w3"] <= 2


def test_max_active_exact_on_sim(sim: Kernel) -> None:
    """With max_active 2 the third item starts when the first finishes."""
    rec = Recorder(sim)
    works = [L.DECLARE_WORK(rec.fn(f"w{i}", sleep_us=10_000)) for i in range(3)]

    def go() -> None:
        wq = L.alloc_workqueue("gate", 0, 2)
        for w in works:
            L.queue_work_on(0, wq, w)

    sim.call(go)
    sim.run_until_idle()
    assert [(t, n, e) for t, n, _, e in rec.log] == [
        (0.0, "w0", "start"), (0.0, "w1", "start"), (10.0, "w0", "end"), (10.0, "w1", "end"),
        (10.0, "w2", "start"), (20.0, "w2", "end")]


def test_max_active_is_per_cpu_for_bound_and_global_for_unbound(sim: Kernel) -> None:
    """max_active 1: a bound queue runs one item per CPU, an unbound one one in all."""
    rec = Recorder(sim)
    b = [L.DECLARE_WORK(rec.fn(f"b{i}", sleep_us=10_000)) for i in range(2)]
    u = [L.DECLARE_WORK(rec.fn(f"u{i}", sleep_us=10_000)) for i in range(2)]

    def go() -> None:
        bound = L.alloc_workqueue("bound", 0, 1)
        unbound = L.alloc_workqueue("unbound", L.WQ_UNBOUND, 1)
        L.queue_work_on(0, bound, b[0])
        L.queue_work_on(1, bound, b[1])
        L.queue_work_on(0, unbound, u[0])
        L.queue_work_on(1, unbound, u[1])

    sim.call(go)
    sim.run_until_idle()
    starts = {n: t for t, n, _, e in rec.log if e == "start"}
    assert starts == {"b0": 0.0, "b1": 0.0, "u0": 0.0, "u1": 10.0}


def test_default_and_clamped_max_active(kernel: Kernel) -> None:
    """max_active 0 means 1024; out of range is clamped to [1, 2048] with Linux's message."""
    def go() -> list[int]:
        return [L.alloc_workqueue("dfl", 0, 0).max_active,
                L.alloc_workqueue("big", 0, 5000).max_active,
                L.alloc_workqueue("neg", L.WQ_UNBOUND, -3).max_active]

    assert kernel.call(go) == [1024, 2048, 1]
    assert [m for m in messages(kernel) if "max_active" in m] == [
        "workqueue: max_active 5000 requested for big is out of range, clamping between 1 and 2048",
        "workqueue: max_active -3 requested for neg is out of range, clamping between 1 and 2048",
    ]


def test_set_max_active_activates_waiting_items(sim: Kernel) -> None:
    """Raising max_active starts inactive items at once; ordered queues refuse with a WARN."""
    rec = Recorder(sim)
    works = [L.DECLARE_WORK(rec.fn(f"w{i}", sleep_us=10_000)) for i in range(3)]
    box = {}

    def go() -> None:
        box["wq"] = wq = L.alloc_workqueue("grow", 0, 1)
        for w in works:
            L.queue_work_on(0, wq, w)

    sim.call(go)
    sim.run_for(2)
    sim.call(lambda: L.workqueue_set_max_active(box["wq"], 3))
    sim.run_until_idle()
    assert {n: t for t, n, _, e in rec.log if e == "start"} == {"w0": 0.0, "w1": 2.0, "w2": 2.0}
    sim.call(lambda: L.workqueue_set_max_active(L.alloc_ordered_workqueue("ord", 0), 4))
    assert any(m.startswith("WARNING:") and "workqueue_set_max_active" in m
               for m in messages(sim))


def test_ordered_queue_runs_one_at_a_time_in_order(kernel: Kernel) -> None:
    """An ordered queue runs its items one at a time in queueing order, from any CPU."""
    rec = Recorder(kernel)
    works = [L.DECLARE_WORK(rec.fn(f"w{i}", sleep_us=1000)) for i in range(6)]
    box = {}
    kernel.call(lambda: box.setdefault("wq", L.alloc_ordered_workqueue("ord", 0)))
    for i, w in enumerate(works):
        kernel.call(lambda w=w: L.queue_work(box["wq"], w), cpu=i % 2)
    kernel.run_until_idle(timeout_ms=5000)
    assert rec.events() == [f"w{i}" for i in range(6)]
    assert max(rec.max_running.values()) == 1


def test_unbound_items_all_get_a_worker_at_once(sim: Kernel) -> None:
    """Unbound pools have no concurrency management: every item is dispatched at once."""
    rec = Recorder(sim)
    bound = [L.DECLARE_WORK(rec.fn(f"b{i}", burn_ms=5)) for i in range(3)]
    unbound = [L.DECLARE_WORK(rec.fn(f"u{i}", burn_ms=5)) for i in range(3)]

    def go() -> None:
        for w in bound:
            L.queue_work_on(0, L.system_wq, w)

    sim.call(go)
    sim.run_until_idle()
    sim.run_for(100)
    t0 = sim.now_ns

    def go_unbound() -> None:
        for w in unbound:
            L.queue_work(L.system_unbound_wq, w)

    sim.call(go_unbound)
    sim.run_until_idle()
    assert [w.dispatch_ns // 1_000_000 for w in bound] == [0, 5, 10]
    assert [(w.dispatch_ns - t0) // 1_000_000 for w in unbound] == [0, 0, 0]


def test_cpu_intensive_items_do_not_hold_back_the_pool(sim: Kernel) -> None:
    """A WQ_CPU_INTENSIVE item leaves nr_running, so the next item is dispatched at once."""
    rec = Recorder(sim)
    a = L.DECLARE_WORK(rec.fn("a", burn_ms=5))
    b = L.DECLARE_WORK(rec.fn("b", burn_ms=5))

    def go() -> None:
        wq = L.alloc_workqueue("hot", L.WQ_CPU_INTENSIVE, 0)
        L.queue_work_on(0, wq, a)
        L.queue_work_on(0, wq, b)

    sim.call(go)
    sim.run_until_idle()
    assert (a.dispatch_ns, b.dispatch_ns) == (0, 0)
    assert [(t, n, e) for t, n, _, e in rec.log] == [
        (0.0, "a", "start"), (5.0, "a", "end"), (5.0, "b", "start"), (10.0, "b", "end")]


def test_kworker_names(sim: Kernel) -> None:
    """Workers are named kworker/0:1, kworker/0:0H, kworker/u8:0 and kworker/R-name."""
    names: dict[str, str] = {}

    def who(key: str):  # noqa: ANN202
        def fn(work: L.work_struct) -> None:
            names[key] = L.current.comm if hasattr(L, "current") else ""
            names[key] = sim.current_task().comm
        return fn

    ws = {k: L.DECLARE_WORK(who(k)) for k in ("normal", "highpri", "unbound")}

    def go() -> None:
        L.queue_work_on(0, L.system_wq, ws["normal"])
        L.queue_work_on(0, L.system_highpri_wq, ws["highpri"])
        L.queue_work(L.system_unbound_wq, ws["unbound"])
        L.alloc_workqueue("reclaimer", L.WQ_MEM_RECLAIM, 0)

    sim.call(go)
    sim.run_until_idle()
    assert names["normal"].startswith("kworker/0:")
    assert names["highpri"].startswith("kworker/0:") and names["highpri"].endswith("H")
    assert names["unbound"].startswith("kworker/u8:")
    assert [t.comm for t in sim.sched.tasks.values() if t.comm.startswith("kworker/R-")] == [
        "kworker/R-recla"]


def test_system_workqueues_have_linux_names(kernel: Kernel) -> None:
    """The system workqueues exist at boot with Linux's names and flags."""
    s = kernel.wq.system
    assert {v: s[v].name for v in s} == {
        "system_wq": "events", "system_percpu_wq": "events", "system_highpri_wq": "events_highpri",
        "system_long_wq": "events_long", "system_unbound_wq": "events_unbound",
        "system_dfl_wq": "events_unbound", "system_freezable_wq": "events_freezable",
        "system_power_efficient_wq": "events_power_efficient",
        "system_freezable_power_efficient_wq": "events_freezable_pwr_efficient",
        "system_bh_wq": "events_bh", "system_bh_highpri_wq": "events_bh_highpri"}
    assert s["system_unbound_wq"].max_active == 2048
    assert s["system_wq"].max_active == 1024
    assert s["system_bh_wq"].flags == L.WQ_BH


def test_queue_work_tracepoint_cpu_is_the_pools(sim: Kernel) -> None:
    """workqueue_queue_work prints req_cpu=8192 for queue_work and cpu=-1 for unbound pools."""
    sim.write("/sys/kernel/tracing/set_event", "workqueue:workqueue_queue_work")
    w1 = L.DECLARE_WORK(lambda w: None)
    w2 = L.DECLARE_WORK(lambda w: None)

    def go() -> None:
        L.queue_work(L.system_wq, w1)
        L.queue_work(L.system_unbound_wq, w2)

    sim.call(go, cpu=1)
    sim.run_until_idle()
    lines = [x for x in sim.read("/sys/kernel/tracing/trace").splitlines()
             if "workqueue_queue_work" in x]
    assert [x.split("workqueue=")[1] for x in lines] == [
        "events req_cpu=8192 cpu=1", "events_unbound req_cpu=8192 cpu=-1"]


def test_rescuer_and_worker_desc_helpers(sim: Kernel) -> None:
    """set_worker_desc renames the kworker's suffix; current_is_workqueue_rescuer is False."""
    seen: list[object] = []

    def fn(work: L.work_struct) -> None:
        L.set_worker_desc("disk %d", 3)
        seen.append(L.current_is_workqueue_rescuer())

    w = L.DECLARE_WORK(fn)
    sim.call(lambda: L.queue_work_on(0, L.system_wq, w))
    sim.run_until_idle()
    assert seen == [False]
    assert "kworker/0:0-disk 3 (pid" in sim.read("/sys/kernel/debug/workqueue")


def test_work_busy_pending_and_running(sim: Kernel) -> None:
    """work_busy is RUNNING while it runs, PENDING|RUNNING once requeued meanwhile."""
    seen: list[int] = []

    def fn(work: L.work_struct) -> None:
        if not seen:
            seen.append(L.work_busy(work))
            L.schedule_work(work)
            seen.append(L.work_busy(work))

    w = L.DECLARE_WORK(fn)
    sim.call(lambda: L.schedule_work(w))
    sim.run_until_idle()
    assert seen == [L.WORK_BUSY_RUNNING, L.WORK_BUSY_PENDING | L.WORK_BUSY_RUNNING]
    assert sim.call(lambda: L.work_busy(w)) == 0


def test_highpri_pool_is_independent(sim: Kernel) -> None:
    """A highpri item is dispatched at once, while the normal pool's second item waits.

    The CPU is still shared in turn: n0 burns 0-5 ms, the highpri worker (woken
    at 0) runs when n0's worker yields after its item, and n1 gets a worker at 10.
    """
    rec = Recorder(sim)
    normal = [L.DECLARE_WORK(rec.fn(f"n{i}", burn_ms=5)) for i in range(2)]
    high = L.DECLARE_WORK(rec.fn("h", burn_ms=5))

    def go() -> None:
        for w in normal:
            L.queue_work_on(0, L.system_wq, w)
        L.queue_work_on(0, L.system_highpri_wq, high)

    sim.call(go)
    sim.run_until_idle()
    assert [w.dispatch_ns // 1_000_000 for w in (*normal, high)] == [0, 10, 0]


def test_bh_work_queued_for_another_cpu_runs_there(kernel: Kernel) -> None:
    """queue_work_on(1, system_bh_wq) from CPU 0 runs in CPU 1's softirq (via irq_work)."""
    cpus: list[int] = []
    w = L.DECLARE_WORK(lambda work: cpus.append(L.smp_processor_id()))
    kernel.call(lambda: L.queue_work_on(1, L.system_bh_wq, w), cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    assert cpus == [1]


def test_trace_of_one_item_exact(sim: Kernel) -> None:
    """queue, activate, execute_start/end trace lines, in order, from the right contexts."""
    sim.run_for(10)
    sim.write("/sys/kernel/tracing/events/workqueue/enable", "1")
    w = L.DECLARE_WORK(lambda work: L.udelay(15))
    w.func.__name__ = "traced_fn"
    sim.call(lambda: L.queue_work_on(1, L.system_wq, w), cpu=1)
    sim.run_until_idle()
    lines = [x for x in sim.read("/sys/kernel/tracing/trace").splitlines() if not x.startswith("#")]
    ptr = sim.symbols.pointer(w)
    assert [x.split("] ", 1)[1][6:] for x in lines] == [
        f"    0.010000: workqueue_queue_work: work struct={ptr} function=traced_fn "
        "workqueue=events req_cpu=1 cpu=1",
        f"    0.010000: workqueue_activate_work: work struct {ptr} function=traced_fn ",
        f"    0.010000: workqueue_execute_start: work struct {ptr}: function traced_fn",
        f"    0.010015: workqueue_execute_end: work struct {ptr}: function traced_fn",
    ]
    flags = [x.split("] ", 1)[1][:5] for x in lines]
    # IRQs off and pool->lock held while queueing; a plain task when executing.
    assert [(f[0], f[2], f[3]) for f in flags] == [("d", ".", "1"), ("d", ".", "1"),
                                                   (".", ".", "."), (".", ".", ".")]
    assert [x.split("-")[0].strip() for x in lines] == ["python3", "python3", "kworker/1:0",
                                                         "kworker/1:0"]


def test_same_seed_same_run() -> None:
    """Two sim runs of the same workload give byte-identical logs and traces."""
    from .conftest import example

    outs = []
    for _ in range(2):
        with Kernel(cpus=2, engine="sim", seed=7) as k:
            k.write("/sys/kernel/tracing/set_event", "workqueue:*")
            k.insmod(example("wq_scenarios.py"), scenario="D")
            k.run_until_idle()
            k.rmmod("wq_scenarios")
            outs.append((k.dmesg(), k.read("/sys/kernel/tracing/trace")))
    assert outs[0] == outs[1]


def _wait_for_all(started: list[int], n: int) -> bool:
    """Spin (never sleep) until ``n`` items have started; False after ~2 s."""
    started.append(1)
    for _ in range(20_000):
        if len(started) >= n:
            return True
        L.udelay(100)
    return False


def test_cpu_intensive_items_run_side_by_side_on_real(real: Kernel) -> None:
    """Spinning WQ_CPU_INTENSIVE items of one CPU all get workers (hog check off)."""
    real.write("/sys/module/workqueue/parameters/cpu_intensive_thresh_us", "0")
    started: list[int] = []
    results: list[bool] = []
    works = [L.DECLARE_WORK(lambda w: results.append(_wait_for_all(started, 2)))
             for _ in range(2)]

    def go() -> None:
        wq = L.alloc_workqueue("spin", L.WQ_CPU_INTENSIVE, 0)
        for w in works:
            L.queue_work_on(0, wq, w)

    real.call(go)
    real.run_until_idle(timeout_ms=10_000)
    assert results == [True, True]


def test_unbound_items_run_side_by_side_on_real(real: Kernel) -> None:
    """Three spinning items on an unbound queue run concurrently: no concurrency management."""
    started: list[int] = []
    results: list[bool] = []
    works = [L.DECLARE_WORK(lambda w: results.append(_wait_for_all(started, 3)))
             for _ in range(3)]

    def go() -> None:
        for w in works:
            L.queue_work(L.system_unbound_wq, w)

    real.call(go)
    real.run_until_idle(timeout_ms=10_000)
    assert results == [True, True, True]


def test_move_linked_takes_the_barrier_behind_an_item_in_mid_list(sim: Kernel) -> None:
    """move_linked_works(): an item off the middle of a list brings its linked barrier, not the head."""
    from collections import deque

    from bottomhalf.workqueue import W_SCHEDULED

    a, b, bar, c = (L.work_struct() for _ in range(4))
    b.linked = True
    src, dst = deque([a, b, bar, c]), deque()
    sim.wq._move_linked(src, b, dst, W_SCHEDULED)
    assert (list(src), list(dst)) == ([a, c], [b, bar])
    assert bar.state == b.state == W_SCHEDULED


def test_worker_desc_keeps_31_characters(sim: Kernel) -> None:
    """set_worker_desc fills a WORKER_DESC_LEN (32) buffer: 31 characters and the NUL."""
    desc = "0123456789abcdefghijklmnopqrstuvwxyz"
    w = L.DECLARE_WORK(lambda work: L.set_worker_desc("%s", desc))
    sim.call(lambda: L.queue_work_on(0, L.system_wq, w))
    sim.run_until_idle()
    assert f"kworker/0:0-{desc[:31]} (pid" in sim.read("/sys/kernel/debug/workqueue")
