"""Locks, waiting, atomics, kmalloc, and the sleeping-in-atomic splat
(reference §1.3, §1.4; API.md §3 "locking and waiting", "memory")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import IRQ_FROM_IDLE, messages, module_path, unoffset

HZ = 250


# ----------------------------------------------------------------------
# helpers


def splats(k: Kernel) -> list[list[str]]:
    """Each sleeping-in-atomic splat: its lines (no timestamps), up to the end of
    its Python traceback."""
    lines = messages(k)
    out = []
    for i, line in enumerate(lines):
        if line.startswith("BUG: sleeping function called from invalid context"):
            j = lines.index("Python traceback (most recent call last):", i) + 1
            while j < len(lines) and lines[j].startswith("  "):
                j += 1
            out.append(lines[i:j])
    return out


def pid_of(k: Kernel, comm: str) -> int:
    (task,) = k.sched.find(comm)
    return task.pid


def splat_head(path: str, line: int, *, irqs_off: int, pid: int, comm: str,
               pc: int) -> list[str]:
    return [
        f"BUG: sleeping function called from invalid context at {path}:{line}",
        f"in_atomic(): 1, irqs_disabled(): {irqs_off}, non_block: 0, pid: {pid}, name: {comm}",
        f"preempt_count: {pc:x}, expected: 0",
        "RCU nest depth: 0, expected: 0",
    ]


HARDWARE = "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)"


def dump_top(pid: int, comm: str, stack: str, what: str) -> list[str]:
    """dump_stack()'s first lines, down to the sleeping function."""
    return [f"CPU: 0 UID: 0 PID: {pid} Comm: {comm} Tainted: G           O       "
            "6.12.0-bottomhalf #1",
            HARDWARE, "Call Trace:", f" <{stack}>", " dump_stack_lvl", " __might_resched",
            f" {what}"]


# the frames of a module's init, below the module's own
INSMOD_FRAMES = [" do_init_module", " load_module", " do_syscall_64",
                 " entry_SYSCALL_64_after_hwframe", " </TASK>"]


# ----------------------------------------------------------------------
# the splat, exactly, on sim


def test_msleep_in_a_tasklet_splat_exact(sim: Kernel) -> None:
    """msleep in a tasklet (ksoftirqd) logs the full might_sleep splat, then keeps going."""
    path = module_path("sleep_in_tasklet.py")
    sim.insmod(path)
    sim.run_until_idle()
    pid = pid_of(sim, "ksoftirqd/0")
    (splat,) = splats(sim)
    assert unoffset(splat) == [
        *splat_head(path, 9, irqs_off=0, pid=pid, comm="ksoftirqd/0", pc=0x100),
        *dump_top(pid, "ksoftirqd/0", "TASK", "msleep"),
        " sleepy_tasklet+0x?/0x? [sleep_in_tasklet]",
        " tasklet_action_common",
        " tasklet_action",
        " handle_softirqs",
        " run_ksoftirqd",
        " kthread",
        " </TASK>",
        "bottomhalf: msleep() may sleep and was called from softirq context "
        "(in sleepy_tasklet [sleep_in_tasklet])",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 9, in sleepy_tasklet',
        "    msleep(10)",
    ]
    stamps = [line[:14] for line in sim.dmesg() if "sleeping function" in line
              or "still running" in line]
    assert stamps == ["[    0.000000]", "[    0.020000]"]
    assert "W" in sim.taint


