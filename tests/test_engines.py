"""The engines: what runs when, how time passes, and how a kernel stops."""

from __future__ import annotations

import threading

import pytest

from bottomhalf import IdleTimeout, Kernel, KernelHang, KernelStateError
from bottomhalf.linux import (
    IRQ_HANDLED,
    completion,
    free_irq,
    init_completion,
    jiffies,
    ktime_get_ns,
    mdelay,
    mod_timer,
    request_irq,
    smp_processor_id,
    timer_list,
    timer_setup,
    wait_for_completion,
)


def test_busy_wait_is_preempted_by_an_interrupt_and_finishes_late(sim: Kernel) -> None:
    """An IRQ arriving during mdelay(5) runs at once; its own 1 ms extends the busy-wait."""
    log: list[tuple[int, str]] = []

    def handler(irq: int, dev: object) -> int:
        log.append((ktime_get_ns(), "irq start"))
        mdelay(1)
        log.append((ktime_get_ns(), "irq end"))
        return IRQ_HANDLED

    def task() -> None:
        assert request_irq(20, handler, 0, "dev", None) == 0
        log.append((ktime_get_ns(), "busy start"))
        mdelay(5)
        log.append((ktime_get_ns(), "busy end"))

    def device(t: timer_list) -> None:
        from bottomhalf.linux import bh_raise_irq

        bh_raise_irq(20, cpu=0)

    t = timer_list()
    sim.call(lambda: (timer_setup(t, device, 0), mod_timer(t, jiffies())))
    sim.call(task)
    assert log == [
        (0, "busy start"),
        (4_000_000, "irq start"),
        (5_000_000, "irq end"),
        (6_000_000, "busy end"),
    ]


def test_a_kernel_that_can_never_finish_is_reported_not_hung(sim: Kernel) -> None:
    """Waiting for a completion nobody completes: KernelHang and a hung-task report."""
    c = completion()

    def stuck() -> None:
        init_completion(c)
        wait_for_completion(c)

    with pytest.raises(KernelHang, match="wait_for_completion"):
        sim.call(stuck)
    assert any("INFO: task python3:" in line and "blocked for more than 120 seconds" in line
               for line in sim.dmesg())


def test_run_until_idle_gives_up_on_a_periodic_source(sim: Kernel) -> None:
    """A timer that re-arms for ever never lets the kernel idle: IdleTimeout names it."""
    t = timer_list()

    def tick(tl: timer_list) -> None:
        mod_timer(tl, jiffies() + 1)

    sim.call(lambda: (timer_setup(t, tick, 0), mod_timer(t, jiffies() + 1)))
    with pytest.raises(IdleTimeout, match="tick"):
        sim.run_until_idle(timeout_ms=100)
    assert sim.now_ns == 100_000_000


def test_run_for_advances_virtual_time_exactly(sim: Kernel) -> None:
    """run_for moves the sim clock by exactly the duration, even with nothing to do."""
    sim.run_for(2.5)
    assert sim.now_ns == 2_500_000


def test_sim_calls_from_kernel_code_cannot_drive_the_kernel(sim: Kernel) -> None:
    """run_for from inside kernel code is refused with a clear error."""
    with pytest.raises(KernelStateError, match="cannot be called from kernel code"):
        sim.call(lambda: sim.run_for(1))


def test_interrupt_goes_to_the_requested_cpu(kernel: Kernel) -> None:
    """raise_irq(cpu=1) runs the handler on CPU 1."""
    seen: list[int] = []
    dev = object()

    def handler(irq: int, d: object) -> int:
        seen.append(smp_processor_id())
        return IRQ_HANDLED

    assert kernel.call(lambda: request_irq(21, handler, 0, "dev", dev)) == 0
    kernel.raise_irq(21, cpu=1)
    kernel.raise_irq(21, cpu=0)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen == [1, 0]
    assert kernel.call(lambda: free_irq(21, dev)) == "dev"


