"""Hard IRQs conform to Linux: request/free, flow handlers, threads, disable/enable,
spurious detection, raise_irq and /proc/interrupts (reference §2, §13 item 14)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bottomhalf import BottomHalfError, Kernel, ModuleLoadError
from bottomhalf.linux import (
    EBUSY,
    EINVAL,
    IRQ_HANDLED,
    IRQ_NONE,
    IRQ_WAKE_THREAD,
    IRQF_NO_AUTOEN,
    IRQF_ONESHOT,
    IRQF_PROBE_SHARED,
    IRQF_SHARED,
    IRQF_TRIGGER_HIGH,
    IRQF_TRIGGER_RISING,
    complete,
    completion,
    current,
    disable_irq,
    disable_irq_nosync,
    enable_irq,
    free_irq,
    in_hardirq,
    in_task,
    init_completion,
    irqs_disabled,
    jiffies,
    mdelay,
    mod_timer,
    request_irq,
    request_threaded_irq,
    smp_processor_id,
    timer_list,
    timer_setup,
    usleep_range,
    wait_for_completion,
)

from .conftest import messages, module_path

MS = 1_000_000


def irq_row(k: Kernel, irq: int) -> str | None:
    """The /proc/interrupts row of ``irq``, or None."""
    for line in k.read("/proc/interrupts").splitlines():
        if line.startswith(f"{irq:>3d}:"):
            return line
    return None


def irq_counts(k: Kernel, irq: int) -> list[int]:
    row = irq_row(k, irq)
    assert row is not None
    return [int(x) for x in row.split()[1:1 + k.ncpus]]


def warnings(k: Kernel) -> list[str]:
    """The message line of each WARN, in order."""
    m = messages(k)
    return [m[i + 1] for i, line in enumerate(m) if line == "------------[ cut here ]------------"]


def tasks_named(k: Kernel, comm: str) -> list[Any]:
    return [t for t in k.sched.tasks.values() if t.comm == comm]


def request_recording(k: Kernel, irq: int = 17, flags: int = 0, name: str = "mydev",
                      dev: Any = "d") -> list[Any]:
    """Request ``irq`` with a handler that records its dev_id and returns IRQ_HANDLED."""
    calls: list[Any] = []

    def h(i: int, d: Any) -> int:
        calls.append(d)
        return IRQ_HANDLED

    assert k.call(request_irq, irq, h, flags, name, dev) == 0
    return calls


# ----------------------------------------------------------------------
# request_irq / request_threaded_irq


def test_request_irq_returns_zero_and_free_irq_returns_name(kernel: Kernel) -> None:
    """request_irq returns 0; free_irq returns the name given at request time."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 17, h, 0, "mydev", "dev0") == 0
    assert kernel.call(free_irq, 17, "dev0") == "mydev"
    assert irq_row(kernel, 17) is None


def test_shared_without_dev_id_is_einval(kernel: Kernel) -> None:
    """IRQF_SHARED with a NULL dev_id is refused with -EINVAL and registers nothing."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 17, h, IRQF_SHARED, "mydev", None) == -EINVAL
    assert irq_row(kernel, 17) is None
    with pytest.raises(BottomHalfError):
        kernel.raise_irq(17)


def test_both_handlers_null_is_einval(kernel: Kernel) -> None:
    """Neither a primary handler nor a thread function: -EINVAL, silently."""
    before = kernel.dmesg()
    assert kernel.call(request_threaded_irq, 17, None, None, IRQF_ONESHOT, "mydev", "d") == -EINVAL
    assert kernel.call(request_irq, 17, None, 0, "mydev", "d") == -EINVAL
    assert kernel.dmesg() == before
    assert irq_row(kernel, 17) is None


def test_shared_with_no_autoen_is_einval(kernel: Kernel) -> None:
    """IRQF_SHARED together with IRQF_NO_AUTOEN is refused with -EINVAL."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 17, h, IRQF_SHARED | IRQF_NO_AUTOEN, "mydev", "d") == -EINVAL