def test_mutex_lock_in_hard_irq_splat_exact(sim: Kernel) -> None:
    """mutex_lock in a hard-IRQ handler: IRQs off, preempt_count 0x10001 on the idle task."""
    path = module_path("mutex_in_irq.py")
    mod = sim.insmod(path)
    sim.raise_irq(42)
    sim.run_until_idle()
    (splat,) = splats(sim)
    assert unoffset(splat) == [
        *splat_head(path, 10, irqs_off=1, pid=0, comm="swapper/0", pc=0x10001),
        *dump_top(0, "swapper/0", "IRQ", "mutex_lock"),
        " mutex_irq_handler+0x?/0x? [mutex_in_irq]",
        " handle_irq_event_percpu",
        " handle_irq_event",
        " handle_edge_irq",
        " handle_irq_desc",
        *IRQ_FROM_IDLE,
        "bottomhalf: mutex_lock() may sleep and was called from hard-IRQ context "
        "(in mutex_irq_handler [mutex_in_irq])",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 10, in mutex_irq_handler',
        "    mutex_lock(my_mutex)",
    ]
    assert L.atomic_read(mod.module.handled) == 1


def test_kmalloc_gfp_kernel_under_spinlock_splat_exact(sim: Kernel) -> None:
    """kmalloc(GFP_KERNEL) under spin_lock: preempt_count 1 in insmod; once per second."""
    path = module_path("kmalloc_locked.py")
    sim.insmod(path)
    (splat,) = splats(sim)  # two calls at the same instant: rate-limited to one
    assert unoffset(splat) == [
        *splat_head(path, 11, irqs_off=0, pid=1000, comm="insmod", pc=1),
        *dump_top(1000, "insmod", "TASK", "kmalloc"),
        " alloc_locked+0x?/0x? [kmalloc_locked]",
        " kmalloc_locked_init+0x?/0x? [kmalloc_locked]",
        *INSMOD_FRAMES,
        "bottomhalf: kmalloc() may sleep and was called from atomic context "
        "(in alloc_locked [kmalloc_locked])",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 16, in kmalloc_locked_init',
        "    alloc_locked(GFP_KERNEL)",
        f'  File "{path}", line 11, in alloc_locked',
        "    buffers.append(kmalloc(64, flags))",
    ]
    assert messages(sim)[-1] == "kmalloc_locked: loaded"


def test_wait_for_completion_with_bh_disabled_splat_exact(sim: Kernel) -> None:
    """wait_for_completion with BH disabled splats even when it would not sleep."""
    path = module_path("wait_bh_off.py")
    sim.insmod(path)
    (splat,) = splats(sim)
    assert unoffset(splat) == [
        *splat_head(path, 11, irqs_off=0, pid=1000, comm="insmod", pc=0x200),
        *dump_top(1000, "insmod", "TASK", "wait_for_completion"),
        " wait_bh_off_init+0x?/0x? [wait_bh_off]",
        *INSMOD_FRAMES,
        "bottomhalf: wait_for_completion() may sleep and was called from BH-disabled context "
        "(in wait_bh_off_init [wait_bh_off])",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 11, in wait_bh_off_init',
        "    wait_for_completion(done)",
    ]


def test_splat_is_rate_limited_to_once_per_second(sim: Kernel) -> None:
    """__might_resched prints at most once per HZ: not at 999 ms, again at 1000 ms."""
    mod = sim.insmod(module_path("kmalloc_locked.py"))
    sim.run_for(999)
    sim.call(mod.module.alloc_locked, L.GFP_KERNEL)
    assert len(splats(sim)) == 1
    sim.run_for(1)
    sim.call(mod.module.alloc_locked, L.GFP_KERNEL)
    assert len(splats(sim)) == 2
    assert sim.dmesg()[-1].startswith("[    1.000000] ")
    assert len(mod.module.buffers) == 4  # every allocation still succeeded


# ----------------------------------------------------------------------
# the splat on both engines: who, what, and that the kernel goes on


