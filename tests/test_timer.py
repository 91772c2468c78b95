"""jiffies, timer_list and the wheel, sleeping and busy-waiting (reference §7).

Exact timestamps (ns since boot) on sim; returns, orderings and counts on real.
At boot jiffies is J0 = INITIAL_JIFFIES and jiffy J0 + n starts at n * 4 ms.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bottomhalf import Kernel
from bottomhalf.linux import (
    HZ,
    INIT_DELAYED_WORK,
    IRQ_HANDLED,
    TASK_INTERRUPTIBLE,
    TIMER_IRQSAFE,
    add_timer,
    add_timer_on,
    del_timer,
    del_timer_sync,
    delayed_work,
    from_timer,
    in_interrupt,
    in_serving_softirq,
    in_task,
    irqs_disabled,
    jiffies,
    jiffies_to_msecs,
    ktime_get_ns,
    local_bh_disable,
    local_bh_enable,
    mdelay,
    mod_timer,
    msecs_to_jiffies,
    msleep,
    ndelay,
    preempt_disable,
    request_irq,
    schedule_delayed_work,
    schedule_timeout,
    set_current_state,
    smp_processor_id,
    tasklet_schedule,
    tasklet_setup,
    tasklet_struct,
    time_after,
    time_after_eq,
    time_before,
    time_before_eq,
    timer_delete_sync,
    timer_list,
    timer_pending,
    timer_setup,
    timer_shutdown_sync,
    udelay,
    usecs_to_jiffies,
    usleep_range,
    wake_up_process,
)
from bottomhalf.timer import INITIAL_JIFFIES, MAX_JIFFY_OFFSET

from .conftest import messages

J0 = INITIAL_JIFFIES
MS = 1_000_000


def make_timer(k: Kernel, log: list[Any], name: str, flags: int = 0,
               body: Callable[[timer_list], None] | None = None) -> timer_list:
    """A timer whose callback logs (now_ns, name) and then runs ``body``."""
    t = timer_list()

    def cb(tl: timer_list) -> None:
        log.append((k.now_ns, name))
        if body is not None:
            body(tl)

    k.call(timer_setup, t, cb, flags)
    return t


def loc_row(k: Kernel) -> list[int]:
    row = [line for line in k.read("/proc/interrupts").splitlines() if line.startswith("LOC:")]
    return [int(v) for v in row[0].split()[1:1 + k.ncpus]]


# ----------------------------------------------------------------------
# jiffies and conversions


def test_initial_jiffies_wraps_32_bits_five_minutes_after_boot() -> None:
    """INITIAL_JIFFIES is 2^32 - 300*HZ and HZ is 250."""
    assert HZ == 250
    assert INITIAL_JIFFIES == 2**32 - 300 * 250 == 4294892296


def test_jiffies_count_ticks_of_4_ms(sim: Kernel) -> None:
    """jiffies starts at INITIAL_JIFFIES and steps at every 4 ms boundary."""
    seen = [sim.call(jiffies)]
    sim.run_for(3.999)
    seen.append(sim.call(jiffies))
    sim.run_for(0.001)
    seen.append(sim.call(jiffies))
    sim.run_for(1000)
    seen.append(sim.call(jiffies))
    assert seen == [J0, J0, J0 + 1, J0 + 251]


def test_jiffies_start_at_initial_value_on_real(real: Kernel) -> None:
    """On real too, jiffies starts at INITIAL_JIFFIES and never goes back."""
    a = real.call(jiffies)
    b = real.call(jiffies)
    assert J0 <= a <= b


def test_msecs_to_jiffies_rounds_up() -> None:
    """1->1, 4->1, 5->2, 10->3, 1000->250 at HZ=250; negative -> MAX_JIFFY_OFFSET."""
    assert [msecs_to_jiffies(m) for m in (0, 1, 4, 5, 8, 9, 10, 1000)] == \
        [0, 1, 1, 2, 2, 3, 3, 250]
    assert msecs_to_jiffies(-1) == MAX_JIFFY_OFFSET


def test_jiffies_to_msecs_and_usecs_to_jiffies() -> None:
    """jiffies_to_msecs multiplies by 4; usecs_to_jiffies rounds up to 4000 us units."""
    assert [jiffies_to_msecs(j) for j in (0, 1, 3, 250)] == [0, 4, 12, 1000]
    assert [usecs_to_jiffies(u) for u in (0, 1, 4000, 4001, 1_000_000)] == [0, 1, 1, 2, 250]
    assert usecs_to_jiffies(-5) == MAX_JIFFY_OFFSET


def test_time_after_and_friends_survive_the_wrap() -> None:
    """time_after & co compare as signed differences, so they survive wrap-around."""
    top = 2**64 - 5  # just before unsigned long wraps
    assert time_after(3, top) and time_before(top, 3)
    assert not time_after(top, 3) and not time_before(3, top)
    assert time_after_eq(J0, J0) and time_before_eq(J0, J0)
    assert time_after(J0 + 1, J0) and not time_after(J0, J0)
    assert time_after_eq(5, top) and not time_before_eq(5, top)


# ----------------------------------------------------------------------
# timer_list API


def test_mod_timer_returns_one_iff_it_was_pending(kernel: Kernel) -> None:
    """mod_timer: 0 when inactive, 1 when pending; del_timer likewise; timer_pending tracks it."""
    log: list[Any] = []
    t = make_timer(kernel, log, "t")

    def steps() -> list[Any]:
        j = jiffies()
        out = [timer_pending(t), mod_timer(t, j + 100), timer_pending(t),
               mod_timer(t, j + 200), mod_timer(t, j + 200), del_timer(t), timer_pending(t),
               del_timer(t), mod_timer(t, j + 1)]
        return out

    assert kernel.call(steps) == [False, 0, True, 1, 1, 1, False, 0, 0]
    kernel.run_until_idle(timeout_ms=5000)
    assert [name for _, name in log] == ["t"]
    assert kernel.call(timer_pending, t) is False
    assert kernel.call(lambda: mod_timer(t, jiffies() + 1)) == 0
    assert kernel.call(del_timer_sync, t) == 1
    assert kernel.call(timer_delete_sync, t) == 0


def test_callback_runs_in_softirq_on_the_arming_cpu(kernel: Kernel) -> None:
    """A timer callback runs in serving-softirq context on the CPU that armed it."""
    seen: list[tuple[str, int, bool, bool, bool]] = []
    timers = {}
    for cpu in (0, 1):
        name = f"cpu{cpu}"

        def body(tl: timer_list, name: str = name) -> None:
            seen.append((name, smp_processor_id(), in_serving_softirq(), in_interrupt(),
                         in_task()))

        timers[cpu] = make_timer(kernel, [], name, body=body)
        kernel.call(lambda t=timers[cpu]: mod_timer(t, jiffies() + 2), cpu=cpu)
    kernel.run_until_idle(timeout_ms=5000)
    assert sorted(seen) == [("cpu0", 0, True, True, False), ("cpu1", 1, True, True, False)]


def test_irqsafe_timer_runs_with_interrupts_off(kernel: Kernel) -> None:
    """TIMER_IRQSAFE callbacks run with local interrupts disabled, others with them on."""
    seen: dict[str, bool] = {}
    plain = make_timer(kernel, [], "plain", body=lambda t: seen.__setitem__("plain",
                                                                             irqs_disabled()))
    safe = make_timer(kernel, [], "safe", TIMER_IRQSAFE,
                      body=lambda t: seen.__setitem__("safe", irqs_disabled()))
    kernel.call(lambda: (mod_timer(plain, jiffies() + 1), mod_timer(safe, jiffies() + 1)))
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == {"plain": False, "safe": True}


class Dev:
    def __init__(self) -> None:
        self.timer = timer_list()
        self.hits = 0


def test_from_timer_finds_the_containing_struct(kernel: Kernel) -> None:
    """from_timer(var, t, field) returns the struct that embeds the timer."""
    dev = Dev()
    got: list[Any] = []

    def cb(t: timer_list) -> None:
        d = from_timer(Dev, t, "timer")
        d.hits += 1
        got.append(d)

    kernel.call(lambda: (timer_setup(dev.timer, cb, 0), mod_timer(dev.timer, jiffies() + 1)))
    kernel.run_until_idle(timeout_ms=5000)
    assert got == [dev] and dev.hits == 1


def test_add_timer_on_a_pending_timer_warns_once_and_changes_nothing(kernel: Kernel) -> None:
    """add_timer() of a pending timer: WARN_ON_ONCE, the timer keeps its expiry."""
    log: list[Any] = []
    t = make_timer(kernel, log, "t")

    def twice() -> int:
        t.expires = jiffies() + 50
        add_timer(t)
        first = t.expires
        t.expires = first + 100
        add_timer(t)
        add_timer(t)
        t.expires = first
        return first

    kernel.call(twice)
    warnings = [m for m in messages(kernel) if m.startswith("WARNING:")]
    assert len(warnings) == 1 and " add_timer+" in warnings[0]
    assert kernel.call(del_timer, t) == 1


def test_timer_shutdown_sync_makes_later_arming_a_no_op(kernel: Kernel) -> None:
    """After timer_shutdown_sync() mod_timer returns 0 and nothing runs, silently."""
    log: list[Any] = []
    t = make_timer(kernel, log, "t")
    assert kernel.call(lambda: (mod_timer(t, jiffies() + 5), timer_shutdown_sync(t))[1]) == 1
    assert kernel.call(lambda: (mod_timer(t, jiffies() + 1), timer_pending(t))) == (0, False)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == [] and not any("WARNING" in m for m in messages(kernel))


def test_preempt_leak_in_a_callback_warns_once_and_is_repaired(kernel: Kernel) -> None:
    """A callback leaking preempt_count gets call_timer_fn's WARN_ONCE; the count is restored."""
    counts: list[int] = []
    check = make_timer(kernel, [], "check",
                       body=lambda t: counts.append(kernel.current_ctx().preempt_count))
    leak = make_timer(kernel, [], "leak", body=lambda t: preempt_disable())
    again = make_timer(kernel, [], "again", body=lambda t: preempt_disable())
    for pair in ((check,), (leak, again), (check,)):
        kernel.call(lambda ts=pair: [mod_timer(t, jiffies() + 1) for t in ts])
        kernel.run_until_idle(timeout_ms=5000)
    leaks = [m for m in messages(kernel) if "preempt leak" in m]
    assert len(counts) == 2 and counts[0] == counts[1] and counts[0] & 0x100
    assert len(leaks) == 1
    assert re.fullmatch(r"timer: cb\+0x0/0x[0-9a-f]+ preempt leak: "
                        f"{counts[0]:08x} -> {counts[0] + 1:08x}", leaks[0])


