"""Tasks: kernel threads and the short-lived user processes (insmod, rmmod).

Models the parts of ``struct task_struct`` deferred work cares about: the
name (``comm``, 15 characters as TASK_COMM_LEN allows), the pid, the run
state and the CPU.  Each task owns an :class:`~bottomhalf.context.ExecCtx`.
How a task actually runs (a greenlet in ``sim``, an OS thread in ``real``) is
the engine's business; the engine keeps its own fields in the ``e_*`` slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import ExecCtx

if TYPE_CHECKING:
    from .kernel import Kernel

# include/linux/sched.h task states
TASK_RUNNING = 0x0000
TASK_INTERRUPTIBLE = 0x0001
TASK_UNINTERRUPTIBLE = 0x0002
TASK_DEAD = 0x0080
TASK_NEW = 0x0800

# task->flags
PF_IDLE = 0x00000002
PF_KTHREAD = 0x00200000
PF_WQ_WORKER = 0x00000020

TASK_COMM_LEN = 16


class Task:
    """One schedulable thread of the kernel."""

    __slots__ = (
        "kernel",
        "comm",
        "pid",
        "ctx",
        "state",
        "flags",
        "cpu",
        "bound",
        "fn",
        "worker",
        "wait_desc",
        "exited",
        "result",
        "exc",
        "should_stop",
        "on_exit",
        "sleep_start_ns",
        "se_runtime",
        "busy_since",
        "nvcsw",
        # engine-private
        "e_g",
        "e_go",
        "e_token",
        "e_queued",
        "e_thread",
        "e_lock",
        "e_park",
        "e_sleeping",
        "e_done",
    )

    def __init__(
        self,
        kernel: Kernel,
        comm: str,
        pid: int,
        cpu: int,
        fn: Callable[[], Any] | None,
        *,
        bound: bool = True,
        flags: int = PF_KTHREAD,
        preempt_count: int = 0,
    ) -> None:
        self.kernel = kernel
        self.comm = comm[: TASK_COMM_LEN - 1]
        self.pid = pid
        self.cpu = cpu
        self.bound = bound
        self.fn = fn
        self.flags = flags
        self.state = TASK_NEW
        self.ctx = ExecCtx(kernel, self, cpu, preempt_count)
        self.worker: Any = None
        self.wait_desc = ""
        self.exited = False
        self.result: Any = None
        self.exc: BaseException | None = None
        self.should_stop = False
        self.on_exit: Callable[[Task], None] | None = None
        self.sleep_start_ns = 0
        self.se_runtime = 0  # ns of CPU time burnt in finished busy-waits
        self.busy_since = -1  # start of the busy-wait in progress, -1 if none
        self.nvcsw = 0  # voluntary context switches
        self.e_g: Any = None
        self.e_go = False
        self.e_token: Any = None
        self.e_queued = False
        self.e_thread: Any = None
        self.e_lock: Any = None
        self.e_park: Any = None
        self.e_sleeping = False
        self.e_done: Any = None

    @property
    def is_idle(self) -> bool:
        return bool(self.flags & PF_IDLE)

    def trace_comm(self) -> str:
        """The name ftrace shows: ``<idle>`` for the idle tasks."""
        return "<idle>" if self.flags & PF_IDLE else self.comm

    def __repr__(self) -> str:
        return f"<Task {self.comm}/{self.pid} cpu={self.cpu} state={self.state:#x}>"