@pytest.mark.parametrize("name, irq, comm, pc, irqs_off", [
    ("sleep_in_tasklet", None, "ksoftirqd/0", "100", "0"),
    ("mutex_in_irq", 42, "swapper/0", "10001", "1"),
    ("kmalloc_locked", None, "insmod", "1", "0"),
    ("wait_bh_off", None, "insmod", "200", "0"),
])
def test_sleeping_call_in_atomic_context_splats(kernel: Kernel, name: str, irq: int | None,
                                                comm: str, pc: str, irqs_off: str) -> None:
    """Each sleeping call from atomic context logs one splat naming the task and count."""
    kernel.insmod(module_path(f"{name}.py"))
    if irq is not None:
        kernel.raise_irq(irq)
    kernel.run_until_idle(timeout_ms=5000)
    (splat,) = splats(kernel)
    assert splat[0].startswith(f"BUG: sleeping function called from invalid context at "
                               f"{module_path(name + '.py')}:")
    assert splat[1].startswith(f"in_atomic(): 1, irqs_disabled(): {irqs_off}, non_block: 0, ")
    assert splat[1].endswith(f"name: {comm}")
    assert splat[2] == f"preempt_count: {pc}, expected: 0"
    assert splat[3] == "RCU nest depth: 0, expected: 0"
    assert "W" in kernel.taint


def test_kernel_keeps_running_after_a_splat(kernel: Kernel) -> None:
    """The sleeping tasklet finishes, and the kernel loads and unloads modules afterwards."""
    kernel.insmod(module_path("sleep_in_tasklet.py"))
    kernel.run_until_idle(timeout_ms=5000)
    kernel.rmmod("sleep_in_tasklet")
    kernel.insmod(module_path("wait_bh_off.py"))
    kernel.rmmod("wait_bh_off")
    assert "sleepy_tasklet: still running" in messages(kernel)
    assert kernel.lsmod() == []


def test_gfp_atomic_in_atomic_context_does_not_splat(kernel: Kernel) -> None:
    """GFP_ATOMIC and GFP_NOWAIT never sleep, so they are fine under a spinlock."""
    mod = kernel.insmod(module_path("kmalloc_locked.py"))
    before = len(splats(kernel))
    kernel.call(mod.module.alloc_locked, L.GFP_ATOMIC)
    kernel.call(mod.module.alloc_locked, L.GFP_NOWAIT)
    assert len(splats(kernel)) == before
    assert [len(b) for b in mod.module.buffers] == [64, 64, 64, 64]


# ----------------------------------------------------------------------
# mutexes


def test_mutex_serialises_two_threads(kernel: Kernel) -> None:
    """Two kthreads holding a mutex across msleep never overlap; both finish."""
    events: list[tuple[str, str]] = []
    m = L.DEFINE_MUTEX()

    def worker(done: Any) -> int:
        for _ in range(2):
            L.mutex_lock(m)
            events.append(("enter", L.current.comm))
            L.msleep(5)
            events.append(("exit", L.current.comm))
            L.mutex_unlock(m)
        L.complete(done)
        return 0

    def scenario() -> None:
        done = [L.DECLARE_COMPLETION(), L.DECLARE_COMPLETION()]
        L.kthread_run(worker, done[0], "lk-a")
        L.kthread_run(worker, done[1], "lk-b")
        for d in done:
            L.wait_for_completion(d)

    kernel.call(scenario)
    assert len(events) == 8
    for i in range(0, 8, 2):
        assert events[i][0] == "enter" and events[i + 1] == ("exit", events[i][1])
    assert sorted(c for e, c in events if e == "enter") == ["lk-a", "lk-a", "lk-b", "lk-b"]
    assert splats(kernel) == []


def test_mutex_trylock_and_is_locked(kernel: Kernel) -> None:
    """mutex_trylock returns 1 on a free mutex and 0 on a held one."""
    m = L.DEFINE_MUTEX()

    def scenario() -> list[int]:
        out = [int(L.mutex_is_locked(m)), L.mutex_trylock(m), int(L.mutex_is_locked(m))]
        got: list[int] = []
        done = L.DECLARE_COMPLETION()

        def other(_: Any) -> int:
            got.append(L.mutex_trylock(m))
            L.complete(done)
            return 0

        L.kthread_run(other, None, "trylock")
        L.wait_for_completion(done)
        out += got
        L.mutex_unlock(m)
        out.append(int(L.mutex_is_locked(m)))
        return out

    assert kernel.call(scenario) == [0, 1, 1, 0, 0]


