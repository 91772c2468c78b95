"""Softirqs conform to Linux: vectors, per-CPU pending, irq_exit and ksoftirqd,
the restart limits, BH disabling and the counters (reference §3, §13 item 7)."""

from __future__ import annotations

import re
import threading
from typing import Any

from bottomhalf import Kernel
from bottomhalf import linux as L
from bottomhalf.linux import (
    BLOCK_SOFTIRQ,
    HI_SOFTIRQ,
    HRTIMER_SOFTIRQ,
    INIT_WORK,
    IRQ_HANDLED,
    IRQ_POLL_SOFTIRQ,
    NET_RX_SOFTIRQ,
    NET_TX_SOFTIRQ,
    NR_SOFTIRQS,
    RCU_SOFTIRQ,
    SCHED_SOFTIRQ,
    TASKLET_SOFTIRQ,
    TIMER_SOFTIRQ,
    current,
    in_serving_softirq,
    local_bh_disable,
    local_bh_enable,
    mdelay,
    raise_softirq,
    request_irq,
    schedule_work_on,
    smp_processor_id,
    tasklet_hi_schedule,
    tasklet_schedule,
    tasklet_setup,
    tasklet_struct,
    udelay,
    work_struct,
)

from .conftest import messages

MS = 1_000_000
NAMES = ["HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER",
         "RCU"]


def softirq_counts(k: Kernel) -> dict[str, list[int]]:
    """/proc/softirqs as {name: [count per CPU]}."""
    out = {}
    for line in k.read("/proc/softirqs").splitlines()[1:]:
        name, _, rest = line.partition(":")
        out[name.strip()] = [int(x) for x in rest.split()]
    return out


def trace_events(k: Kernel) -> list[tuple[str, str, str, str]]:
    """(comm-pid, cpu, flags, "event: text") of each trace line."""
    out = []
    for line in k.read("/sys/kernel/tracing/trace").splitlines():
        if line.startswith("#"):
            continue
        head, _, rest = line.partition(": ")
        fields = head.split()
        out.append((fields[0], fields[1], fields[2], rest))
    return out


def make_tasklet(fn: Any) -> tasklet_struct:
    t = tasklet_struct()
    tasklet_setup(t, fn)
    return t


def request_scheduling(k: Kernel, *tasklets: tasklet_struct) -> None:
    """IRQ 17's handler schedules ``tasklets`` in order."""
    def h(irq: int, dev: Any) -> int:
        for t in tasklets:
            tasklet_schedule(t)
        return IRQ_HANDLED

    assert k.call(request_irq, 17, h, 0, "mydev", "d") == 0


def test_ten_vectors_in_linux_order(kernel: Kernel) -> None:
    """HI_SOFTIRQ..RCU_SOFTIRQ are 0..9, and /proc/softirqs lists them in that order."""
    assert [HI_SOFTIRQ, TIMER_SOFTIRQ, NET_TX_SOFTIRQ, NET_RX_SOFTIRQ, BLOCK_SOFTIRQ,
            IRQ_POLL_SOFTIRQ, TASKLET_SOFTIRQ, SCHED_SOFTIRQ, HRTIMER_SOFTIRQ,
            RCU_SOFTIRQ] == list(range(10))
    assert NR_SOFTIRQS == 10
    assert list(softirq_counts(kernel)) == NAMES