def test_threaded_null_handler_needs_oneshot(kernel: Kernel) -> None:
    """handler=NULL without IRQF_ONESHOT: genirq's error line, -EINVAL, no thread."""
    def tfn(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_threaded_irq, 17, None, tfn, 0, "mydev", "d") == -EINVAL
    assert messages(kernel)[-1] == ("genirq: Threaded irq requested with handler=NULL and "
                                    "!ONESHOT for mydev (irq 17)")
    assert tasks_named(kernel, "irq/17-mydev") == []
    assert irq_row(kernel, 17) is None


def test_flags_mismatch_on_shared_line_is_ebusy(kernel: Kernel) -> None:
    """A second request without matching IRQF_SHARED: genirq's mismatch line and -EBUSY.

    The flags printed are the stored ones: request_irq adds IRQF_COND_ONESHOT (0x200000).
    """
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 17, h, 0, "first", "d1") == 0
    assert kernel.call(request_irq, 17, h, IRQF_SHARED, "second", "d2") == -EBUSY
    assert messages(kernel)[-1] == "genirq: Flags mismatch irq 17. 00200080 (second) vs. 00200000 (first)"
    assert irq_row(kernel, 17).endswith("  first")


def test_trigger_mismatch_and_probe_shared(kernel: Kernel) -> None:
    """Shared requests must agree on the trigger; IRQF_PROBE_SHARED fails silently."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 17, h, IRQF_SHARED | IRQF_TRIGGER_HIGH, "a", "d1") == 0
    assert kernel.call(request_irq, 17, h, IRQF_SHARED | IRQF_TRIGGER_RISING, "b", "d2") == -EBUSY
    assert messages(kernel)[-1] == "genirq: Flags mismatch irq 17. 00200081 (b) vs. 00200084 (a)"
    before = kernel.dmesg()
    assert kernel.call(request_irq, 17, h, IRQF_SHARED | IRQF_PROBE_SHARED | IRQF_TRIGGER_RISING,
                       "c", "d3") == -EBUSY
    assert kernel.dmesg() == before
    # no trigger given: the line's trigger is inherited, so the request fits
    assert kernel.call(request_irq, 17, h, IRQF_SHARED, "d", "d4") == 0
    assert irq_row(kernel, 17).endswith("-fasteoi   a, d")


def test_cond_oneshot_joins_a_oneshot_line(kernel: Kernel) -> None:
    """request_irq (IRQF_COND_ONESHOT) may share a ONESHOT line; a plain non-ONESHOT
    request_threaded_irq may not."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_threaded_irq, 17, None, h, IRQF_SHARED | IRQF_ONESHOT,
                       "a", "d1") == 0
    assert kernel.call(request_irq, 17, h, IRQF_SHARED, "b", "d2") == 0
    assert kernel.call(request_threaded_irq, 17, h, None, IRQF_SHARED, "c", "d3") == -EBUSY
    assert messages(kernel)[-1] == "genirq: Flags mismatch irq 17. 00000080 (c) vs. 00002080 (a)"


def test_request_irq_rejects_python_misuse(kernel: Kernel) -> None:
    """A handler that is not callable, or an irq that is not an int, raises TypeError."""
    with pytest.raises(TypeError):
        kernel.call(request_irq, 17, "not a function", 0, "mydev", "d")
    with pytest.raises(TypeError):
        kernel.call(request_irq, "17", lambda i, d: IRQ_HANDLED, 0, "mydev", "d")
    assert irq_row(kernel, 17) is None


