"""Execution contexts: preempt_count and every in_*() predicate, seen from inside
each kind of kernel code, on both engines (reference §1.1, §1.2, §3.4)."""

from __future__ import annotations

from typing import Any

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import module_path

FIELDS = ("where", "comm", "preempt_count", "in_interrupt", "in_hardirq", "in_irq", "in_softirq",
          "in_serving_softirq", "in_task", "in_atomic", "irqs_disabled", "cpu")


def ctx(where: str, comm: str, pc: int, *, interrupt: bool, hardirq: bool = False,
        softirq: bool = False, serving: bool = False, task: bool, atomic: bool,
        irqs_off: bool = False, cpu: int = 0) -> dict[str, Any]:
    return dict(zip(FIELDS, (where, comm, pc, interrupt, hardirq, hardirq, softirq, serving, task,
                             atomic, irqs_off, cpu), strict=True))


def seen(mod: Any, where: str) -> list[dict[str, Any]]:
    return [dict(zip(FIELDS, s, strict=True)) for s in mod.module.seen if s[0] == where]


def load_probe(k: Kernel) -> Any:
    mod = k.insmod(module_path("ctx_probe.py"))
    k.run_until_idle(timeout_ms=5000)
    return mod


def test_init_runs_in_process_context_of_insmod(kernel: Kernel) -> None:
    """module_init runs in task context as insmod: nothing atomic, IRQs on."""
    mod = load_probe(kernel)
    assert seen(mod, "init") == [ctx("init", "insmod", 0, interrupt=False, task=True,
                                     atomic=False)]


def test_exit_runs_in_process_context_of_rmmod(kernel: Kernel) -> None:
    """module_exit runs in task context as rmmod."""
    mod = load_probe(kernel)
    kernel.rmmod("ctx_probe")
    assert seen(mod, "exit") == [ctx("exit", "rmmod", 0, interrupt=False, task=True,
                                     atomic=False)]


def test_bh_disabled_task_is_in_interrupt_but_still_in_task(kernel: Kernel) -> None:
    """local_bh_disable adds 0x200: in_softirq/in_interrupt/in_atomic, yet in_task."""
    mod = load_probe(kernel)
    assert seen(mod, "bh_disabled") == [ctx("bh_disabled", "insmod", 0x200, interrupt=True,
                                            softirq=True, task=True, atomic=True)]


def test_spinlocks_make_the_context_atomic(kernel: Kernel) -> None:
    """spin_lock adds 1, spin_lock_bh 0x201, spin_lock_irqsave 1 and IRQs off; unlock undoes it."""
    mod = load_probe(kernel)
    assert seen(mod, "spin_lock") == [ctx("spin_lock", "insmod", 1, interrupt=False, task=True,
                                          atomic=True)]
    assert seen(mod, "spin_lock_bh") == [ctx("spin_lock_bh", "insmod", 0x201, interrupt=True,
                                             softirq=True, task=True, atomic=True)]
    assert seen(mod, "spin_lock_irqsave") == [ctx("spin_lock_irqsave", "insmod", 1,
                                                  interrupt=False, task=True, atomic=True,
                                                  irqs_off=True)]
    assert seen(mod, "unlocked") == [ctx("unlocked", "insmod", 0, interrupt=False, task=True,
                                         atomic=False)]