# ----------------------------------------------------------------------
# the wheel, exactly (sim)


def test_level0_timer_runs_at_the_tick_after_its_expiry(sim: Kernel) -> None:
    """Due at jiffy E (< 63 ahead): runs at the tick that makes jiffies E+1, never early."""
    log: list[Any] = []
    deltas = (0, 1, 5, 62, -3)
    ts = {d: make_timer(sim, log, f"+{d}") for d in deltas}
    sim.call(lambda: [mod_timer(ts[d], jiffies() + d) for d in deltas])
    sim.run_until_idle()
    assert log == [(4 * MS, "+-3"), (4 * MS, "+0"), (8 * MS, "+1"), (24 * MS, "+5"),
                   (252 * MS, "+62")]


def test_arming_mid_jiffy_does_not_change_the_tick(sim: Kernel) -> None:
    """A timer armed 3.5 ms into jiffy J0 for J0+5 still runs at 24 ms."""
    log: list[Any] = []
    t = make_timer(sim, log, "t")
    sim.run_for(3.5)
    sim.call(lambda: mod_timer(t, J0 + 5))
    sim.run_until_idle()
    assert log == [(24 * MS, "t")]


def test_longer_timeouts_round_up_to_their_level(sim: Kernel) -> None:
    """63..503 jiffies ahead: next multiple of 8 after expiry; 504 and on: of 64; cap at the wheel's end."""
    log: list[Any] = []
    deltas = (63, 100, 503, 504, 2**40)
    ts = {d: make_timer(sim, log, f"+{d}") for d in deltas}
    sim.call(lambda: [mod_timer(ts[d], jiffies() + d) for d in deltas])
    sim.run_until_idle(timeout_ms=5e12)
    assert log == [(256 * MS, "+63"), (416 * MS, "+100"), (2016 * MS, "+503"),
                   (2272 * MS, "+504"), (1040262392 * 4 * MS, f"+{2**40}")]