def test_pending_vectors_run_lowest_first_at_irq_exit(kernel: Kernel) -> None:
    """Vectors raised in a handler in descending order run in ascending order at irq_exit."""
    def h(irq: int, dev: Any) -> int:
        for nr in reversed(range(NR_SOFTIRQS)):
            raise_softirq(nr)
        return IRQ_HANDLED

    kernel.call(request_irq, 17, h, 0, "mydev", "d")
    kernel.write("/sys/kernel/tracing/set_event", "irq:softirq_entry")
    kernel.raise_irq(17, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    ev = trace_events(kernel)
    assert [e[3] for e in ev] == [f"softirq_entry: vec={n} [action={NAMES[n]}]"
                                  for n in range(NR_SOFTIRQS)]
    assert {e[:2] for e in ev} == {("<idle>-0", "[001]")}
    counts = softirq_counts(kernel)
    assert all(counts[n] == [0, 1] for n in NAMES)


def test_softirq_raised_on_a_cpu_runs_on_that_cpu(kernel: Kernel) -> None:
    """Pending bits are per CPU: a tasklet scheduled in a CPU 1 interrupt runs on CPU 1."""
    seen = []
    t = make_tasklet(lambda tl: seen.append((smp_processor_id(), current.comm,
                                             in_serving_softirq())))

    def h(irq: int, dev: Any) -> int:
        tasklet_schedule(t)
        raise_softirq(NET_RX_SOFTIRQ)
        return IRQ_HANDLED

    kernel.call(request_irq, 17, h, 0, "mydev", "d")
    kernel.raise_irq(17, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [(1, "swapper/1", True)]
    counts = softirq_counts(kernel)
    assert counts["TASKLET"] == [0, 1]
    assert counts["NET_RX"] == [0, 1]


def test_raise_from_process_context_wakes_ksoftirqd(kernel: Kernel) -> None:
    """Raised outside interrupt context, the softirq runs in ksoftirqd/N of that CPU."""
    seen = []
    t = make_tasklet(lambda tl: seen.append((current.comm, smp_processor_id())))
    kernel.call(tasklet_schedule, t, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [("ksoftirqd/1", 1)]
    assert softirq_counts(kernel)["TASKLET"] == [0, 1]


def test_counts_are_action_runs_not_items(kernel: Kernel) -> None:
    """Three tasklets run by one TASKLET_SOFTIRQ pass count once in /proc/softirqs."""
    ran = []
    ts = [make_tasklet(lambda tl, n=n: ran.append(n)) for n in range(3)]

    request_scheduling(kernel, *ts)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert ran == [0, 1, 2]
    assert softirq_counts(kernel)["TASKLET"] == [1, 0]


def _self_rescheduling(k: Kernel, runs: int, busy_ms: int = 0) -> list[tuple[int, str]]:
    """A tasklet that reschedules itself until it has run ``runs`` times, each run
    busy for ``busy_ms``; raised once from IRQ 17 on CPU 0.  Returns (time, comm) per run."""
    log: list[tuple[int, str]] = []

    def fn(tl: tasklet_struct) -> None:
        log.append((k.now_ns, current.comm))
        if busy_ms:
            mdelay(busy_ms)
        if len(log) < runs:
            tasklet_schedule(tl)

    t = make_tasklet(fn)

    request_scheduling(k, t)
    k.raise_irq(17)
    k.run_until_idle(timeout_ms=5000)
    return log


def test_softirq_loop_restarts_at_most_ten_times_then_ksoftirqd(sim: Kernel) -> None:
    """irq_exit runs 10 passes; ksoftirqd/0 takes over and also runs 10 per invocation."""
    log = _self_rescheduling(sim, 25)
    assert [c for _, c in log] == ["swapper/0"] * 10 + ["ksoftirqd/0"] * 15
    assert softirq_counts(sim)["TASKLET"] == [25, 0]


def test_ksoftirqd_yields_after_ten_passes(sim: Kernel) -> None:
    """ksoftirqd also stops after 10 passes and lets a runnable task of its CPU go first
    (cond_resched; sim does not preempt on wakeup, so the kworker waits for that)."""
    log: list[str] = []
    w = work_struct()
    INIT_WORK(w, lambda work: log.append("work"))
    runs = []

    def fn(tl: tasklet_struct) -> None:
        runs.append(1)
        log.append(current.comm)
        if len(runs) == 11:
            schedule_work_on(0, w)
        if len(runs) < 25:
            tasklet_schedule(tl)

    request_scheduling(sim, make_tasklet(fn))
    sim.raise_irq(17)
    sim.run_until_idle()
    assert log == ["swapper/0"] * 10 + ["ksoftirqd/0"] * 10 + ["work"] + ["ksoftirqd/0"] * 5


def test_softirq_restart_limit_on_real(real: Kernel) -> None:
    """On real: the first pass runs at irq_exit, at most 10 there, the rest in ksoftirqd/0."""
    log = _self_rescheduling(real, 25)
    comms = [c for _, c in log]
    assert len(comms) == 25
    assert comms[0] == "swapper/0"
    n_irq = comms.count("swapper/0")
    assert n_irq <= 10
    assert comms == ["swapper/0"] * n_irq + ["ksoftirqd/0"] * (25 - n_irq)
    assert softirq_counts(real)["TASKLET"] == [25, 0]


def test_softirq_loop_stops_after_max_softirq_time(sim: Kernel) -> None:
    """Passes restart only while jiffies has not moved past MAX_SOFTIRQ_TIME (1 jiffy)."""
    log = _self_rescheduling(sim, 10, busy_ms=1)
    assert log == [(n * MS, "swapper/0") for n in range(4)] + \
                  [(n * MS, "ksoftirqd/0") for n in range(4, 10)]


def test_softirq_loop_stops_when_a_task_must_run(sim: Kernel) -> None:
    """A pass that wakes a task on this idle CPU sets need_resched: ksoftirqd takes over
    behind the woken task."""
    log: list[str] = []
    w = work_struct()
    INIT_WORK(w, lambda work: log.append(f"work {current.comm}"))

    runs = []

    def fn(tl: tasklet_struct) -> None:
        log.append(f"tasklet {current.comm}")
        runs.append(1)
        if len(runs) == 1:
            schedule_work_on(0, w)
        if len(runs) < 4:
            tasklet_schedule(tl)

    t = make_tasklet(fn)

    request_scheduling(sim, t)
    sim.raise_irq(17)
    sim.run_until_idle()
    assert log[0] == "tasklet swapper/0"
    assert log[1].startswith("work kworker/0:")
    assert log[2:] == ["tasklet ksoftirqd/0"] * 3


def test_local_bh_enable_runs_pending_softirqs_synchronously(kernel: Kernel) -> None:
    """Raised with BH disabled, a softirq waits and runs inside local_bh_enable, in the caller."""
    log = []
    t = make_tasklet(lambda tl: log.append(("tasklet", current.comm, in_serving_softirq())))

    def body() -> None:
        local_bh_disable()
        tasklet_schedule(t)
        log.append(("before enable",))
        local_bh_enable()
        log.append(("after enable",))

    kernel.call(body)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == [("before enable",), ("tasklet", "python3", True), ("after enable",)]


def test_irq_during_bh_disabled_section_defers_softirq_to_local_bh_enable(kernel: Kernel) -> None:
    """A hard IRQ taken with BH disabled does not run softirqs at irq_exit; local_bh_enable does."""
    log = []
    t = make_tasklet(lambda tl: log.append(f"tasklet {current.comm}"))

    def h(irq: int, dev: Any) -> int:
        log.append("handler")
        tasklet_schedule(t)
        return IRQ_HANDLED

    kernel.call(request_irq, 17, h, 0, "mydev", "d")

    def body() -> None:
        local_bh_disable()
        kernel.raise_irq(17)
        log.append("irq returned")
        local_bh_enable()
        log.append("bh enabled")

    kernel.call(body)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == ["handler", "irq returned", "tasklet python3", "bh enabled"]


def test_proc_softirqs_exact_on_sim(sim: Kernel) -> None:
    """/proc/softirqs: 20 spaces, CPU%-8d per CPU, rows %12s: then ' %10u' per CPU."""
    def h(irq: int, dev: Any) -> int:
        raise_softirq(NET_RX_SOFTIRQ)
        raise_softirq(HI_SOFTIRQ)
        return IRQ_HANDLED

    sim.call(request_irq, 17, h, 0, "mydev", "d")
    sim.raise_irq(17, 0)
    sim.raise_irq(17, 1)
    sim.raise_irq(17, 1)
    assert sim.read("/proc/softirqs") == (
        "                    CPU0       CPU1       \n"
        "          HI:          1          2\n"
        "       TIMER:          0          0\n"
        "      NET_TX:          0          0\n"
        "      NET_RX:          1          2\n"
        "       BLOCK:          0          0\n"
        "    IRQ_POLL:          0          0\n"
        "     TASKLET:          0          0\n"
        "       SCHED:          0          0\n"
        "     HRTIMER:          0          0\n"
        "         RCU:          0          0\n"
    )
    stat = [line for line in sim.read("/proc/stat").splitlines() if line.startswith("softirq ")]
    assert stat == ["softirq 6 3 0 0 3 0 0 0 0 0 0"]


def test_proc_softirqs_and_stat_agree_on_both_engines(kernel: Kernel) -> None:
    """The layout holds on both engines and /proc/stat's softirq line sums /proc/softirqs."""
    t = make_tasklet(lambda tl: None)
    kernel.call(tasklet_hi_schedule, t)
    kernel.run_until_idle(timeout_ms=5000)
    text = kernel.read("/proc/softirqs")
    assert text.splitlines()[0] == " " * 20 + "CPU0       CPU1       "
    for line, name in zip(text.splitlines()[1:], NAMES, strict=True):
        assert re.fullmatch(rf"{name:>12s}:( {{1,10}}\d{{1,10}}){{2}}", line)
        assert all(len(c) == 11 for c in re.findall(r" +\d+", line.partition(":")[2]))
    counts = softirq_counts(kernel)
    per = [sum(counts[n]) for n in NAMES]
    stat = [line for line in kernel.read("/proc/stat").splitlines() if line.startswith("softirq ")]
    assert stat == ["softirq " + " ".join(str(v) for v in [sum(per), *per])]
    assert counts["HI"][0] >= 1


def test_softirqs_of_one_cpu_never_run_concurrently_on_real(real: Kernel) -> None:
    """Many threads interrupt CPU 0 and CPU 1 at once: per CPU, hard IRQs never overlap
    and softirqs never overlap; every interrupt is handled and counted."""
    lock = threading.Lock()
    inside = {"hard": [0, 0], "soft": [0, 0]}
    overlaps = []
    runs = {"hard": 0, "hi": 0, "tasklet": 0}

    def enter(kind: str, run: str) -> int:
        cpu = smp_processor_id()
        with lock:
            inside[kind][cpu] += 1
            runs[run] += 1
            if inside[kind][cpu] != 1:
                overlaps.append((kind, cpu))
        return cpu

    def leave(kind: str, cpu: int) -> None:
        with lock:
            inside[kind][cpu] -= 1

    def soft(run: str) -> Any:
        def fn(tl: tasklet_struct) -> None:
            cpu = enter("soft", run)
            udelay(30)
            leave("soft", cpu)
        return fn

    hi = [make_tasklet(soft("hi")) for _ in range(2)]
    lo = [make_tasklet(soft("tasklet")) for _ in range(2)]

    def h(irq: int, dev: Any) -> int:
        cpu = enter("hard", "hard")
        tasklet_hi_schedule(hi[cpu])
        tasklet_schedule(lo[cpu])
        raise_softirq(NET_RX_SOFTIRQ)
        udelay(10)
        leave("hard", cpu)
        return IRQ_HANDLED

    # one line per CPU: a line raised on two CPUs at once coalesces (handle_edge_irq)
    real.call(request_irq, 16, h, 0, "dev0", "d0")
    real.call(request_irq, 17, h, 0, "dev1", "d1")
    n_threads, per_thread = 6, 150
    start = threading.Barrier(n_threads)

    def raiser(cpu: int) -> None:
        start.wait()
        for _ in range(per_thread):
            real.raise_irq(16 + cpu, cpu)

    threads = [threading.Thread(target=raiser, args=(i % 2,)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    real.run_until_idle(timeout_ms=10_000)
    assert overlaps == []
    assert runs["hard"] == n_threads * per_thread
    per_cpu = n_threads // 2 * per_thread
    rows = [line.split()[:3] for line in real.read("/proc/interrupts").splitlines()[1:3]]
    assert rows == [["16:", str(per_cpu), "0"], ["17:", "0", str(per_cpu)]]
    counts = softirq_counts(real)
    for name in ("HI", "NET_RX", "TASKLET"):
        assert all(1 <= c <= per_cpu for c in counts[name]), name
    assert 2 <= runs["hi"] <= sum(counts["HI"])
    assert 2 <= runs["tasklet"] <= sum(counts["TASKLET"])


def test_an_action_that_leaks_preempt_count_is_reported_and_repaired(sim: Kernel) -> None:
    """A tasklet that returns with one more preempt_disable(): __do_softirq's
    "huh, entered softirq ..." line (KERN_ERR), then the count is restored."""
    t = L.tasklet_struct()
    seen: list[int] = []

    def leaky(data: int) -> None:
        L.preempt_disable()
        seen.append(L.preempt_count())

    def body() -> int:
        L.tasklet_init(t, leaky, 0)
        L.local_bh_disable()
        L.tasklet_schedule(t)
        L.local_bh_enable()  # runs TASKLET here, at 0x101 (serving, local_bh_enable's count)
        return L.preempt_count()

    assert sim.call(body) == 0
    assert seen == [0x102]
    (huh,) = [m for m in messages(sim) if m.startswith("huh")]
    assert re.fullmatch(r"huh, entered softirq 6 TASKLET [0-9a-f]{16} with "
                        r"preempt_count 00000101, exited with 00000102\?", huh)