def test_halt_leaves_no_thread_running() -> None:
    """real: after halt, every thread the kernel started has exited."""
    before = set(threading.enumerate())
    k = Kernel(cpus=2, engine="real").boot()
    k.call(lambda: None)
    k.halt()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_halt_unwinds_a_task_blocked_for_ever() -> None:
    """real: a task waiting on a completion nobody completes is unwound by halt."""
    before = set(threading.enumerate())
    k = Kernel(cpus=1, engine="real").boot()
    c = completion()
    started = threading.Event()

    def stuck(_data: object) -> int:
        started.set()
        wait_for_completion(c)
        return 0

    from bottomhalf.linux import kthread_run

    k.call(lambda: (init_completion(c), kthread_run(stuck, None, "stuck")))
    assert started.wait(5)
    k.halt()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_a_plain_thread_may_call_the_api_on_real(real: Kernel) -> None:
    """real: a program's own thread calls queue-style APIs directly (adopted as a user task)."""
    from bottomhalf.linux import DECLARE_WORK, flush_work, schedule_work

    ran = threading.Event()
    w = DECLARE_WORK(lambda work: ran.set())
    out: list[bool] = []

    def program_thread() -> None:
        out.append(schedule_work(w))
        out.append(flush_work(w))

    th = threading.Thread(target=program_thread)
    th.start()
    th.join(10)
    assert ran.is_set() and out == [True, True]


def test_a_plain_thread_is_refused_when_two_real_kernels_run() -> None:
    """real: with two real kernels up, a plain thread's API call says which to use."""
    from bottomhalf import NotInKernelError
    from bottomhalf.linux import jiffies

    with Kernel(cpus=1, engine="real") as a, Kernel(cpus=1, engine="real") as b:
        errors: list[BaseException] = []

        def program_thread() -> None:
            try:
                jiffies()
            except NotInKernelError as e:
                errors.append(e)

        th = threading.Thread(target=program_thread)
        th.start()
        th.join(10)
        assert len(errors) == 1 and "several real kernels" in str(errors[0])
        assert a.call(jiffies) > 0 and b.call(jiffies) > 0


def test_a_plain_thread_moves_on_to_the_next_real_kernel() -> None:
    """real: a thread adopted by a kernel that halted is adopted afresh by the next one.

    It used to keep the halted kernel's context: its queue_work() on the next
    kernel returned True and the work never ran.
    """
    from bottomhalf import NotInKernelError
    from bottomhalf.linux import INIT_WORK, flush_work, queue_work, system_wq, work_struct

    for _ in range(2):
        with Kernel(cpus=1, engine="real") as k:
            ran: list[Kernel] = []
            w = work_struct()
            INIT_WORK(w, lambda work, ran=ran, k=k: ran.append(k))
            assert queue_work(system_wq, w) is True
            assert flush_work(w) is True
            assert ran == [k]
    # and with no kernel running, the call says so rather than doing nothing
    with pytest.raises(NotInKernelError, match="not running in a bottomhalf kernel"):
        queue_work(system_wq, w)


def test_raise_irq_from_another_thread_on_sim(sim: Kernel) -> None:
    """sim: raise_irq from another thread is taken by the kernel's thread at its next run."""
    seen: list[tuple[int, int]] = []
    dev = object()

    def handler(irq: int, d: object) -> int:
        seen.append((irq, ktime_get_ns()))
        return IRQ_HANDLED

    assert sim.call(lambda: request_irq(22, handler, 0, "dev", dev)) == 0
    sim.run_for(5)
    th = threading.Thread(target=lambda: sim.raise_irq(22))
    th.start()
    th.join(10)
    assert seen == []  # nothing runs a sim kernel but its own thread
    sim.run_for(1)
    assert seen == [(22, 5_000_000)]
    with pytest.raises(Exception, match="IRQ 23 has no handler"):
        errors: list[BaseException] = []

        def bad() -> None:
            try:
                sim.raise_irq(23)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        th = threading.Thread(target=bad)
        th.start()
        th.join(10)
        raise errors[0]
