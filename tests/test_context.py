"""Execution contexts: preempt_count and every in_*() predicate, seen from inside
each kind of kernel code, on both engines (reference §1.1, §1.2, §3.4); and
what happens when a handler raises."""

from __future__ import annotations

from typing import Any

from bottomhalf import Kernel
from bottomhalf import linux as L

from .conftest import messages, module_path, unoffset

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


# ----------------------------------------------------------------------
# exceptions in handlers: an Oops-style report, and the kernel goes on


def oops_heads(k: Kernel) -> list[str]:
    return [line for line in messages(k) if line.startswith("BUG: unhandled Python exception")]


def test_exception_in_irq_handler_is_an_oops_and_the_line_keeps_working(
        kernel: Kernel) -> None:
    """The first interrupt's handler raises: Oops naming it in hard-IRQ context; the next runs."""
    mod = kernel.insmod(module_path("oops_handlers.py"))
    kernel.raise_irq(43)
    kernel.raise_irq(43)
    kernel.run_until_idle(timeout_ms=5000)
    assert oops_heads(kernel) == [
        "BUG: unhandled Python exception in IRQ 43 handler oops_irq [oops_handlers] "
        "(hard-IRQ context): RuntimeError: handler bug on the first interrupt"]
    assert mod.module.ran == ["irq"]
    lines = messages(kernel)
    i = lines.index(oops_heads(kernel)[0])
    assert lines[i + 1] == "Oops: 0000 [#1] PREEMPT SMP NOPTI"
    assert 'raise RuntimeError("handler bug on the first interrupt")' in \
        [line.strip() for line in lines[i:]]
    assert "bottomhalf: Linux would now panic (Kernel panic - not syncing: Fatal exception in " \
           "interrupt); this kernel keeps running" in lines
    assert "D" in kernel.taint


def test_exception_in_tasklet_is_an_oops_and_the_next_tasklet_runs(kernel: Kernel) -> None:
    """A raising tasklet is reported in softirq context; the one queued after it still runs."""
    mod = kernel.insmod(module_path("oops_handlers.py"))
    kernel.call(mod.module.schedule_both)
    kernel.run_until_idle(timeout_ms=5000)
    assert oops_heads(kernel) == [
        "BUG: unhandled Python exception in tasklet bad_tasklet_func [oops_handlers] "
        "(softirq context): ValueError: bad tasklet 7"]
    assert mod.module.ran == ["tasklet"]


def test_exception_in_timer_is_an_oops_and_the_next_timer_runs(kernel: Kernel) -> None:
    """A raising timer callback is reported; the timer due after it still fires."""
    mod = kernel.insmod(module_path("oops_handlers.py"))
    kernel.call(mod.module.arm_timers)
    kernel.run_until_idle(timeout_ms=5000)
    assert oops_heads(kernel) == [
        "BUG: unhandled Python exception in timer bad_timer_func [oops_handlers] "
        "(softirq context): KeyError: 'bad timer'"]
    assert mod.module.ran == ["timer"]


def test_exception_in_work_is_an_oops_and_the_next_work_runs(kernel: Kernel) -> None:
    """A raising work function is reported in process context; the next item still runs."""
    mod = kernel.insmod(module_path("oops_handlers.py"))
    kernel.call(mod.module.queue_works)
    kernel.run_until_idle(timeout_ms=5000)
    assert oops_heads(kernel) == [
        "BUG: unhandled Python exception in work bad_work_func [oops_handlers] "
        "(process context): ZeroDivisionError: bad work"]
    assert mod.module.ran == ["work"]
    kernel.rmmod("oops_handlers")
    assert kernel.lsmod() == []