def test_order_within_one_tick(sim: Kernel) -> None:
    """Same tick: pinned base first, then the higher level, then the newest of a bucket first."""
    log: list[Any] = []
    lvl1 = make_timer(sim, log, "level1")
    x, y, pinned = (make_timer(sim, log, n) for n in ("x", "y", "pinned"))
    sim.call(lambda: mod_timer(lvl1, J0 + 63))  # 63 ahead: level 1, bucket J0+64
    sim.run_for(4)

    def arm_level0() -> None:  # 62 ahead now: level 0, bucket J0+64 too
        mod_timer(x, J0 + 63)
        mod_timer(y, J0 + 63)
        pinned.expires = J0 + 63
        add_timer_on(pinned, 0)

    sim.call(arm_level0)
    sim.run_until_idle()
    assert log == [(256 * MS, "pinned"), (256 * MS, "level1"), (256 * MS, "y"), (256 * MS, "x")]


def test_mod_timer_within_the_same_bucket_keeps_its_place(sim: Kernel) -> None:
    """mod_timer to an expiry in the same bucket returns 1 and leaves the queue order alone."""
    log: list[Any] = []
    a, b = make_timer(sim, log, "a"), make_timer(sim, log, "b")
    c, d = make_timer(sim, log, "c"), make_timer(sim, log, "d")

    def arm() -> list[int]:
        rets = [mod_timer(a, J0 + 64), mod_timer(b, J0 + 64), mod_timer(a, J0 + 70)]
        rets += [mod_timer(c, J0 + 64), mod_timer(d, J0 + 64), mod_timer(c, J0 + 100),
                 mod_timer(c, J0 + 64)]
        return rets

    assert sim.call(arm) == [0, 0, 1, 0, 0, 1, 1]
    sim.run_until_idle()
    assert log == [(288 * MS, "c"), (288 * MS, "d"), (288 * MS, "b"), (288 * MS, "a")]
    assert a.expires == J0 + 70


