"""Tasklets behave as kernel/softirq.c makes them behave (reference §4, §13.8).

Exact traces and timestamps on sim; orderings, counts and return values on
real.  Most scenarios schedule tasklets from a hard-IRQ handler, so the
tasklet runs at irq_exit on the CPU the interrupt was raised on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.errors import KernelHang, ModuleLoadError
from bottomhalf.linux import (
    DECLARE_TASKLET,
    DECLARE_TASKLET_DISABLED,
    DECLARE_TASKLET_OLD,
    IRQ_HANDLED,
    from_tasklet,
    in_serving_softirq,
    ktime_get_ns,
    local_bh_disable,
    local_bh_enable,
    mdelay,
    request_irq,
    smp_processor_id,
    tasklet_disable,
    tasklet_disable_in_atomic,
    tasklet_disable_nosync,
    tasklet_enable,
    tasklet_hi_schedule,
    tasklet_init,
    tasklet_kill,
    tasklet_schedule,
    tasklet_setup,
    tasklet_struct,
    tasklet_unlock_wait,
    udelay,
)
from bottomhalf.tasklet import TASKLET_STATE_RUN, TASKLET_STATE_SCHED

from .conftest import messages, module_path

MS = 1_000_000
IRQ = 17


def on_irq(k: Kernel, action: Callable[[], None], irq: int = IRQ) -> None:
    """Register a hard-IRQ handler on ``irq`` that calls ``action()``."""

    def handler(irq: int, dev: Any) -> int:
        action()
        return IRQ_HANDLED

    assert k.call(request_irq, irq, handler, 0, f"tl{irq}", None) == 0


def make_tasklet(k: Kernel, log: list[Any], name: str,
                 body: Callable[[tasklet_struct], None] | None = None) -> tasklet_struct:
    """A tasklet_setup() tasklet logging (now_ns, cpu, name) when it starts."""
    t = tasklet_struct()

    def cb(tl: tasklet_struct) -> None:
        log.append((k.now_ns, smp_processor_id(), name))
        if body is not None:
            body(tl)

    k.call(tasklet_setup, t, cb)
    return t


def running_on_cpu1(sim: Kernel, now_ms: float) -> tasklet_struct:
    """A tasklet that runs 0-5 ms on CPU1 (scheduled by an IRQ at 0); the clock stops at ``now_ms``."""
    t = make_tasklet(sim, [], "t", lambda tl: mdelay(5))
    on_irq(sim, lambda: tasklet_schedule(t))
    sim.raise_irq(IRQ, cpu=1)
    sim.run_for(now_ms)
    return t


def softirq_row(k: Kernel, name: str) -> list[int]:
    for line in k.read("/proc/softirqs").splitlines()[1:]:
        label, _, counts = line.partition(":")
        if label.strip() == name:
            return [int(v) for v in counts.split()]
    raise AssertionError(name)


# ----------------------------------------------------------------------
# scheduling


def test_schedules_before_it_starts_coalesce_into_one_run(kernel: Kernel) -> None:
    """Three tasklet_schedule() calls before it runs give exactly one run."""
    log: list[Any] = []
    t = make_tasklet(kernel, log, "t")
    on_irq(kernel, lambda: [tasklet_schedule(t) for _ in range(3)])
    kernel.raise_irq(IRQ, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)

    def bh_section() -> None:
        local_bh_disable()
        for _ in range(3):
            tasklet_schedule(t)
        local_bh_enable()  # runs the pending TASKLET softirq here

    kernel.call(bh_section)
    kernel.run_until_idle(timeout_ms=5000)
    assert [name for _, _, name in log] == ["t", "t"]


def test_one_pass_for_a_coalesced_schedule_on_sim(sim: Kernel) -> None:
    """On sim the coalesced run is one TASKLET softirq pass, at the IRQ's instant."""
    log: list[Any] = []
    t = make_tasklet(sim, log, "t")
    on_irq(sim, lambda: [tasklet_schedule(t) for _ in range(3)])
    sim.run_for(1)
    sim.raise_irq(IRQ, cpu=1)
    sim.run_until_idle()
    assert log == [(1 * MS, 1, "t")]
    assert softirq_row(sim, "TASKLET") == [0, 1]