def test_out_of_range_irq_is_einval(kernel: Kernel) -> None:
    """An interrupt number with no descriptor is refused with -EINVAL."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_HANDLED

    assert kernel.call(request_irq, 256, h, 0, "mydev", "d") == -EINVAL
    assert kernel.call(request_irq, -1, h, 0, "mydev", "d") == -EINVAL


# ----------------------------------------------------------------------
# handling


def test_handler_gets_irq_and_dev_id_in_hard_irq_context(kernel: Kernel) -> None:
    """The handler runs with (irq, dev_id), in hard-IRQ context, IRQs off, on the CPU asked."""
    seen = []
    dev = object()

    def h(irq: int, dev_id: Any) -> int:
        seen.append((irq, dev_id is dev, in_hardirq(), irqs_disabled(), smp_processor_id()))
        return IRQ_HANDLED

    kernel.call(request_irq, 17, h, 0, "mydev", dev)
    kernel.raise_irq(17)
    kernel.raise_irq(17, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [(17, True, True, True, 0), (17, True, True, True, 1)]
    assert irq_counts(kernel, 17) == [1, 1]


def test_shared_line_calls_every_action_in_order(kernel: Kernel) -> None:
    """Each interrupt on a shared line calls every action, in registration order."""
    calls = []

    def make(tag: str, ret: int) -> Any:
        def h(irq: int, dev: Any) -> int:
            calls.append((tag, dev))
            return ret
        return h

    for tag, ret in (("a", IRQ_NONE), ("b", IRQ_HANDLED), ("c", IRQ_NONE)):
        assert kernel.call(request_irq, 17, make(tag, ret), IRQF_SHARED, f"dev_{tag}", tag) == 0
    kernel.raise_irq(17)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == [("a", "a"), ("b", "b"), ("c", "c")] * 2
    assert irq_row(kernel, 17).endswith("  dev_a, dev_b, dev_c")
    assert kernel.call(free_irq, 17, "b") == "dev_b"
    calls.clear()
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == [("a", "a"), ("c", "c")]


def test_irq_wake_thread_runs_thread_fn_in_irq_thread(kernel: Kernel) -> None:
    """IRQ_WAKE_THREAD wakes irq/N-name, which runs thread_fn(irq, dev_id) in process context."""
    log = []

    def primary(irq: int, dev: Any) -> int:
        log.append(("primary", current.comm, in_hardirq()))
        return IRQ_WAKE_THREAD

    def tfn(irq: int, dev: Any) -> int:
        log.append(("thread", current.comm, in_task(), irq, dev))
        return IRQ_HANDLED

    assert kernel.call(request_threaded_irq, 17, primary, tfn, 0, "mydev", "d") == 0
    assert len(tasks_named(kernel, "irq/17-mydev")) == 1
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == [("primary", "swapper/0", True), ("thread", "irq/17-mydev", True, 17, "d")]
    assert kernel.call(free_irq, 17, "d") == "mydev"
    assert tasks_named(kernel, "irq/17-mydev") == []


def test_irq_thread_name_is_truncated_to_15_chars(kernel: Kernel) -> None:
    """The thread's comm is irq/%d-%s cut to 15 characters (TASK_COMM_LEN - 1)."""
    comms = []

    def tfn(irq: int, dev: Any) -> int:
        comms.append(current.comm)
        return IRQ_HANDLED

    kernel.call(request_threaded_irq, 17, None, tfn, IRQF_ONESHOT, "a-very-long-device", "d")
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert comms == ["irq/17-a-very-l"]


def test_handler_returning_wake_thread_without_thread_fn_warns_once(kernel: Kernel) -> None:
    """IRQ_WAKE_THREAD with no thread function: Linux's warning, once per action."""
    def h(irq: int, dev: Any) -> int:
        return IRQ_WAKE_THREAD

    kernel.call(request_irq, 17, h, 0, "mydev", "d")
    kernel.raise_irq(17)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    text = "IRQ 17 device mydev returned IRQ_WAKE_THREAD but no thread function available."
    assert messages(kernel).count(text) == 1


def _oneshot_setup(k: Kernel, flags: int) -> tuple[list[str], completion]:
    """A threaded line whose first thread run blocks until ``gate`` completes."""
    log: list[str] = []
    gate = completion()
    init_completion(gate)

    def primary(irq: int, dev: Any) -> int:
        log.append("primary")
        return IRQ_WAKE_THREAD

    def tfn(irq: int, dev: Any) -> int:
        log.append("thread start")
        if log.count("thread start") == 1:
            wait_for_completion(gate)
        log.append("thread end")
        return IRQ_HANDLED

    assert k.call(request_threaded_irq, 17, primary, tfn, flags, "mydev", "d") == 0
    return log, gate


def test_oneshot_level_line_stays_masked_until_thread_finishes(kernel: Kernel) -> None:
    """ONESHOT on a level line: interrupts during the thread are held (not counted) and
    one replay follows the thread's end."""
    log, gate = _oneshot_setup(kernel, IRQF_ONESHOT | IRQF_TRIGGER_HIGH)
    kernel.raise_irq(17)
    kernel.run_for(1)
    kernel.raise_irq(17)
    kernel.raise_irq(17)
    kernel.run_for(1)
    assert log == ["primary", "thread start"]
    assert irq_counts(kernel, 17) == [1, 0]
    kernel.call(complete, gate)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == ["primary", "thread start", "thread end",
                   "primary", "thread start", "thread end"]
    assert irq_counts(kernel, 17) == [2, 0]