def test_timer_rearmed_from_its_callback_sees_clk_one_ahead(sim: Kernel) -> None:
    """While callbacks run base->clk is jiffies+1, so +63 from a callback stays on level 0."""
    log: list[Any] = []
    later = make_timer(sim, log, "later")
    first = make_timer(sim, log, "first", body=lambda t: mod_timer(later, jiffies() + 63))
    sim.call(lambda: mod_timer(first, J0))
    sim.run_until_idle()
    assert log == [(4 * MS, "first"), (260 * MS, "later")]


def test_del_timer_from_an_earlier_callback_of_the_same_tick(sim: Kernel) -> None:
    """Timers collected for a tick stay pending until their turn: del_timer removes one."""
    log: list[Any] = []
    rets: list[int] = []
    a = make_timer(sim, log, "a")
    b = make_timer(sim, log, "b", body=lambda t: rets.append(del_timer(a)))
    sim.call(lambda: (mod_timer(a, J0 + 5), mod_timer(b, J0 + 5)))
    sim.run_until_idle()
    assert log == [(24 * MS, "b")] and rets == [1]


def test_softirq_expires_buckets_that_came_due_during_a_long_callback(sim: Kernel) -> None:
    """A callback busy for 10 ms: the next bucket runs right after it, in the same pass."""
    log: list[Any] = []
    slow = make_timer(sim, log, "slow", body=lambda t: mdelay(10))
    nxt = make_timer(sim, log, "next")
    sim.call(lambda: (mod_timer(slow, J0), mod_timer(nxt, J0 + 1)))
    sim.run_until_idle()
    assert log == [(4 * MS, "slow"), (14 * MS, "next")]


# ----------------------------------------------------------------------
# sleeping


