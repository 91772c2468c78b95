"""Forward progress: CPU-hog detection, worker creation and culling, mayday and
rescuers, and the lockup watchdog (reference §5.8, §5.10, §5.11)."""

from __future__ import annotations

import re

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages, unoffset
from .test_workqueue import Recorder


def test_cpu_hog_detected_at_the_tick(sim: Kernel) -> None:
    """An item burning 20 ms is marked CPU-intensive at the first tick past 10 ms."""
    sim.run_for(100)
    rec = Recorder(sim)
    hog = L.DECLARE_WORK(rec.fn("hog", burn_ms=20))
    nxt = L.DECLARE_WORK(rec.fn("nxt"))

    def go() -> None:
        L.queue_work_on(0, L.system_wq, hog)
        L.queue_work_on(0, L.system_wq, nxt)

    sim.call(go)
    sim.run_until_idle()
    assert (nxt.dispatch_ns - hog.dispatch_ns) // 1_000_000 == 12  # ticks at 4, 8, 12 ms
    # CPU time is sampled at the ticks taken while it ran: 4, 8, 12, 16 and 20 ms
    # (the tick due as the mdelay ends is taken first).
    stats = [s for s in L_monitor(sim) if s["name"] == "events"][0]
    assert (stats["cpu_intensive"], stats["cm_wakeup"], stats["cpu_time"]) == (1, 1, 20000)


def L_monitor(k: Kernel) -> list[dict]:  # noqa: N802
    from bottomhalf.wqview import monitor_stats

    return monitor_stats(k)


def test_cpu_hog_report_line(sim: Kernel) -> None:
    """The 4th, 5th and 7th hogs of a function are reported, as CONFIG_WQ_CPU_INTENSIVE_REPORT does."""
    hog = L.DECLARE_WORK(lambda w: L.mdelay(15))
    hog.func.__name__ = "hog_fn"
    for _ in range(7):
        sim.call(lambda: L.queue_work_on(0, L.system_wq, hog))
        sim.run_until_idle()
    assert [m for m in messages(sim) if "hogged" in m] == [
        f"workqueue: hog_fn hogged CPU for >10000us {n} times, consider switching to WQ_UNBOUND"
        for n in (4, 5, 7)]


def test_cpu_hog_threshold_is_a_module_parameter(sim: Kernel) -> None:
    """Writing 0 to cpu_intensive_thresh_us turns the hog check off."""
    sim.write("/sys/module/workqueue/parameters/cpu_intensive_thresh_us", "0")
    hog = L.DECLARE_WORK(lambda w: L.mdelay(20))
    sim.call(lambda: L.queue_work_on(0, L.system_wq, hog))
    sim.run_until_idle()
    assert [s["cpu_intensive"] for s in L_monitor(sim) if s["name"] == "events"][0] == 0
    assert sim.read("/sys/module/workqueue/parameters/cpu_intensive_thresh_us") == "0\n"


def test_workers_are_created_on_demand_and_culled_when_idle(sim: Kernel) -> None:
    """Blocking items get a worker each; idle ones beyond the spare are culled after 300 s."""
    works = [L.DECLARE_WORK(lambda w: L.usleep_range(1000, 1000)) for _ in range(6)]

    def go() -> None:
        for w in works:
            L.queue_work_on(0, L.system_wq, w)

    sim.call(go)
    sim.run_until_idle()
    pool = sim.wq.cpu_pools[0][0]
    assert (pool.nr_workers, pool.nr_idle) == (7, 7)
    sim.run_for(299_000)
    assert pool.nr_workers == 7
    sim.run_for(20_000)  # the 300 s idle timer sits in a coarse wheel level: up to 16 s late
    assert pool.nr_workers == 2  # too_many_workers() stops at 2 idle


def test_rescuer_runs_mem_reclaim_items_when_workers_cannot_be_created(sim: Kernel) -> None:
    """Under memory pressure a WQ_MEM_RECLAIM item runs on its rescuer after the mayday timer."""
    sim.run_for(100)
    rec = Recorder(sim)
    r_item = L.DECLARE_WORK(rec.fn("reclaim_item"))
    p_item = L.DECLARE_WORK(rec.fn("plain_item"))
    sim.write("/sys/kernel/debug/bottomhalf/fail_worker_creation", "1")
    who: list[str] = []
    r_item.func = (lambda f: lambda w: (who.append(sim.current_task().comm), f(w)))(r_item.func)

    def go() -> None:
        L.queue_work_on(0, L.alloc_workqueue("reclaim", L.WQ_MEM_RECLAIM, 0), r_item)
        L.queue_work_on(0, L.alloc_workqueue("plain", 0, 0), p_item)

    sim.call(go)
    sim.run_for(500)
    assert [(t, n) for t, n, _, e in rec.log if e == "start"] == [(112.0, "reclaim_item")]
    assert who == ["kworker/R-recla"]
    assert "workqueue: Failed to create a worker thread: -ENOMEM" in messages(sim)
    stats = {s["name"]: s for s in L_monitor(sim)}
    assert (stats["reclaim"]["mayday"], stats["reclaim"]["rescued"]) == (1, 1)
    sim.write("/sys/kernel/debug/bottomhalf/fail_worker_creation", "0")
    sim.run_until_idle()
    assert rec.events() == ["reclaim_item", "plain_item"]