def test_oops_report_exact_on_sim(sim: Kernel) -> None:
    """The whole report for a raising tasklet in ksoftirqd, line by line."""
    path = module_path("oops_handlers.py")
    mod = sim.insmod(path)
    sim.call(mod.module.schedule_both)
    sim.run_until_idle()
    lines = messages(sim)
    i = lines.index(oops_heads(sim)[0])
    pid = sim.sched.find("ksoftirqd/0")[0].pid
    assert unoffset(lines[i:]) == [
        "BUG: unhandled Python exception in tasklet bad_tasklet_func [oops_handlers] "
        "(softirq context): ValueError: bad tasklet 7",
        "Oops: 0000 [#1] PREEMPT SMP NOPTI",
        f"CPU: 0 UID: 0 PID: {pid} Comm: ksoftirqd/0 Tainted: G           O       "
        "6.12.0-bottomhalf #1",
        "Hardware name: bottomhalf virtual machine (sim engine, 2 CPUs, seed 0)",
        "RIP: 0010:bad_tasklet_func+0x?/0x? [oops_handlers]",
        "Call Trace:",
        " <TASK>",
        " bad_tasklet_func+0x?/0x? [oops_handlers]",
        " tasklet_action_common",
        " tasklet_action",
        " handle_softirqs",
        " run_ksoftirqd",
        " kthread",
        " </TASK>",
        "Modules linked in: oops_handlers(O)",
        "Python traceback (most recent call last):",
        f'  File "{path}", line 28, in bad_tasklet_func',
        '    raise ValueError(f"bad tasklet {data}")',
        "ValueError: bad tasklet 7",
        "Disabling lock debugging due to kernel taint",
        "---[ end trace 0000000000000000 ]---",
        "bottomhalf: Linux would now panic (Kernel panic - not syncing: Fatal exception in "
        "interrupt); this kernel keeps running",
    ]


# ----------------------------------------------------------------------
# unbalanced enables: Linux's own checks and texts


def warnings(k: Kernel) -> list[list[str]]:
    """Each WARN: the line after "cut here" and the WARNING line."""
    msgs = messages(k)
    return [msgs[i + 1:i + 3] for i, m in enumerate(msgs)
            if m == "------------[ cut here ]------------"]


def test_preempt_enable_underflow_is_debug_locks_warn_on_once(sim: Kernel) -> None:
    """preempt_enable() at count 0: DEBUG_LOCKS_WARN_ON(val > preempt_count()), the
    count left alone; lock debugging is then off, so a second one is silent."""
    def body() -> int:
        L.preempt_enable()
        L.preempt_enable()
        return L.preempt_count()

    assert sim.call(body) == 0
    ((message, warning),) = warnings(sim)
    assert message == "DEBUG_LOCKS_WARN_ON(val > preempt_count())"
    assert warning.startswith("WARNING: CPU: 0 PID: 1000 at ")
    assert warning.endswith(" preempt_count_sub+0x0/0x0")
    assert not sim.debug_locks


def test_preempt_enable_under_bh_disable_is_the_spinlock_portion_check(sim: Kernel) -> None:
    """preempt_enable() with only BH disabled (0x200): the preemption bits would
    underflow, which preempt_count_sub() reports with its second check."""
    def body() -> int:
        L.local_bh_disable()
        L.preempt_enable()
        pc = L.preempt_count()
        L.local_bh_enable()
        return pc

    assert sim.call(body) == 0x200
    ((message, _),) = warnings(sim)
    assert message == ("DEBUG_LOCKS_WARN_ON((val < PREEMPT_MASK) && "
                       "!(preempt_count() & PREEMPT_MASK))")


def test_local_bh_enable_without_disable_is_debug_locks_warn_on(sim: Kernel) -> None:
    """local_bh_enable() with BH enabled underflows the count in preempt_count_dec()."""
    sim.call(L.local_bh_enable)
    ((message, warning),) = warnings(sim)
    assert message == "DEBUG_LOCKS_WARN_ON(val > preempt_count())"


def test_local_bh_enable_in_hardirq_is_warn_on_once_without_message(sim: Kernel) -> None:
    """local_bh_disable/enable in a hard-IRQ handler: WARN_ON_ONCE(in_hardirq()),
    which prints no message line, and only for the first interrupt."""
    def handler(irq: int, dev: object) -> int:
        L.local_bh_disable()
        L.local_bh_enable()
        return L.IRQ_HANDLED

    sim.call(L.request_irq, 5, handler, 0, "mydev", None)
    sim.raise_irq(5, cpu=0)
    sim.raise_irq(5, cpu=0)
    sim.run_until_idle()
    ((first, _),) = warnings(sim)
    assert first.startswith("WARNING: CPU: 0 PID: 0 at ")
    assert first.endswith(" __local_bh_enable_ip+0x0/0x0")