def test_msleep_sleeps_msecs_to_jiffies_plus_one_on_the_wheel(sim: Kernel) -> None:
    """msleep(10) = 3+1 jiffies, due at the 5th tick: 20 ms at a tick, 16.001 ms just before one."""

    def timed_msleep() -> int:
        t0 = ktime_get_ns()
        msleep(10)
        return ktime_get_ns() - t0

    assert sim.call(timed_msleep) == 20 * MS
    sim.run_for(3.999)
    assert sim.now_ns == 23_999_000
    assert sim.call(timed_msleep) == 16_001_000
    assert sim.now_ns == 40 * MS


def test_schedule_timeout_returns_the_jiffies_left(sim: Kernel) -> None:
    """Woken early, schedule_timeout returns expire - jiffies; run to the end, 0."""
    results: list[tuple[int, int]] = []

    def sleeper(_: Any) -> int:
        set_current_state(TASK_INTERRUPTIBLE)
        results.append((schedule_timeout(10), ktime_get_ns()))
        set_current_state(TASK_INTERRUPTIBLE)
        results.append((schedule_timeout(2), ktime_get_ns()))
        results.append((schedule_timeout(7), ktime_get_ns()))  # TASK_RUNNING: no sleep
        return 0

    task = sim.sched.kthread_run(lambda: sleeper(None), "sleeper", 0)
    waker = make_timer(sim, [], "waker", body=lambda t: wake_up_process(task))
    sim.call(lambda: mod_timer(waker, J0 + 3), cpu=1)
    sim.run_until_idle()
    assert results == [(6, 16 * MS), (0, 28 * MS), (7, 28 * MS)]


def test_schedule_timeout_on_real_returns_zero_when_it_times_out(real: Kernel) -> None:
    """On real, a full schedule_timeout returns 0 and one woken early returns > 0."""

    def full() -> int:
        set_current_state(TASK_INTERRUPTIBLE)
        return schedule_timeout(2)

    assert real.call(full) == 0
    left: list[int] = []
    started = threading.Event()

    def sleeper() -> None:
        set_current_state(TASK_INTERRUPTIBLE)
        started.set()
        left.append(schedule_timeout(10 * HZ))

    task = real.sched.kthread_run(sleeper, "sleeper", 0)
    assert started.wait(5)
    real.call(wake_up_process, task)  # asleep or about to be: either way it returns early
    real.run_until_idle(timeout_ms=5000)
    assert len(left) == 1 and 0 < left[0] <= 10 * HZ


def test_usleep_range_wakes_at_max_when_nothing_else_happens(sim: Kernel) -> None:
    """usleep_range(1000, 3000) alone: the hrtimer fires at exactly +3 ms, one LOC interrupt."""

    def nap() -> int:
        t0 = ktime_get_ns()
        usleep_range(1000, 3000)
        return ktime_get_ns() - t0

    sim.run_for(1.5)
    assert sim.call(nap) == 3 * MS
    assert loc_row(sim) == [1, 0]


def test_usleep_range_ends_at_an_earlier_local_timer_interrupt(sim: Kernel) -> None:
    """Another hrtimer interrupt of the CPU after min (here the tick at 4 ms) ends the sleep."""
    log: list[Any] = []
    here = make_timer(sim, log, "here")
    sim.call(lambda: mod_timer(here, J0))  # tick at 4 ms on CPU0

    def nap() -> int:
        usleep_range(1000, 10000)
        return ktime_get_ns()

    assert sim.call(nap) == 4 * MS
    assert log == [(4 * MS, "here")]
    assert loc_row(sim) == [1, 0]  # one interrupt ran the tick and the sleeper


def test_usleep_range_ignores_interrupts_of_other_cpus(sim: Kernel) -> None:
    """A tick on CPU1 does not end a CPU0 sleep: it lasts until max."""
    there = make_timer(sim, [], "there")
    sim.call(lambda: mod_timer(there, J0), cpu=1)

    def nap() -> int:
        usleep_range(1000, 10000)
        return ktime_get_ns()

    assert sim.call(nap) == 10 * MS
    assert loc_row(sim) == [1, 1]


def test_usleep_range_and_msleep_on_real(real: Kernel) -> None:
    """On real the sleeps return and each local timer interrupt is counted on its CPU."""
    real.call(usleep_range, 1000, 2000)
    assert loc_row(real) == [1, 0]
    real.call(msleep, 5, cpu=1)
    assert loc_row(real) == [1, 1]


# ----------------------------------------------------------------------
# busy-waiting