def test_mutex_unlock_by_non_owner_warns_once(kernel: Kernel) -> None:
    """DEBUG_LOCKS_WARN_ON fires for the first bad unlock, then lock debugging is off."""
    m = L.DEFINE_MUTEX()
    kernel.call(L.mutex_lock, m)
    kernel.call(L.mutex_unlock, m)  # another task (pid) unlocks it
    kernel.call(L.mutex_lock, m)
    kernel.call(L.mutex_unlock, m)
    warned = [x for x in messages(kernel) if x.startswith("DEBUG_LOCKS_WARN_ON")]
    assert warned == ["DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)"]
    assert not kernel.debug_locks
    assert not L.mutex_is_locked(m)


# ----------------------------------------------------------------------
# spinlocks


def test_spin_trylock_and_is_locked(kernel: Kernel) -> None:
    """spin_trylock takes a free lock (count +1) and fails on a held one."""
    lock = L.DEFINE_SPINLOCK()

    def scenario() -> list[int]:
        out = [L.spin_trylock(lock), L.preempt_count(), L.spin_trylock(lock),
               int(L.spin_is_locked(lock))]
        L.spin_unlock(lock)
        out += [L.preempt_count(), int(L.spin_is_locked(lock))]
        return out

    assert kernel.call(scenario) == [1, 1, 0, 1, 0, 0]


def test_spin_unlock_misuse_is_reported_by_spinlock_debugging(kernel: Kernel) -> None:
    """Unlocking a free lock, or one another task holds: spin_bug()'s report, kernel goes on."""
    lock = L.DEFINE_SPINLOCK()
    kernel.call(L.spin_unlock, lock)
    kernel.call(L.spin_lock, lock)  # this task exits holding it
    kernel.call(L.spin_unlock, lock)
    bugs = [m for m in messages(kernel) if m.startswith("BUG: spinlock ")]
    assert [re.sub(r"/\d+$", "/PID", b) for b in bugs] == [
        "BUG: spinlock already unlocked on CPU#0, python3/PID",
        "BUG: spinlock wrong owner on CPU#0, python3/PID"]
    assert kernel.call(L.spin_is_locked, lock) is False


# ----------------------------------------------------------------------
# completions


def test_wait_for_completion_timeout_returns_zero_on_timeout(kernel: Kernel) -> None:
    """Nobody completes: 0 comes back after the timeout has passed."""

    def scenario() -> tuple[int, int]:
        c = L.DECLARE_COMPLETION()
        start = L.jiffies()
        ret = L.wait_for_completion_timeout(c, 10)
        return ret, L.jiffies() - start

    ret, waited = kernel.call(scenario)
    assert ret == 0
    assert waited >= 10
    if kernel.engine_name == "sim":
        assert waited == 11  # a level-0 timer due at E runs at the tick of E + 1


def test_wait_for_completion_timeout_returns_jiffies_left(kernel: Kernel) -> None:
    """Completed early by a timer: the jiffies left come back (at least 1)."""

    def scenario() -> int:
        c = L.DECLARE_COMPLETION()
        t = L.timer_list()
        L.timer_setup(t, lambda _t: L.complete(c), 0)
        L.mod_timer(t, L.jiffies() + 3)
        ret = L.wait_for_completion_timeout(c, 25)
        L.del_timer_sync(t)
        return ret

    ret = kernel.call(scenario)
    assert 1 <= ret <= 25
    if kernel.engine_name == "sim":
        assert ret == 21  # the timer due at +3 runs at the tick of +4


def test_wait_for_completion_timeout_on_done_completion(kernel: Kernel) -> None:
    """Already completed: no wait, the whole timeout comes back; each complete() counts once."""

    def scenario() -> list[int]:
        c = L.DECLARE_COMPLETION()
        L.complete(c)
        L.complete(c)
        out = [L.wait_for_completion_timeout(c, 7), L.wait_for_completion_timeout(c, 7)]
        out.append(L.wait_for_completion_timeout(c, 0))
        out.append(int(L.try_wait_for_completion(c)))
        return out

    assert kernel.call(scenario) == [7, 7, 0, 0]