def test_rescuer_on_real(real: Kernel) -> None:
    """On real threads too, the rescuer runs a reclaim item while creation fails."""
    ran: list[str] = []
    w = L.DECLARE_WORK(lambda work: ran.append(real.current_task().comm))
    real.wq.fail_worker_creation = True
    real.call(lambda: L.queue_work_on(0, L.alloc_workqueue("rq", L.WQ_MEM_RECLAIM, 0), w))
    real.run_until_idle(timeout_ms=5000)
    assert ran == ["kworker/R-rq"]
    real.wq.fail_worker_creation = False


def test_watchdog_reports_a_stalled_pool(sim: Kernel) -> None:
    """A pool stuck for 30 s gets Linux's lockup line and the busy dump."""
    sim.run_for(100)
    w = L.DECLARE_WORK(lambda work: None)
    w.func.__name__ = "stuck_fn"
    sim.wq.fail_worker_creation = True
    sim.call(lambda: L.queue_work_on(0, L.system_wq, w))
    sim.run_for(40_000)
    msgs = [line for line in sim.dmesg() if "lockup" in line or "    pending" in line]
    assert msgs == [
        "[   31.712000] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x2 nice=0 stuck for 31s!",
        "[   31.712000]     pending: stuck_fn",
    ]
    m = messages(sim)
    i = m.index("Showing busy workqueues and worker pools:")
    assert m[i + 1:i + 5] == [
        "workqueue events: flags=0x0",
        "  pwq 2: cpus=0 node=0 flags=0x2 nice=0 active=1 refcnt=2",
        "    pending: stuck_fn",
        f"pool 2: cpus=0 node=0 flags=0x2 nice=0 hung=31s workers=1 manager: "
        f"{sim.wq.cpu_pools[0][0].workers[0].task.pid}",
    ]
    sim.wq.fail_worker_creation = False
    sim.run_until_idle()


def test_panic_on_stall_bugs_at_the_nth_stall_report(sim: Kernel) -> None:
    """panic_on_stall=2: the second stall report ends in BUG(); in the timer
    softirq Linux would panic, this kernel says so and keeps running."""
    p = "/sys/module/workqueue/parameters/panic_on_stall"
    assert sim.read(p) == "0\n"
    sim.write(p, "2")
    ticks = [0]

    def tick(work: L.work_struct) -> None:
        # BH work needs no kworker: the watchdog sees progress and re-arms
        if ticks[0] < 40:
            ticks[0] += 1
            L.queue_delayed_work(L.system_bh_wq, dw, L.HZ)

    dw = L.delayed_work()
    L.INIT_DELAYED_WORK(dw, tick)
    w = L.DECLARE_WORK(lambda work: None)
    w.func.__name__ = "stuck_fn"
    sim.call(lambda: L.queue_delayed_work(L.system_bh_wq, dw, L.HZ))
    sim.wq.fail_worker_creation = True
    sim.call(lambda: L.queue_work_on(1, L.system_wq, w))
    sim.run_for(70_000)
    m = messages(sim)
    assert [x for x in m if "lockup" in x] == [
        "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x2 nice=0 stuck for 31s!",
        "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x2 nice=0 stuck for 62s!",
    ]
    i = m.index("------------[ cut here ]------------")
    assert m[i - 1] == ("Showing backtraces of running workers in stalled CPU-bound "
                        "worker pools:")
    assert re.sub(r":\d+!$", ":N!", m[i + 1]) == "kernel BUG at bottomhalf/wqwatchdog.py:N!"
    assert unoffset(m[i + 2:i + 9]) == [
        "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        "CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Not tainted 6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        "RIP: 0010:panic_on_wq_watchdog+0x?/0x?",
        "Call Trace:",
        " <IRQ>",
        " panic_on_wq_watchdog",
    ]
    assert m[i + 9] == " wq_watchdog_timer_fn"
    assert m[-2:] == [
        "---[ end trace 0000000000000000 ]---",
        "bottomhalf: Linux would now panic (Kernel panic - not syncing: Fatal exception "
        "in interrupt); this kernel keeps running",
    ]
    assert [x for x in sim.dmesg() if "kernel BUG" in x][0].startswith("[   62.432000] ")
    sim.wq.fail_worker_creation = False
    sim.run_until_idle()


def test_watchdog_thresh_is_settable(sim: Kernel) -> None:
    """watchdog_thresh reads 30; writing 5 reports after 5 s, writing 0 disables it."""
    p = "/sys/module/workqueue/parameters/watchdog_thresh"
    assert sim.read(p) == "30\n"
    sim.write(p, "5")
    w = L.DECLARE_WORK(lambda work: None)
    sim.wq.fail_worker_creation = True
    sim.call(lambda: L.queue_work_on(1, L.system_wq, w))
    sim.run_for(8_000)
    lines = [x for x in sim.dmesg() if "lockup" in x]
    assert lines == ["[    5.088000] BUG: workqueue lockup - pool cpus=1 node=0 flags=0x2 nice=0 "
                     "stuck for 5s!"]
    sim.write(p, "0")
    sim.run_for(20_000)
    assert len([x for x in sim.dmesg() if "lockup" in x]) == 1
    sim.wq.fail_worker_creation = False
    sim.run_until_idle()