def test_delays_occupy_the_cpu_for_exactly_their_length(sim: Kernel) -> None:
    """ndelay/udelay/mdelay advance virtual time by exactly their argument."""

    def burn() -> list[int]:
        out = [ktime_get_ns()]
        ndelay(1500)
        out.append(ktime_get_ns())
        udelay(7)
        out.append(ktime_get_ns())
        mdelay(2)
        out.append(ktime_get_ns())
        return out

    assert sim.call(burn) == [0, 1500, 8500, 2_008_500]


def test_mdelay_preempted_by_an_interrupt_serves_the_rest_afterwards(sim: Kernel) -> None:
    """An IRQ during mdelay(10) runs at once; the delay then ends 10 ms of CPU later (11 ms)."""
    trace: list[tuple[int, str]] = []

    def handler(irq: int, dev: Any) -> int:
        trace.append((ktime_get_ns(), "irq entry"))
        mdelay(1)
        trace.append((ktime_get_ns(), "irq exit"))
        return IRQ_HANDLED

    assert sim.call(request_irq, 17, handler, 0, "dev", None) == 0

    def busy() -> None:
        trace.append((ktime_get_ns(), "mdelay start"))
        mdelay(10)
        trace.append((ktime_get_ns(), "mdelay end"))

    sim.sched.kthread_run(busy, "busy", 0)
    sim.run_for(2)
    sim.raise_irq(17, cpu=0)
    sim.run_until_idle()
    assert trace == [(0, "mdelay start"), (2 * MS, "irq entry"), (3 * MS, "irq exit"),
                     (11 * MS, "mdelay end")]


def test_tick_during_mdelay_runs_the_timer_and_delays_the_task(sim: Kernel) -> None:
    """A timer due while a task busy-waits runs on top of it at the tick; the task ends later."""
    log: list[Any] = []
    t = make_timer(sim, log, "t", body=lambda tl: mdelay(1))

    def busy() -> int:
        mod_timer(t, jiffies() + 1)  # runs at 8 ms
        mdelay(10)
        return ktime_get_ns()

    assert sim.call(busy) == 11 * MS
    assert log == [(8 * MS, "t")]


# ----------------------------------------------------------------------
# timer_delete_sync


def test_del_timer_sync_waits_for_the_callback_on_another_cpu(sim: Kernel) -> None:
    """Callback on CPU1 runs 4-9 ms; del_timer_sync on CPU0 at 6 ms returns 0 at 9 ms."""
    log: list[Any] = []
    t = make_timer(sim, log, "t", body=lambda tl: (mdelay(5), log.append((sim.now_ns, "end"))))
    sim.call(lambda: mod_timer(t, J0), cpu=1)

    def stop() -> tuple[int, int]:
        usleep_range(6000, 6000)
        return del_timer_sync(t), ktime_get_ns()

    assert sim.call(stop) == (0, 9 * MS)
    assert log == [(4 * MS, "t"), (9 * MS, "end")]


def test_del_timer_sync_waits_for_the_running_callback_on_real(real: Kernel) -> None:
    """On real, del_timer_sync returns only after the running callback has finished."""
    started, done = threading.Event(), threading.Event()

    def body(tl: timer_list) -> None:
        started.set()
        mdelay(50)
        done.set()

    t = make_timer(real, [], "t", body=body)
    real.call(lambda: mod_timer(t, jiffies() + 1), cpu=1)
    assert started.wait(5)
    assert real.call(del_timer_sync, t, cpu=0) == 0
    assert done.is_set()


def test_del_timer_sync_in_softirq_spins_without_sleeping(sim: Kernel) -> None:
    """From a tasklet on CPU0 it spins (no scheduling-while-atomic) until the CPU1 callback ends."""
    log: list[Any] = []
    t = make_timer(sim, log, "t", body=lambda tl: mdelay(5))
    tl = tasklet_struct()

    def tasklet_fn(_: tasklet_struct) -> None:
        log.append((sim.now_ns, "tasklet"))
        ret = del_timer_sync(t)
        log.append((sim.now_ns, f"del={ret}"))

    sim.call(tasklet_setup, tl, tasklet_fn)
    sim.call(lambda: mod_timer(t, J0), cpu=1)
    sim.run_for(6)

    def kick() -> None:
        local_bh_disable()
        tasklet_schedule(tl)
        local_bh_enable()

    sim.call(kick)
    sim.run_until_idle()
    assert log == [(4 * MS, "t"), (6 * MS, "tasklet"), (9 * MS, "del=0")]
    assert not any("BUG" in m for m in messages(sim))