def test_complete_all_releases_every_waiter_until_reinit(kernel: Kernel) -> None:
    """complete_all wakes all waiters and stays done until reinit_completion."""
    woke: list[str] = []

    def scenario() -> list[bool]:
        c = L.DECLARE_COMPLETION()
        finished = [L.DECLARE_COMPLETION(), L.DECLARE_COMPLETION()]

        def waiter(i: int) -> int:
            L.wait_for_completion(c)
            woke.append(L.current.comm)
            L.complete(finished[i])
            return 0

        L.kthread_run(waiter, 0, "waiter-0")
        L.kthread_run(waiter, 1, "waiter-1")
        L.msleep(10)
        before = len(woke)
        L.complete_all(c)
        for f in finished:
            L.wait_for_completion(f)
        out = [before == 0, L.completion_done(c), L.try_wait_for_completion(c)]
        L.reinit_completion(c)
        out.append(L.completion_done(c))
        return out

    assert kernel.call(scenario) == [True, True, True, False]
    assert sorted(woke) == ["waiter-0", "waiter-1"]


# ----------------------------------------------------------------------
# wait queues


def test_wait_event_sleeps_until_condition_and_wake_up(kernel: Kernel) -> None:
    """wait_event returns once a timer sets the condition and calls wake_up."""
    state = {"ready": False}

    def scenario() -> int:
        wq = L.DECLARE_WAIT_QUEUE_HEAD()
        t = L.timer_list()

        def fire(_t: Any) -> None:
            state["ready"] = True
            L.wake_up(wq)

        L.timer_setup(t, fire, 0)
        start = L.jiffies()
        L.mod_timer(t, start + 5)
        L.wait_event(wq, lambda: state["ready"])
        return L.jiffies() - start

    waited = kernel.call(scenario)
    assert state["ready"]
    if kernel.engine_name == "sim":
        assert waited == 6


def test_wake_up_all_wakes_every_waiter(kernel: Kernel) -> None:
    """Two tasks in wait_event both return after one wake_up_all."""
    woke: list[str] = []

    def scenario() -> None:
        wq = L.DECLARE_WAIT_QUEUE_HEAD()
        go = {"flag": False}
        finished = [L.DECLARE_COMPLETION(), L.DECLARE_COMPLETION()]

        def waiter(i: int) -> int:
            L.wait_event(wq, lambda: go["flag"])
            woke.append(L.current.comm)
            L.complete(finished[i])
            return 0

        L.kthread_run(waiter, 0, "wq-waiter-0")
        L.kthread_run(waiter, 1, "wq-waiter-1")
        L.msleep(10)
        go["flag"] = True
        L.wake_up_all(wq)
        for f in finished:
            L.wait_for_completion(f)

    kernel.call(scenario)
    assert sorted(woke) == ["wq-waiter-0", "wq-waiter-1"]


def test_wait_event_timeout_return_values(kernel: Kernel) -> None:
    """0 when it times out, the timeout when already true, 1 for true with timeout 0."""

    def scenario() -> list[int]:
        wq = L.DECLARE_WAIT_QUEUE_HEAD()
        return [L.wait_event_timeout(wq, lambda: False, 4),
                L.wait_event_timeout(wq, lambda: True, 9),
                L.wait_event_timeout(wq, lambda: True, 0),
                L.wait_event_timeout(wq, lambda: False, 0)]

    assert kernel.call(scenario) == [0, 9, 1, 0]


def test_wait_event_timeout_returns_jiffies_left_when_woken(kernel: Kernel) -> None:
    """Woken with the condition true before the timeout: the jiffies left, at least 1."""

    def scenario() -> int:
        wq = L.DECLARE_WAIT_QUEUE_HEAD()
        state = {"ready": False}
        t = L.timer_list()

        def fire(_t: Any) -> None:
            state["ready"] = True
            L.wake_up(wq)

        L.timer_setup(t, fire, 0)
        L.mod_timer(t, L.jiffies() + 2)
        return L.wait_event_timeout(wq, lambda: state["ready"], 20)

    left = kernel.call(scenario)
    assert 1 <= left <= 20
    if kernel.engine_name == "sim":
        assert left == 17