def test_sched_is_cleared_before_the_callback_runs(kernel: Kernel) -> None:
    """Inside the callback SCHED is clear and RUN is set; a reschedule gives exactly one more run."""
    log: list[Any] = []
    states: list[tuple[bool, bool]] = []

    def body(tl: tasklet_struct) -> None:
        states.append((bool(tl.state & 1 << TASKLET_STATE_SCHED),
                       bool(tl.state & 1 << TASKLET_STATE_RUN)))
        if len(states) == 1:
            tasklet_schedule(tl)

    t = make_tasklet(kernel, log, "t", body)
    on_irq(kernel, lambda: tasklet_schedule(t))
    kernel.raise_irq(IRQ, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    assert states == [(False, True), (False, True)]
    assert [(cpu, name) for _, cpu, name in log] == [(0, "t"), (0, "t")]
    assert t.state == 0


def test_hi_tasklets_run_before_normal_ones_fifo(kernel: Kernel) -> None:
    """In one softirq pass HI tasklets run first; each list runs in scheduling order."""
    log: list[Any] = []
    a, b, c, d = (make_tasklet(kernel, log, n) for n in "abcd")

    def schedule_all() -> None:
        tasklet_schedule(a)
        tasklet_hi_schedule(b)
        tasklet_schedule(c)
        tasklet_hi_schedule(d)

    on_irq(kernel, schedule_all)
    kernel.raise_irq(IRQ, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert [(cpu, name) for _, cpu, name in log] == [(1, "b"), (1, "d"), (1, "a"), (1, "c")]


def test_tasklet_runs_on_the_cpu_that_scheduled_it(kernel: Kernel) -> None:
    """A tasklet runs in softirq context on the CPU whose code scheduled it."""
    seen: list[tuple[int, bool]] = []
    t = make_tasklet(kernel, [], "t",
                     lambda tl: seen.append((smp_processor_id(), in_serving_softirq())))
    on_irq(kernel, lambda: tasklet_schedule(t))
    for cpu in (1, 0, 1):
        kernel.raise_irq(IRQ, cpu=cpu)
        kernel.run_until_idle(timeout_ms=5000)
    kernel.call(tasklet_schedule, t, cpu=1)  # process context: ksoftirqd/1 runs it
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [(1, True), (0, True), (1, True), (1, True)]


# ----------------------------------------------------------------------
# RUN: never on two CPUs at once


def test_scheduled_on_cpu1_while_running_on_cpu0_waits_its_turn(sim: Kernel) -> None:
    """Running 0-5 ms on CPU0, scheduled on CPU1 at 1 ms: CPU1 retries and runs it 5-10 ms."""
    log: list[Any] = []

    def body(tl: tasklet_struct) -> None:
        mdelay(5)
        log.append((sim.now_ns, smp_processor_id(), "end"))

    t = make_tasklet(sim, log, "start", body)
    on_irq(sim, lambda: tasklet_schedule(t))
    sim.write("/sys/kernel/tracing/set_event", "irq:softirq_entry irq:tasklet_entry "
                                               "irq:tasklet_exit")
    sim.raise_irq(IRQ, cpu=0)
    sim.run_for(1)
    sim.raise_irq(IRQ, cpu=1)
    sim.run_until_idle()
    assert log == [(0, 0, "start"), (5 * MS, 0, "end"), (5 * MS, 1, "start"),
                   (10 * MS, 1, "end")]
    events = []
    for line in sim.trace.lines():
        head, event = line.split(": ", 2)[:2]
        comm_pid, cpu, _flags, ts = head.split()
        step = (comm_pid.rsplit("-", 1)[0], cpu, ts, event)
        if events and events[-1][0] == step:
            events[-1][1] += 1
        else:
            events.append([step, 1])
    # CPU1 finds it RUNning: irq_exit retries 10 times (MAX_SOFTIRQ_RESTART), then
    # ksoftirqd/1 10 times more and sleeps until CPU0's run ends (Linux's would poll).
    assert events == [
        [("<idle>", "[000]", "0.000000", "softirq_entry"), 1],
        [("<idle>", "[000]", "0.000000", "tasklet_entry"), 1],
        [("<idle>", "[001]", "0.001000", "softirq_entry"), 10],
        [("ksoftirqd/1", "[001]", "0.001000", "softirq_entry"), 10],
        [("<idle>", "[000]", "0.005000", "tasklet_exit"), 1],
        [("ksoftirqd/1", "[001]", "0.005000", "softirq_entry"), 1],
        [("ksoftirqd/1", "[001]", "0.005000", "tasklet_entry"), 1],
        [("ksoftirqd/1", "[001]", "0.010000", "tasklet_exit"), 1],
    ]
    assert softirq_row(sim, "TASKLET") == [1, 21]


def test_tasklet_never_runs_on_two_cpus_at_once_under_stress(real: Kernel) -> None:
    """Two threads scheduling it on CPU0 and CPU1 in a loop: no overlap, every run counted."""
    lock = threading.Lock()
    state = {"running": 0, "overlap": 0, "runs": 0}

    def body(tl: tasklet_struct) -> None:
        with lock:
            state["running"] += 1
            state["runs"] += 1
            if state["running"] > 1:
                state["overlap"] += 1
        udelay(200)
        with lock:
            state["running"] -= 1

    t = make_tasklet(real, [], "t", body)
    on_irq(real, lambda: tasklet_schedule(t))
    rounds = 300

    def hammer(cpu: int) -> None:
        for _ in range(rounds):
            real.raise_irq(IRQ, cpu=cpu)

    threads = [threading.Thread(target=hammer, args=(cpu,)) for cpu in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    real.run_until_idle(timeout_ms=10000)
    assert state["overlap"] == 0
    assert 1 <= state["runs"] <= 2 * rounds
    assert t.state == 0


# ----------------------------------------------------------------------
# disable / enable


def test_disabled_tasklet_stays_queued_and_runs_after_enable(kernel: Kernel) -> None:
    """Scheduled while disabled it does not run; tasklet_enable lets the next pass run it once."""
    log: list[Any] = []
    t = make_tasklet(kernel, log, "t")
    kernel.call(tasklet_disable, t)
    on_irq(kernel, lambda: tasklet_schedule(t))
    kernel.raise_irq(IRQ, cpu=1)
    kernel.run_for(50)
    assert log == [] and t.state & 1 << TASKLET_STATE_SCHED
    kernel.call(tasklet_enable, t)
    kernel.run_until_idle(timeout_ms=5000)
    assert [(cpu, name) for _, cpu, name in log] == [(1, "t")]


def test_disabled_tasklet_runs_at_the_next_pass_on_sim(sim: Kernel) -> None:
    """On sim: scheduled at 1 ms while disabled, enabled at 50 ms, it runs at 50 ms."""
    log: list[Any] = []
    t = make_tasklet(sim, log, "t")
    sim.call(tasklet_disable_nosync, t)
    on_irq(sim, lambda: tasklet_schedule(t))
    sim.run_for(1)
    sim.raise_irq(IRQ, cpu=1)
    sim.run_for(49)
    sim.call(tasklet_enable, t)
    sim.run_until_idle()
    assert log == [(50 * MS, 1, "t")]


def test_tasklet_enable_does_not_schedule(kernel: Kernel) -> None:
    """Enabling a tasklet that was never scheduled runs nothing."""
    log: list[Any] = []
    t = make_tasklet(kernel, log, "t")
    kernel.call(tasklet_disable, t)
    kernel.call(tasklet_enable, t)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == [] and t.count == 0


def test_declare_tasklet_disabled_starts_disabled(kernel: Kernel) -> None:
    """DECLARE_TASKLET_DISABLED gives count 1: it runs only after tasklet_enable."""
    log: list[Any] = []
    t = DECLARE_TASKLET_DISABLED(lambda tl: log.append("ran"))
    assert t.count == 1
    on_irq(kernel, lambda: tasklet_schedule(t))
    kernel.raise_irq(IRQ, cpu=0)
    kernel.run_for(20)
    assert log == []
    kernel.call(tasklet_enable, t)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == ["ran"]


def test_unbalanced_tasklet_enable_warns_and_keeps_count_zero(kernel: Kernel) -> None:
    """tasklet_enable without a disable WARNs (a bottomhalf check) and the tasklet still runs."""
    log: list[Any] = []
    t = make_tasklet(kernel, log, "t")
    kernel.call(tasklet_enable, t)
    assert t.count == 0
    assert any(m.startswith("bottomhalf: tasklet_enable(") for m in messages(kernel))
    kernel.call(tasklet_schedule, t)
    kernel.run_until_idle(timeout_ms=5000)
    assert len(log) == 1


def test_tasklet_disable_waits_for_the_running_callback(sim: Kernel) -> None:
    """tasklet_disable at 1 ms on CPU0 returns at 5 ms, when the CPU1 run ends."""
    t = running_on_cpu1(sim, 1)

    def disable_then_wait() -> list[int]:
        tasklet_disable(t)
        out = [ktime_get_ns()]
        tasklet_unlock_wait(t)  # not running: returns at once
        out.append(ktime_get_ns())
        return out

    assert sim.call(disable_then_wait) == [5 * MS, 5 * MS]
    assert t.count == 1


def test_tasklet_disable_in_atomic_spins_without_sleeping(sim: Kernel) -> None:
    """With BH disabled on CPU0, tasklet_disable_in_atomic spins until the CPU1 run ends."""
    t = running_on_cpu1(sim, 2)

    def atomic_disable() -> int:
        local_bh_disable()
        tasklet_disable_in_atomic(t)
        local_bh_enable()
        return ktime_get_ns()

    assert sim.call(atomic_disable) == 5 * MS
    assert t.count == 1
    assert not any("BUG" in m for m in messages(sim))


# ----------------------------------------------------------------------
# tasklet_kill


def test_tasklet_kill_waits_for_a_pending_run(kernel: Kernel) -> None:
    """Scheduled from process context then killed: the pending run happens before kill returns."""
    log: list[Any] = []
    t = make_tasklet(kernel, log, "run")

    def schedule_and_kill() -> None:
        tasklet_schedule(t)
        tasklet_kill(t)
        log.append((0, 0, "killed"))

    kernel.call(schedule_and_kill)
    assert [name for _, _, name in log] == ["run", "killed"]
    assert t.state == 0


def test_tasklet_kill_waits_for_the_running_callback(sim: Kernel) -> None:
    """Killed at 1 ms from CPU0 while it runs 0-5 ms on CPU1: tasklet_kill returns at 5 ms."""
    t = running_on_cpu1(sim, 1)
    sim.call(tasklet_kill, t)
    assert sim.now_ns == 5 * MS and t.state == 0


def test_tasklet_kill_stops_a_self_rescheduling_tasklet(kernel: Kernel) -> None:
    """While killed, a tasklet that reschedules itself is not queued again."""
    started = threading.Event()
    runs: list[int] = []

    def body(tl: tasklet_struct) -> None:
        runs.append(smp_processor_id())
        started.set()
        mdelay(2)
        tasklet_schedule(tl)

    t = make_tasklet(kernel, [], "t", body)
    on_irq(kernel, lambda: tasklet_schedule(t))
    kernel.raise_irq(IRQ, cpu=1)
    if kernel.engine_name == "sim":
        kernel.run_for(1)
    else:
        assert started.wait(5)
    kernel.call(tasklet_kill, t, cpu=0)
    done = len(runs)
    kernel.run_for(20)
    kernel.run_until_idle(timeout_ms=5000)
    assert len(runs) == done and t.state == 0
    if kernel.engine_name == "sim":
        assert runs == [1] and kernel.now_ns == 22 * MS


def test_tasklet_kill_from_interrupt_complains_the_kernel_way(kernel: Kernel) -> None:
    """From a hard-IRQ handler: pr_notice 'Attempt to kill tasklet from interrupt', then the splat."""
    t = make_tasklet(kernel, [], "t")
    on_irq(kernel, lambda: tasklet_kill(t))
    kernel.raise_irq(IRQ, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    msgs = messages(kernel)
    i = msgs.index("Attempt to kill tasklet from interrupt")
    assert msgs[i + 1].startswith("BUG: sleeping function called from invalid context at ")
    assert msgs[i + 1].endswith("test_tasklet.py:" + msgs[i + 1].rsplit(":", 1)[1])


def test_tasklet_kill_of_a_disabled_scheduled_tasklet_is_a_reported_hang(sim: Kernel) -> None:
    """Killing a disabled, scheduled tasklet: KernelHang naming it, hung-task lines, then recovery."""
    mod = sim.insmod(module_path("tasklet_conf.py"), disable_first=1)
    sim.run_for(10)
    assert mod.module.runs == []
    with pytest.raises(KernelHang) as err:
        sim.rmmod("tasklet_conf")
    name = "conf_tasklet [tasklet_conf] (conf_tasklet_fn [tasklet_conf])"
    text = str(err.value)
    assert text.startswith("rmmod (pid ")
    assert f"tasklet_kill({name}): the tasklet is disabled and scheduled" in text
    assert "CPU0: tasklet conf_tasklet_fn [tasklet_conf] scheduled (disabled" in text
    msgs = messages(sim)
    pid = text.split("(pid ")[1].split(")")[0]
    hung = msgs.index(f"INFO: task rmmod:{pid} blocked for more than 120 seconds.")
    assert msgs[hung + 4].startswith(f"bottomhalf: rmmod is blocked in tasklet_kill({name}): "
                                     "the tasklet is disabled and scheduled")
    # Still usable: enabling the tasklet lets it run, and the unload finishes.
    sim.call(tasklet_enable, mod.module.conf_tasklet)
    sim.run_until_idle()
    assert mod.module.runs == [0]
    assert messages(sim)[-2:] == ["conf_tasklet ran on CPU0", "tasklet_conf: killed"]
    assert sim.lsmod() == []


# ----------------------------------------------------------------------
# initialisers and the 5.9 API


def test_declare_tasklet_takes_a_callback_since_5_9() -> None:
    """The old 3-argument DECLARE_TASKLET(name, func, data) fails, pointing to DECLARE_TASKLET_OLD."""
    with pytest.raises(TypeError, match="DECLARE_TASKLET_OLD"):
        DECLARE_TASKLET(lambda data: None, 1234)  # type: ignore[call-arg]


def test_module_with_the_old_declare_tasklet_fails_to_load(kernel: Kernel) -> None:
    """insmod of a pre-5.9 DECLARE_TASKLET user fails, naming DECLARE_TASKLET_OLD; nothing stays."""
    with pytest.raises(ModuleLoadError, match=r"use DECLARE_TASKLET_OLD\(func\)"):
        kernel.insmod(module_path("old_declare_tasklet.py"))
    assert kernel.lsmod() == []
    kernel.run_until_idle(timeout_ms=5000)
    assert not any(m.startswith("old tasklet data") for m in messages(kernel))


def test_initialisers_pass_what_linux_passes(kernel: Kernel) -> None:
    """tasklet_setup/DECLARE_TASKLET callbacks get the tasklet; tasklet_init/_OLD funcs get data."""
    got: list[Any] = []

    class Dev:
        def __init__(self) -> None:
            self.tl = tasklet_struct()

    dev = Dev()
    declared = DECLARE_TASKLET(lambda tl: got.append(("declared", tl)))
    old = DECLARE_TASKLET_OLD(lambda data: got.append(("old", data)))
    inited = tasklet_struct()
    kernel.call(tasklet_init, inited, lambda data: got.append(("init", data)), 1234)
    kernel.call(tasklet_setup, dev.tl, lambda tl: got.append(("setup", from_tasklet(Dev, tl,
                                                                                     "tl"))))
    on_irq(kernel, lambda: [tasklet_schedule(x) for x in (declared, old, inited, dev.tl)])
    kernel.raise_irq(IRQ, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    assert got == [("declared", declared), ("old", 0), ("init", 1234), ("setup", dev)]


# ----------------------------------------------------------------------
# tracepoints


def test_tasklet_tracepoints_name_module_symbols(kernel: Kernel) -> None:
    """irq:tasklet_entry/exit print 'tasklet=%ps function=%ps' with 'name [module]' symbols."""
    kernel.write("/sys/kernel/tracing/set_event", "irq:tasklet_entry irq:tasklet_exit")
    kernel.insmod(module_path("tasklet_conf.py"))
    kernel.run_until_idle(timeout_ms=5000)
    kernel.rmmod("tasklet_conf")
    body = "tasklet=conf_tasklet [tasklet_conf] function=conf_tasklet_fn [tasklet_conf]"
    lines = kernel.trace.lines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        f"tasklet_entry: {body}", f"tasklet_exit: {body}"]
    if kernel.engine_name == "sim":
        pid = kernel.sched.find("ksoftirqd/0")[0].pid
        prefix = f"     ksoftirqd/0-{pid:<7d} [000] ..s..     0.000000: "
        assert lines == [prefix + f"tasklet_entry: {body}", prefix + f"tasklet_exit: {body}"]


def test_tasklet_init_on_a_queued_tasklet_warns_sched_not_set_once(sim: Kernel) -> None:
    """tasklet_init() on a tasklet still queued clears SCHED: when its turn comes,
    tasklet_clear_sched() WARN_ONCEs "tasklet SCHED state not set: func <fn>"
    and the function does not run."""
    t = tasklet_struct()
    ran: list[int] = []

    def fn(data: int) -> None:
        ran.append(data)

    def body() -> None:
        for _ in range(2):
            tasklet_init(t, fn, 0)
            L.local_bh_disable()
            tasklet_schedule(t)
            tasklet_init(t, fn, 1)
            L.local_bh_enable()

    sim.call(body)
    sim.run_until_idle()
    assert ran == []
    msgs = messages(sim)
    assert [m for m in msgs if "SCHED state" in m] == [
        f"tasklet SCHED state not set: func {fn.__name__}+0x0/0x{len(fn.__code__.co_code):x}"]
    assert msgs[msgs.index("------------[ cut here ]------------") + 1].startswith(
        "tasklet SCHED state not set")