def test_del_timer_sync_from_its_own_callback_is_reported(kernel: Kernel) -> None:
    """From its own callback Linux would spin forever: WARN, return, and carry on."""
    rets: list[int] = []
    t = make_timer(kernel, [], "t", body=lambda tl: rets.append(del_timer_sync(tl)))
    kernel.call(lambda: mod_timer(t, jiffies() + 1))
    kernel.run_until_idle(timeout_ms=5000)
    assert rets == [0]
    assert any("timer_delete_sync(cb) called from that timer's callback on CPU0" in m
               for m in messages(kernel))


def test_del_timer_sync_from_hardirq_warns_for_non_irqsafe_timers(kernel: Kernel) -> None:
    """timer_delete_sync() in hard-IRQ context WARNs unless the timer is IRQSAFE."""
    plain = make_timer(kernel, [], "plain")
    safe = make_timer(kernel, [], "safe", TIMER_IRQSAFE)
    rets: list[int] = []

    def handler(irq: int, dev: Any) -> int:
        rets.append(del_timer_sync(safe))
        rets.append(del_timer_sync(plain))
        return IRQ_HANDLED

    kernel.call(lambda: (mod_timer(plain, jiffies() + 100), mod_timer(safe, jiffies() + 100)))
    assert kernel.call(request_irq, 17, handler, 0, "dev", None) == 0
    kernel.raise_irq(17, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    assert rets == [1, 1]
    warnings = [m for m in messages(kernel) if m.startswith("WARNING:")]
    assert len(warnings) == 1 and " __timer_delete_sync+" in warnings[0]


# ----------------------------------------------------------------------
# /proc/interrupts LOC


def test_loc_counts_each_local_timer_interrupt(kernel: Kernel) -> None:
    """Two timers on CPU1 due at different ticks: two LOC interrupts on CPU1, none on CPU0."""
    a = make_timer(kernel, [], "a")
    b = make_timer(kernel, [], "b")
    kernel.call(lambda: (mod_timer(a, jiffies() + 1), mod_timer(b, jiffies() + 3)), cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert loc_row(kernel) == [0, 2]


def test_timers_of_one_tick_share_one_loc_interrupt(sim: Kernel) -> None:
    """Timers that expire at the same tick take a single local timer interrupt."""
    ts = [make_timer(sim, [], f"t{i}") for i in range(3)]
    sim.call(lambda: [mod_timer(t, J0 + 2) for t in ts])
    sim.run_until_idle()
    assert loc_row(sim) == [1, 0]
    assert sim.read("/proc/softirqs").splitlines()[2] == "       TIMER:          1          0"


@pytest.mark.parametrize("cpu", [0, 1])
def test_bh_disabled_section_delays_the_timer_softirq(sim: Kernel, cpu: int) -> None:
    """A tick during local_bh_disable() leaves TIMER pending; it runs at local_bh_enable()."""
    log: list[Any] = []
    t = make_timer(sim, log, "t")

    def section() -> None:
        mod_timer(t, jiffies())  # due at the 4 ms tick
        local_bh_disable()
        mdelay(6)
        local_bh_enable()

    sim.call(section, cpu=cpu)
    assert log == [(6 * MS, "t")]


def test_reinitialising_a_queued_delayed_work_forgets_its_timer(sim: Kernel) -> None:
    """INIT_DELAYED_WORK on a queued item drops its timer completely: the kernel goes idle."""
    ran: list[int] = []
    dw = delayed_work()
    sim.call(INIT_DELAYED_WORK, dw, lambda w: ran.append(sim.now_ns))
    sim.call(schedule_delayed_work, dw, 10)
    sim.call(INIT_DELAYED_WORK, dw, lambda w: ran.append(sim.now_ns))
    sim.run_until_idle()
    assert ran == [] and sim.now_ns == 0
