"""The narrow interface between the kernel model and an engine.

The kernel model (softirqs, tasklets, timers, workqueues, locks) is written
once against this interface.  An engine decides only:

* who runs a kernel thread (a greenlet in ``sim``, an OS thread in ``real``)
  and what "give up the CPU until woken" means (``schedule``/``wake_up``);
* how time passes (``now_ns``, ``busy_wait``, ``hrtimer_start``);
* how a hard interrupt reaches a CPU (``deliver_irq``) and what "interrupts
  disabled on this CPU" excludes (``local_irq_disable``/``local_irq_enable``);
* what a raw spinlock does when it is contended (``RawLock``).

Everything that runs kernel code goes through :meth:`Kernel.do_irq`,
:meth:`Sched.run_task` and the softirq loop, so both engines call handlers
from the same few places.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import ExecCtx
    from ..kernel import Kernel
    from ..task import Task

IrqFn = Callable[["ExecCtx", Any], None]


class Halted(BaseException):
    """Raised in kernel threads still blocked when the kernel halts: it unwinds
    them.  A BaseException so that module code's ``except Exception`` cannot
    swallow it."""


class HrTimer:
    """A high-resolution timer: ``fn(ctx, timer)`` runs in hard-IRQ context on
    ``cpu`` at ``expires_ns`` (kernel/time/hrtimer.c, much simplified)."""

    __slots__ = ("fn", "cpu", "expires_ns", "active", "e_entry", "name")

    def __init__(self, fn: IrqFn, cpu: int, name: str = "") -> None:
        self.fn = fn
        self.cpu = cpu
        self.expires_ns = 0
        self.active = False
        self.e_entry: Any = None
        self.name = name


class RawLock(ABC):
    """A raw spinlock: mutual exclusion between CPUs, never sleeps."""

    owner: ExecCtx | None

    @abstractmethod
    def acquire(self, ctx: ExecCtx) -> None: ...

    @abstractmethod
    def try_acquire(self, ctx: ExecCtx) -> bool: ...

    @abstractmethod
    def release(self, ctx: ExecCtx) -> None: ...


class Engine(ABC):
    """What the kernel model needs from whoever runs it."""

    name: str

    def __init__(self, kernel: Kernel, ncpus: int, seed: int) -> None:
        self.kernel = kernel
        self.ncpus = ncpus
        self.seed = seed

    # --- lifecycle ------------------------------------------------------
    @abstractmethod
    def boot(self) -> None: ...

    @abstractmethod
    def halt(self) -> None: ...

    @abstractmethod
    def boot_ctx(self) -> ExecCtx:
        """The context boot-time code runs in (CPU 0's idle task)."""

    def start(self) -> None:
        """Boot is over: start the engine's own threads, if it has any."""

    # --- time -----------------------------------------------------------
    @abstractmethod
    def now_ns(self) -> int: ...

    @abstractmethod
    def busy_wait(self, ctx: ExecCtx, ns: int) -> None:
        """Occupy the CPU of ``ctx`` for ``ns`` (mdelay and friends)."""

    @abstractmethod
    def hrtimer_start(self, timer: HrTimer, expires_ns: int) -> None: ...

    @abstractmethod
    def hrtimer_cancel(self, timer: HrTimer) -> bool: ...

    # --- threads --------------------------------------------------------
    @abstractmethod
    def start_task(self, task: Task) -> None:
        """Make a new task runnable; it will run ``kernel.sched.run_task(task)``."""

    @abstractmethod
    def schedule(self, ctx: ExecCtx) -> None:
        """The current task gives up its CPU until woken (if its state says so)."""

    @abstractmethod
    def wake_up(self, task: Task) -> bool:
        """Make a sleeping task runnable; False if it was already running."""

    @abstractmethod
    def yield_cpu(self, ctx: ExecCtx) -> None:
        """Let other runnable tasks of this CPU run first (cond_resched)."""

    @abstractmethod
    def spin_park(self, ctx: ExecCtx, why: str) -> None:
        """Spin on the CPU of ``ctx`` (keeping it busy, interrupts still taken)
        until :meth:`unpark` of its task or a wakeup.  An engine may also
        return spuriously: callers re-check their condition in a loop."""

    def spinning(self) -> list[tuple[int, Task, int]]:
        """(cpu, task, since_ns) of each CPU whose current context spins in
        :meth:`spin_park` with its task running (not asleep in atomic context).
        Only an engine that can tell a hang (sim) needs it."""
        return []

    @abstractmethod
    def unpark(self, task: Task) -> None:
        """Let a task spinning in :meth:`spin_park` look at its condition again."""

    # --- interrupts -----------------------------------------------------
    @abstractmethod
    def deliver_irq(self, cpu: int, fn: IrqFn, arg: Any) -> None:
        """A hard interrupt for ``cpu``: runs ``fn`` via Kernel.do_irq."""

    @abstractmethod
    def local_irq_disable(self, ctx: ExecCtx) -> None: ...

    @abstractmethod
    def local_irq_enable(self, ctx: ExecCtx) -> None: ...

    @abstractmethod
    def new_raw_lock(self) -> RawLock: ...

    @abstractmethod
    def cpu_lock(self, cpu: int) -> RawLock:
        """The lock that makes the softirqs of one CPU mutually exclusive."""

    # --- driving --------------------------------------------------------
    @abstractmethod
    def run_for(self, ns: int) -> None: ...

    @abstractmethod
    def run_until_idle(self, timeout_ns: int) -> None: ...

    @abstractmethod
    def run_task_to_completion(self, task: Task) -> None:
        """Start ``task`` and return when it has exited (insmod, rmmod, call)."""

    def foreign_thread(self) -> bool:
        """Is the caller a thread the engine cannot run kernel code in?"""
        return False

    def defer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the engine's own thread as soon as it can."""
        fn()

    def after_irq_assert(self) -> None:
        """Called by Kernel.raise_irq after deliver_irq (sim: run this instant)."""

    @abstractmethod
    def cpus_idle(self) -> bool:
        """No CPU runs anything but its idle task and nothing waits to run."""

    def cpu_states(self) -> list[str]:
        """What the CPUs are doing, one line each, for reports."""
        return []

    def task_cpu_ns(self, task: Task) -> int | None:
        """CPU time the task's thread has used, if the engine can measure it."""
        return None

    def need_resched(self, cpu: int) -> bool:
        """TIF_NEED_RESCHED of ``cpu``'s current task."""
        return False

    def advance_idle(self, ns: int) -> None:
        """Let ``ns`` pass with nothing to do (sim only: used by hang reports)."""