def test_oneshot_edge_line_is_not_masked(kernel: Kernel) -> None:
    """ONESHOT on an edge line: the primary runs for each interrupt, the thread once more."""
    log, gate = _oneshot_setup(kernel, IRQF_ONESHOT)
    kernel.raise_irq(17)
    kernel.run_for(1)
    kernel.raise_irq(17)
    kernel.raise_irq(17)
    kernel.run_for(1)
    assert log == ["primary", "thread start", "primary", "primary"]
    assert irq_counts(kernel, 17) == [3, 0]
    kernel.call(complete, gate)
    kernel.run_until_idle(timeout_ms=5000)
    assert log == ["primary", "thread start", "primary", "primary", "thread end",
                   "thread start", "thread end"]


def test_free_irq_waits_for_running_threaded_handler(kernel: Kernel) -> None:
    """free_irq returns only after a running thread_fn has finished, then stops the thread."""
    log, gate = _oneshot_setup(kernel, IRQF_ONESHOT)
    kernel.raise_irq(17)
    kernel.run_for(1)
    t = timer_list()

    def opener(tm: timer_list) -> None:
        log.append("timer")
        complete(gate)

    def free() -> None:
        timer_setup(t, opener, 0)
        mod_timer(t, jiffies() + 2)
        name = free_irq(17, "d")
        log.append(f"free_irq returned {name}")

    kernel.call(free)
    assert log == ["primary", "thread start", "timer", "thread end", "free_irq returned mydev"]
    assert tasks_named(kernel, "irq/17-mydev") == []


def busy_on_cpu1(sim: Kernel, ms: int) -> list[tuple[int, str]]:
    """Raise IRQ 17 on CPU 1, whose handler busy-waits ``ms``; returns its (time, event) log."""
    log: list[tuple[int, str]] = []

    def h(irq: int, dev: Any) -> int:
        log.append((sim.now_ns, "enter"))
        mdelay(ms)
        log.append((sim.now_ns, "exit"))
        return IRQ_HANDLED

    sim.call(request_irq, 17, h, 0, "mydev", "d")
    sim.raise_irq(17, cpu=1)
    return log


def test_free_irq_waits_for_running_hard_handler_on_sim(sim: Kernel) -> None:
    """free_irq on CPU 0 sleeps until the handler busy on CPU 1 returns (5 ms later)."""
    log = busy_on_cpu1(sim, 5)

    def free() -> None:
        free_irq(17, "d")
        log.append((sim.now_ns, "freed"))

    sim.call(free, cpu=0)
    assert log == [(0, "enter"), (5 * MS, "exit"), (5 * MS, "freed")]


def test_free_irq_waits_for_running_hard_handler_on_real(real: Kernel) -> None:
    """free_irq does not return while a handler of the line runs in another thread."""
    entered, release = threading.Event(), threading.Event()
    log = []

    def h(irq: int, dev: Any) -> int:
        entered.set()
        release.wait(10)
        log.append("handler exit")
        return IRQ_HANDLED

    real.call(request_irq, 17, h, 0, "mydev", "d")
    raiser = threading.Thread(target=real.raise_irq, args=(17, 1))
    raiser.start()
    assert entered.wait(10)
    freed = threading.Event()

    def free() -> None:
        real.call(free_irq, 17, "d")
        log.append("freed")
        freed.set()

    freer = threading.Thread(target=free)
    freer.start()
    assert not freed.wait(0.2)
    release.set()
    raiser.join(10)
    freer.join(10)
    assert log == ["handler exit", "freed"]


def test_free_irq_with_unknown_dev_id_warns(kernel: Kernel) -> None:
    """free_irq of a dev_id not on the line: WARN "Trying to free already-free IRQ", None."""
    calls = request_recording(kernel)
    assert kernel.call(free_irq, 17, "other") is None
    assert kernel.call(free_irq, 18, "d") is None
    assert warnings(kernel) == ["Trying to free already-free IRQ 17",
                                "Trying to free already-free IRQ 18"]
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == ["d"]