def test_wait_event_needs_a_callable_condition(kernel: Kernel) -> None:
    """Passing a plain bool (evaluated once) is refused with a clear TypeError."""
    wq = L.DECLARE_WAIT_QUEUE_HEAD()
    with pytest.raises(TypeError, match="pass the condition as a callable"):
        kernel.call(L.wait_event, wq, True)


# ----------------------------------------------------------------------
# atomics


def test_atomic_operations(kernel: Kernel) -> None:
    """atomic_t arithmetic returns what include/linux/atomic.h specifies."""

    def scenario() -> list[object]:
        v = L.atomic_t()
        out: list[object] = [L.atomic_read(v)]
        L.atomic_set(v, 5)
        L.atomic_inc(v)
        L.atomic_add(10, v)
        L.atomic_sub(3, v)
        L.atomic_dec(v)
        out.append(L.atomic_read(v))
        out += [L.atomic_inc_return(v), L.atomic_dec_return(v), L.atomic_add_return(2, v),
                L.atomic_sub_return(14, v)]
        L.atomic_inc(v)
        out += [L.atomic_dec_and_test(v), L.atomic_dec_and_test(v), L.atomic_inc_and_test(v),
                L.atomic_cmpxchg(v, 0, 9), L.atomic_cmpxchg(v, 1, 7), L.atomic_xchg(v, 3),
                L.atomic_read(v)]
        return out

    assert kernel.call(scenario) == [0, 12, 13, 12, 14, 0, True, False, True, 0, 9, 9, 3]


def test_atomic_inc_from_many_threads_loses_nothing(kernel: Kernel) -> None:
    """Four kthreads incrementing 500 times each leave exactly 2000."""
    v = L.atomic_t()

    def scenario() -> int:
        done = [L.DECLARE_COMPLETION() for _ in range(4)]

        def bump(c: Any) -> int:
            for i in range(500):
                L.atomic_inc(v)
                if i % 100 == 0:
                    L.cond_resched()
            L.complete(c)
            return 0

        for i, c in enumerate(done):
            L.kthread_run(bump, c, "bump-%d", i)
        for c in done:
            L.wait_for_completion(c)
        return L.atomic_read(v)

    assert kernel.call(scenario) == 2000


# ----------------------------------------------------------------------
# kmalloc


def test_kmalloc_kzalloc_kfree(kernel: Kernel) -> None:
    """kmalloc/kzalloc give buffers of the size asked; kfree(None) is allowed."""

    def scenario() -> list[object]:
        a = L.kmalloc(16, L.GFP_KERNEL)
        b = L.kzalloc(8, L.GFP_ATOMIC)
        c = L.kmalloc(0, L.GFP_KERNEL)
        out: list[object] = [len(a), bytes(b), c is not None]
        L.kfree(a)
        L.kfree(b)
        L.kfree(None)
        return out

    assert kernel.call(scenario) == [16, b"\0" * 8, True]


def test_kmalloc_too_large_returns_none_and_warns(kernel: Kernel) -> None:
    """Beyond KMALLOC_MAX_SIZE: NULL and a WARNING, unless __GFP_NOWARN."""
    assert kernel.call(L.kmalloc, L.KMALLOC_MAX_SIZE + 1, L.GFP_KERNEL) is None
    assert sum(line.startswith("WARNING: CPU: 0 PID: ") for line in messages(kernel)) == 1
    assert kernel.call(L.kmalloc, L.KMALLOC_MAX_SIZE + 1, L.GFP_NOWAIT) is None
    assert sum(line.startswith("WARNING: CPU: 0 PID: ") for line in messages(kernel)) == 1