def test_hard_irq_handler_context(kernel: Kernel) -> None:
    """A handler runs with HARDIRQ_OFFSET added to the idle task it interrupted, IRQs off."""
    mod = load_probe(kernel)
    kernel.raise_irq(40, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    # the idle task runs with preemption disabled, hence 0x10001
    assert seen(mod, "hardirq") == [ctx("hardirq", "swapper/1", 0x10001, interrupt=True,
                                        hardirq=True, task=False, atomic=True, irqs_off=True,
                                        cpu=1)]


def test_tasklet_raised_by_a_handler_runs_at_irq_exit(kernel: Kernel) -> None:
    """A tasklet scheduled in a hard IRQ runs right after it, serving softirq, IRQs on."""
    mod = load_probe(kernel)
    kernel.raise_irq(41, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert [s["where"] for s in seen(mod, "hardirq") + seen(mod, "tasklet")] == \
        ["hardirq", "tasklet"]
    assert seen(mod, "tasklet") == [ctx("tasklet", "swapper/1", 0x101, interrupt=True,
                                        softirq=True, serving=True, task=False, atomic=True,
                                        cpu=1)]


def test_tasklet_scheduled_from_a_task_runs_in_ksoftirqd(kernel: Kernel) -> None:
    """From process context tasklet_schedule wakes ksoftirqd/N of the same CPU."""
    mod = load_probe(kernel)
    kernel.call(L.tasklet_schedule, mod.module.my_tasklet, cpu=1)
    kernel.run_until_idle(timeout_ms=5000)
    assert seen(mod, "tasklet") == [ctx("tasklet", "ksoftirqd/1", 0x100, interrupt=True,
                                        softirq=True, serving=True, task=False, atomic=True,
                                        cpu=1)]


def test_work_item_runs_in_a_kworker_of_its_cpu(kernel: Kernel) -> None:
    """A work item runs in process context on a kworker/N:M of the CPU it was queued on."""
    mod = load_probe(kernel)
    kernel.call(L.schedule_work_on, 1, mod.module.my_work)
    kernel.run_until_idle(timeout_ms=5000)
    (s,) = seen(mod, "work")
    assert s["comm"].startswith("kworker/1:")
    assert s == ctx("work", s["comm"], 0, interrupt=False, task=True, atomic=False, cpu=1)


def test_local_bh_enable_runs_pending_softirqs_at_once(kernel: Kernel) -> None:
    """A tasklet scheduled with BH disabled runs inside local_bh_enable, in the same task."""
    mod = kernel.insmod(module_path("bh_order.py"))
    kernel.run_until_idle(timeout_ms=5000)
    assert mod.module.order == [("scheduled", "insmod", False), ("tasklet", "insmod", True),
                                ("enabled", "insmod", False)]


def test_local_irq_save_restore_nest(kernel: Kernel) -> None:
    """local_irq_save returns the previous state; restoring the inner flags keeps IRQs off."""

    def nest() -> list[object]:
        out: list[object] = [L.irqs_disabled()]
        outer = L.local_irq_save()
        out.append(L.irqs_disabled())
        inner = L.local_irq_save()
        out.append(inner != outer)
        L.local_irq_restore(inner)
        out.append(L.irqs_disabled())
        L.local_irq_restore(outer)
        out.append(L.irqs_disabled())
        L.local_irq_disable()
        out.append(L.irqs_disabled())
        L.local_irq_enable()
        out.append(L.irqs_disabled())
        return out

    assert kernel.call(nest) == [False, True, True, True, False, True, False]


def test_smp_processor_id_is_the_cpu_of_the_task(kernel: Kernel) -> None:
    """Process context bound to CPU 1 sees smp_processor_id() == 1."""
    assert kernel.call(L.smp_processor_id, cpu=1) == 1
    assert kernel.call(L.smp_processor_id, cpu=0) == 0


def test_current_outside_modules_is_the_calling_task(kernel: Kernel) -> None:
    """Kernel.call runs in a task named python3 by default, with its own pid."""
    comm, pid = kernel.call(lambda: (L.current.comm, L.current.pid))
    assert comm == "python3"
    assert pid >= 1000


def test_preempt_disable_is_counted(kernel: Kernel) -> None:
    """preempt_disable/enable nest in the low byte of preempt_count."""

    def nest() -> list[int]:
        out = [L.preempt_count()]
        L.preempt_disable()
        L.preempt_disable()
        out.append(L.preempt_count())
        out.append(int(L.in_atomic()))
        L.preempt_enable()
        L.preempt_enable()
        out.append(L.preempt_count())
        return out

    assert kernel.call(nest) == [0, 2, 1, 0]