def test_free_irq_from_hard_irq_warns(sim: Kernel) -> None:
    """free_irq from a handler: WARN "Trying to free IRQ %d from IRQ context!" and the splat."""
    def h(irq: int, dev: Any) -> int:
        free_irq(18, "e")
        return IRQ_HANDLED

    sim.call(request_irq, 17, h, 0, "mydev", "d")
    sim.call(request_irq, 18, h, 0, "other", "e")
    sim.raise_irq(17)
    sim.run_until_idle()
    assert warnings(sim)[0] == "Trying to free IRQ 18 from IRQ context!"
    assert any(m.startswith("BUG: sleeping function called from invalid context")
               for m in messages(sim))


# ----------------------------------------------------------------------
# disable_irq / enable_irq


def test_disable_enable_nest_and_replay_once(kernel: Kernel) -> None:
    """Interrupts while disabled run no handler and are not counted; the last
    enable_irq replays one."""
    calls = request_recording(kernel)
    kernel.call(disable_irq, 17)
    kernel.call(disable_irq_nosync, 17)
    for _ in range(3):
        kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == []
    assert irq_counts(kernel, 17) == [0, 0]
    kernel.call(enable_irq, 17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == []
    kernel.call(enable_irq, 17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == ["d"]
    assert irq_counts(kernel, 17) == [1, 0]
    assert warnings(kernel) == []


def test_unbalanced_enable_warns(kernel: Kernel) -> None:
    """enable_irq on an enabled line: WARN "Unbalanced enable for IRQ %d"; the line still works."""
    calls = request_recording(kernel)
    kernel.call(enable_irq, 17)
    assert warnings(kernel) == ["Unbalanced enable for IRQ 17"]
    kernel.call(disable_irq, 17)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == []
    kernel.call(enable_irq, 17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == ["d"]


def test_enable_irq_before_request_warns(kernel: Kernel) -> None:
    """enable_irq on a line never set up: WARN "enable_irq before setup/request_irq"."""
    kernel.call(enable_irq, 40)
    assert warnings(kernel) == ["enable_irq before setup/request_irq: irq 40"]


def test_disable_irq_waits_for_running_handler(sim: Kernel) -> None:
    """disable_irq returns after the handler running on another CPU; nosync does not wait."""
    log = busy_on_cpu1(sim, 3)

    def nosync() -> None:
        disable_irq_nosync(17)
        log.append((sim.now_ns, "nosync returned"))
        disable_irq(17)
        log.append((sim.now_ns, "disable_irq returned"))

    sim.call(nosync)
    assert log == [(0, "enter"), (0, "nosync returned"), (3 * MS, "exit"),
                   (3 * MS, "disable_irq returned")]


def test_disable_irq_nosync_in_handler_holds_later_interrupts(kernel: Kernel) -> None:
    """A handler may disable its own line with disable_irq_nosync; enable_irq replays."""
    calls = []

    def h(irq: int, dev: Any) -> int:
        calls.append(len(calls))
        disable_irq_nosync(irq)
        return IRQ_HANDLED

    kernel.call(request_irq, 17, h, 0, "mydev", "d")
    kernel.raise_irq(17)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == [0]
    kernel.call(enable_irq, 17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == [0, 1]
    assert irq_counts(kernel, 17) == [2, 0]


def test_no_autoen_line_starts_disabled(kernel: Kernel) -> None:
    """IRQF_NO_AUTOEN: no handler runs until the first enable_irq, which replays."""
    calls = request_recording(kernel, flags=IRQF_NO_AUTOEN)
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == []
    kernel.call(enable_irq, 17)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == ["d"]
    assert warnings(kernel) == []


# ----------------------------------------------------------------------
# raise_irq


@pytest.mark.parametrize("irq, cpu", [(300, None), (-1, None), ("17", None), (True, None),
                                      (18, None), (17, 2), (17, -1), (17, True), (17, "0")])
def test_raise_irq_refuses_bad_input_and_changes_nothing(kernel: Kernel, irq: Any,
                                                          cpu: Any) -> None:
    """Unknown line, line without handler or bad CPU: a clear BottomHalfError, nothing run."""
    calls = request_recording(kernel)
    before = (kernel.read("/proc/interrupts"), kernel.dmesg())
    with pytest.raises(BottomHalfError) as exc:
        kernel.raise_irq(irq, cpu)
    assert str(irq if cpu is None else cpu) in str(exc.value)
    kernel.run_until_idle(timeout_ms=5000)
    assert calls == []
    assert (kernel.read("/proc/interrupts"), kernel.dmesg()) == before


def test_raise_irq_on_a_freed_line_is_refused(kernel: Kernel) -> None:
    """Once its last handler is freed, a line cannot be raised."""
    kernel.call(request_irq, 17, lambda i, d: IRQ_HANDLED, 0, "mydev", "d")
    kernel.call(free_irq, 17, "d")
    with pytest.raises(BottomHalfError, match="no handler"):
        kernel.raise_irq(17)


def test_real_handler_and_its_softirqs_run_in_the_calling_thread(real: Kernel) -> None:
    """On real, raise_irq runs the handler and then, at irq_exit, the softirqs it raised,
    in the calling thread, before it returns."""
    from bottomhalf.linux import tasklet_schedule, tasklet_setup, tasklet_struct

    seen = []
    t = tasklet_struct()

    def tasklet_fn(tl: Any) -> None:
        seen.append(("tasklet", threading.get_ident(), current.comm))

    def h(irq: int, dev: Any) -> int:
        seen.append(("handler", threading.get_ident(), current.comm))
        tasklet_schedule(t)
        return IRQ_HANDLED

    tasklet_setup(t, tasklet_fn)
    real.call(request_irq, 17, h, 0, "mydev", "d")
    me = threading.get_ident()
    real.raise_irq(17, cpu=1)
    assert seen == [("handler", me, "swapper/1"), ("tasklet", me, "swapper/1")]


# ----------------------------------------------------------------------
# spurious interrupts (kernel/irq/spurious.c)


def _storm(k: Kernel, irq: int, results: list[int], gap_ms_at: int | None = None,
           gap_ms: int = 0) -> None:
    """Raise ``irq`` once per entry of ``results``, the handler returning that entry."""
    it = iter(results)

    def h(i: int, dev: Any) -> int:
        return next(it)

    k.call(request_irq, irq, h, 0, "storm", "d")

    def loop() -> None:
        for n in range(len(results)):
            if n == gap_ms_at:
                usleep_range(gap_ms * 1000, gap_ms * 1000)
            k.raise_irq(irq)

    k.call(loop)


NOBODY_CARED = 'irq 17: nobody cared (try booting with the "irqpoll" option)'


def test_nobody_cared_after_100000_unhandled(sim: Kernel) -> None:
    """100000 unhandled interrupts: nobody cared, stack, handlers:, Disabling IRQ #17."""
    _storm(sim, 17, [IRQ_NONE] * 100_000)
    m = messages(sim)
    i = m.index(NOBODY_CARED)
    assert m[i + 1].startswith("CPU: 0 UID: 0 PID: ")
    assert m[i + 3] == "Call Trace:"
    j = m.index("handlers:", i)
    assert m[j + 1].startswith("[<") and m[j + 1].endswith(">] h")
    assert m[j + 2] == "Disabling IRQ #17"
    assert m[j + 2:] == ["Disabling IRQ #17"]
    # the line is now disabled: the next interrupts run nothing and are not counted
    sim.raise_irq(17)
    sim.raise_irq(17)
    sim.run_until_idle()
    assert irq_counts(sim, 17) == [100_000, 0]


def test_99999_unhandled_do_not_disable(sim: Kernel) -> None:
    """One short of the 100000-interrupt window nothing is reported."""
    _storm(sim, 17, [IRQ_NONE] * 99_999)
    assert NOBODY_CARED not in messages(sim)


def test_threshold_is_more_than_99900_unhandled(sim: Kernel) -> None:
    """With 100 handled in the window (99900 unhandled) the line stays; with 99 it is disabled."""
    _storm(sim, 17, [IRQ_NONE] + [IRQ_HANDLED] * 100 + [IRQ_NONE] * 99_899)
    assert NOBODY_CARED not in messages(sim)
    _storm(sim, 18, [IRQ_NONE] + [IRQ_HANDLED] * 99 + [IRQ_NONE] * 99_900)
    assert messages(sim)[-1] == "Disabling IRQ #18"


def test_handled_interrupts_before_the_first_unhandled_are_not_counted(sim: Kernel) -> None:
    """While nothing is unhandled the window does not advance."""
    _storm(sim, 17, [IRQ_HANDLED] * 10 + [IRQ_NONE] * 99_999)
    assert NOBODY_CARED not in messages(sim)


@pytest.mark.parametrize("gap_ms, reported", [(100, True), (104, False)])
def test_unhandled_count_restarts_after_100ms_gap(sim: Kernel, gap_ms: int,
                                                  reported: bool) -> None:
    """An unhandled interrupt more than HZ/10 jiffies after the last restarts the count."""
    # 100 ms is 25 jiffies (not after last_unhandled + HZ/10); 104 ms is 26
    _storm(sim, 17, [IRQ_NONE] * 100_000, gap_ms_at=50_000, gap_ms=gap_ms)
    assert (NOBODY_CARED in messages(sim)) is reported


def test_threaded_result_is_judged_one_interrupt_later(sim: Kernel) -> None:
    """A primary that only wakes a thread which never handles anything is counted
    unhandled from the second interrupt on: 100001 interrupts fill the window."""
    def primary(irq: int, dev: Any) -> int:
        return IRQ_WAKE_THREAD

    def tfn(irq: int, dev: Any) -> int:
        return IRQ_NONE

    sim.call(request_threaded_irq, 17, primary, tfn, 0, "thr", "d")

    def loop(n: int) -> None:
        for _ in range(n):
            sim.raise_irq(17)

    sim.call(loop, 100_000)
    assert NOBODY_CARED not in messages(sim)
    sim.call(loop, 1)
    m = messages(sim)
    j = m.index("handlers:")
    assert m[j + 1].endswith(">] primary threaded [<" + m[j + 1].split("[<")[2].split(">]")[0]
                             + ">] tfn")


def test_bogus_return_value_report(kernel: Kernel) -> None:
    """A handler returning None: Linux's bogus-return report plus a hint naming it."""
    def forgetful(irq: int, dev: Any) -> None:
        pass

    kernel.call(request_irq, 17, forgetful, 0, "mydev", "d")
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    m = messages(kernel)
    i = m.index("irq event 17: bogus return value None")
    assert m[i + 1].startswith("CPU: ")
    j = m.index("handlers:", i)
    assert m[j + 1].endswith(">] forgetful")
    assert m[j + 2] == ("bottomhalf: forgetful() returned None, not an irqreturn_t: return "
                        "IRQ_HANDLED if its device interrupted, IRQ_NONE if not (or "
                        "IRQ_WAKE_THREAD to run the threaded handler)")
    assert irq_counts(kernel, 17) == [1, 0]


def test_bogus_return_value_is_the_or_of_all_actions(kernel: Kernel) -> None:
    """Return values of a shared line are OR-ed: 4 | 1 is reported as bogus value 5."""
    kernel.call(request_irq, 17, lambda i, d: 4, IRQF_SHARED, "a", "d1")
    kernel.call(request_irq, 17, lambda i, d: IRQ_HANDLED, IRQF_SHARED, "b", "d2")
    kernel.raise_irq(17)
    kernel.run_until_idle(timeout_ms=5000)
    assert "irq event 17: bogus return value 5" in messages(kernel)
    assert not any(m.startswith("bottomhalf:") for m in messages(kernel))


def test_bogus_reports_stop_after_100(sim: Kernel) -> None:
    """report_bad_irq() reports at most 100 times per boot."""
    sim.call(request_irq, 17, lambda i, d: 7, 0, "mydev", "d")

    def loop() -> None:
        for _ in range(150):
            sim.raise_irq(17)

    sim.call(loop)
    assert messages(sim).count("irq event 17: bogus return value 7") == 100


# ----------------------------------------------------------------------
# /proc/interrupts


def test_proc_interrupts_exact_on_sim(sim: Kernel) -> None:
    """Header, IRQ rows (shared names, per-CPU counts) and the x86 arch rows, byte for byte."""
    sim.call(request_irq, 9, lambda i, d: IRQ_HANDLED, IRQF_SHARED, "acpi", "a")
    sim.call(request_irq, 9, lambda i, d: IRQ_HANDLED, IRQF_SHARED, "ehci_hcd:usb1", "b")
    sim.call(request_irq, 24, lambda i, d: IRQ_HANDLED, IRQF_TRIGGER_HIGH, "virtio1-req.0", "c")
    for cpu in (0, 1, 1):
        sim.raise_irq(9, cpu)
    sim.raise_irq(24, 1)
    sim.run_until_idle()
    assert sim.read("/proc/interrupts") == (
        "           CPU0       CPU1       \n"
        "  9:          1          2   IO-APIC   9-edge      acpi, ehci_hcd:usb1\n"
        " 24:          0          1   IO-APIC  24-fasteoi   virtio1-req.0\n"
        "NMI:          0          0   Non-maskable interrupts\n"
        "LOC:          0          0   Local timer interrupts\n"
        "SPU:          0          0   Spurious interrupts\n"
        "PMI:          0          0   Performance monitoring interrupts\n"
        "IWI:          0          0   IRQ work interrupts\n"
        "RTR:          0          0   APIC ICR read retries\n"
        "RES:          0          0   Rescheduling interrupts\n"
        "CAL:          0          0   Function call interrupts\n"
        "TLB:          0          0   TLB shootdowns\n"
        "ERR:          0\n"
        "MIS:          0\n"
    )


def test_proc_interrupts_rows_on_both_engines(kernel: Kernel) -> None:
    """The rows of requested lines and their per-CPU counts; no softirq rows."""
    kernel.call(request_irq, 17, lambda i, d: IRQ_HANDLED, 0, "mydev", "d")
    kernel.raise_irq(17, 1)
    kernel.raise_irq(17, 1)
    kernel.run_until_idle(timeout_ms=5000)
    text = kernel.read("/proc/interrupts")
    lines = text.splitlines()
    assert lines[0] == "           CPU0       CPU1       "
    assert lines[1] == " 17:          0          2   IO-APIC  17-edge      mydev"
    assert [line[:4] for line in lines[2:]] == ["NMI:", "LOC:", "SPU:", "PMI:", "IWI:", "RTR:",
                                                "RES:", "CAL:", "TLB:", "ERR:", "MIS:"]
    assert "softirq" not in text.lower()


def test_freed_line_keeps_its_counts_row(sim: Kernel) -> None:
    """A line whose handlers are gone still shows its counts, without a name (proc.c)."""
    sim.call(request_irq, 17, lambda i, d: IRQ_HANDLED, 0, "mydev", "d")
    sim.raise_irq(17)
    sim.call(free_irq, 17, "d")
    assert irq_row(sim, 17) == " 17:          1          0   IO-APIC  17-edge    "


def test_edge_line_raised_while_running_elsewhere_is_run_again_by_that_cpu(sim: Kernel) -> None:
    """handle_edge_irq: an interrupt arriving while another CPU runs the handler is marked
    pending; that CPU runs the handler again; counted once, on the first CPU."""
    log = []

    def h(irq: int, dev: Any) -> int:
        log.append((sim.now_ns, smp_processor_id()))
        mdelay(2)
        return IRQ_HANDLED

    sim.call(request_irq, 17, h, 0, "mydev", "d")
    sim.raise_irq(17, 0)
    sim.raise_irq(17, 1)
    sim.run_until_idle()
    assert log == [(0, 0), (2 * MS, 0)]
    assert irq_counts(sim, 17) == [1, 0]


def test_a_failed_load_releases_its_irq_as_free_irq_would(kernel: Kernel) -> None:
    """The rollback of a failed init shuts the line down exactly as free_irq()
    does in a clean unload: no action, depth 1, masked, nothing pending."""
    def line_state() -> tuple[int, int, bool, bool]:
        d = kernel.irq.descs[44]
        return len(d.actions), d.depth, d.masked, d.pending

    with pytest.raises(ModuleLoadError):
        kernel.insmod(module_path("failing_init.py"))
    after_rollback = line_state()
    kernel.insmod(module_path("failing_init.py"), fail=0)
    kernel.rmmod("failing_init")  # its exit calls free_irq(44, ...)
    assert after_rollback == line_state() == (0, 1, True, False)
