"""Kernel: one machine, its CPUs, clock, engine, subsystems and log.

This is the object users hold (API.md §1).  It owns the engine (``sim`` or
``real``) and the subsystems, which are the same on both engines: the log,
the scheduler services, hard IRQs, softirqs, tasklets, timers, workqueues,
modules, tracing and the kernel files.  Kernel code never calls handlers
directly: every module callback goes through :meth:`Kernel.call_handler`,
which is where exceptions become Oops reports and where calls into an
unloaded module's code become page faults.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from . import report
from .context import ExecCtx, _local, current_ctx
from .engines.base import Engine
from .errors import BottomHalfError, KernelStateError
from .irq import Irq
from .module import Module, Modules
from .printk import LogBuffer, vsprintf
from .procfs import KernelFiles
from .sched import Sched
from .softirq import Softirq
from .symbols import Symbols
from .task import TASK_UNINTERRUPTIBLE, Task
from .tasklet import Tasklets
from .timer import Timers
from .trace import Trace
from .workqueue import Workqueues

T = TypeVar("T")

MAX_CPUS = 64
DEFAULT_IDLE_TIMEOUT_MS = 60_000


class Kernel:
    """A bottomhalf kernel.  ``with Kernel(cpus=2, engine="sim", seed=0) as k: ...``"""

    def __init__(self, *, cpus: int = 2, engine: str = "sim", seed: int = 0) -> None:
        if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= MAX_CPUS:
            raise ValueError(f"cpus must be an integer from 1 to {MAX_CPUS}, not {cpus!r}")
        if engine not in ("sim", "real"):
            raise ValueError(f"engine must be 'sim' or 'real', not {engine!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, not {seed!r}")
        self.ncpus = cpus
        self.engine_name = engine
        self.seed = seed
        self.taint: set[str] = set()
        self.debug_locks = True  # lib/debug_locks.c: lockdep and DEBUG_LOCKS_WARN_ON
        self.oops_count = 0
        self.params: dict[str, Any] = {
            "workqueue.watchdog_thresh": 30,
            "workqueue.cpu_intensive_thresh_us": 10_000,
            "workqueue.power_efficient": False,
            "kernel.hung_task_timeout_secs": 120,
            "kernel.watchdog_thresh": 10,
        }
        self.booted = False
        self.halted = False
        self._sim = engine == "sim"
        self.engine: Engine = None  # type: ignore[assignment]
        self.devices: dict[str, Any] = {}
        self.devices_running: list[Any] = []

    # ------------------------------------------------------------------
    # lifecycle
    def boot(self) -> Kernel:
        if self.booted:
            raise KernelStateError("the kernel is already booted")
        if self.halted:
            raise KernelStateError("a halted kernel cannot boot again: create a new Kernel")
        if self.engine_name == "sim":
            from .engines.sim import SimEngine

            self.engine = SimEngine(self, self.ncpus, self.seed)
        else:
            from .engines.real import RealEngine

            self.engine = RealEngine(self, self.ncpus, self.seed)
        self.log = LogBuffer(self)
        self.sched = Sched(self)
        self.symbols = Symbols(self, self.seed)
        self.trace = Trace(self)
        self.modules = Modules(self)
        self.irq = Irq(self)
        self.softirq = Softirq(self)
        self.tasklets = Tasklets(self)
        self.timers = Timers(self)
        self.wq = Workqueues(self)
        self.files = KernelFiles(self)
        self.engine.boot()
        self.boot_ctx: ExecCtx = self.engine.boot_ctx()
        self._boot_messages()
        self.softirq.start_threads()
        self.wq.init()
        self.engine.start()
        self.booted = True
        return self

    def _boot_messages(self) -> None:
        v = sys.version.split()[0]
        self.log_line(5, f"Linux version {report.UTS_RELEASE} (bottomhalf@{self.engine.name}) "
                         f"(Python {v}) {report.UTS_VERSION} SMP PREEMPT_DYNAMIC")
        self.log_line(6, f"Command line: bottomhalf.engine={self.engine.name} "
                         f"bottomhalf.seed={self.seed} nr_cpus={self.ncpus} HZ=250")
        self.log_line(6, f"smp: Brought up 1 node, {self.ncpus} CPU{'s' if self.ncpus > 1 else ''}")

    def halt(self) -> None:
        """Stop the machine: no thread of it is left running."""
        if not self.booted or self.halted:
            self.halted = True
            return
        self.halted = True
        self.booted = False
        self.engine.halt()

    def __enter__(self) -> Kernel:
        return self.boot()

    def __exit__(self, *exc: object) -> None:
        self.halt()

    def _check_running(self) -> None:
        if not self.booted:
            raise KernelStateError("the kernel is not running: boot() it (or use 'with Kernel()')")

    # ------------------------------------------------------------------
    # time
    @property
    def now_ns(self) -> int:
        if self.engine is None:
            return 0
        return self.engine.now_ns()

    def run_for(self, ms: float) -> None:
        """Let the machine run for ``ms`` milliseconds (virtual in sim)."""
        self._check_running()
        if ms < 0:
            raise ValueError("run_for() needs a duration >= 0")
        self.engine.run_for(int(ms * 1_000_000))

    def run_until_idle(self, timeout_ms: float | None = None) -> None:
        """Return when nothing is pending or running (see API.md §1)."""
        self._check_running()
        t = DEFAULT_IDLE_TIMEOUT_MS if timeout_ms is None else timeout_ms
        self.engine.run_until_idle(int(t * 1_000_000))

    # ------------------------------------------------------------------
    # interrupts from the outside
    def raise_irq(self, irq: int, cpu: int | None = None) -> None:
        """A device asserts line ``irq``: its handlers run in hard-IRQ context."""
        if not self.booted:
            self._check_running()
        desc, target = self.irq.check_raise(irq, cpu)
        if self._sim and self.engine.foreign_thread():
            # sim, from another thread: the kernel's own thread takes it at its
            # current instant the next time it runs.
            self.engine.defer(lambda: self.irq.assert_line(desc, target))
            return
        self.irq.assert_line(desc, target)
        if self._sim:
            self.engine.after_irq_assert()

    def add_device(self, spec: str, start: bool = True) -> Any:
        """Plug in a virtual device (bottomhalf's, not Linux's): see devices.py.

        ``spec`` is ``NAME=KIND:irq=N,...``, e.g. ``net0=bursty:irq=40,burst=8``.
        """
        self._check_running()
        from .devices import make_device

        dev = make_device(self, spec)
        if dev.name in self.devices:
            raise BottomHalfError(f"a device named '{dev.name}' already exists")
        self.devices[dev.name] = dev
        self.devices_running.append(dev)
        if start:
            dev.start()
        return dev

    def do_irq(self, ctx: ExecCtx, fn: Callable[[ExecCtx, Any], None], arg: Any) -> None:
        """The engines' entry for every hard interrupt (local IRQs are off)."""
        self.irq.handle(ctx, fn, arg)

    def bh_work_action(self, ctx: ExecCtx, highpri: bool) -> bool:
        """BH workqueue items of this CPU run first in the tasklet softirqs."""
        return self.wq.bh_worker(ctx, highpri)

    # ------------------------------------------------------------------
    # the log
    def dmesg(self) -> list[str]:
        """The kernel log as ``dmesg`` prints it, oldest first."""
        if not hasattr(self, "log"):
            return []
        return self.log.dmesg_lines()

    def attach_console(self, stream: TextIO) -> None:
        """Make ``stream`` a console: each new log record whose level is below
        console_loglevel (the first value of /proc/sys/kernel/printk) is written
        to it as ``[    1.000000] text``.  Linux's consoles are drivers (VGA,
        serial); this is bottomhalf's way to attach one."""
        self._check_running()
        self.log.attach_console(stream)

    def detach_console(self, stream: TextIO) -> None:
        """Stop writing log records to ``stream``."""
        self._check_running()
        self.log.detach_console(stream)

    def printk(self, ctx: ExecCtx | None, fmt: str, *args: Any) -> None:
        text = vsprintf(fmt, args, self.symbols.symbol, self.symbols.pointer) if args else fmt
        if not args and "%" in fmt:
            text = vsprintf(fmt, (), self.symbols.symbol, self.symbols.pointer)
        self.log.emit(ctx, text)

    def log_line(self, level: int, text: str) -> None:
        """One complete kernel-generated line at ``level``."""
        ctx = _local.ctx
        self.log.emit(ctx if ctx is not None and ctx.kernel is self else None,
                      f"\001{level}{text}\n")

    # ------------------------------------------------------------------
    # files
    def read(self, path: str) -> str:
        """The text of a kernel file (``/proc/softirqs``...)."""
        self._check_running()
        return self.files.read(path)

    def write(self, path: str, text: str) -> None:
        """Write a kernel file (``/proc/sys/kernel/printk``, tracing controls...)."""
        self._check_running()
        self.files.write(path, text)

    # ------------------------------------------------------------------
    # modules
    def insmod(self, path: str, **params: Any) -> Module:
        """Load a module file and run its init in an ``insmod`` task."""
        self._check_running()
        mod, code = self.modules.prepare(str(path), params)

        def insmod_main() -> None:
            self.modules.load_in_task(current_ctx(), mod, code)

        task = self.sched.new_task(insmod_main, "insmod", 0, user=True)
        self.engine.run_task_to_completion(task)
        if task.exc is not None:
            raise task.exc
        return mod

    def rmmod(self, name: str) -> None:
        """Run a module's exit in an ``rmmod`` task and unload it."""
        self._check_running()
        mod = self.modules.check_unload(name)

        def rmmod_main() -> None:
            self.modules.unload_in_task(current_ctx(), mod)

        task = self.sched.new_task(rmmod_main, "rmmod", 0, user=True)
        self.engine.run_task_to_completion(task)
        if task.exc is not None:
            raise task.exc

    def lsmod(self) -> list[Module]:
        self._check_running()
        return list(reversed(list(self.modules.loaded.values())))

    def call(self, fn: Callable[..., T], *args: Any, cpu: int = 0, comm: str = "python3") -> T:
        """Run ``fn(*args)`` in a process-context task and return its result."""
        self._check_running()
        box: dict[str, Any] = {}

        def call_main() -> None:
            box["r"] = fn(*args)

        task = self.sched.new_task(call_main, comm, cpu, user=True)
        self.engine.run_task_to_completion(task)
        if task.exc is not None:
            raise task.exc
        return box.get("r")  # type: ignore[return-value]

    # ------------------------------------------------------------------
    # current
    def current_ctx(self) -> ExecCtx:
        return current_ctx()

    def current_task(self) -> Task:
        return current_ctx().task

    # ------------------------------------------------------------------
    # calling module code
    def call_handler(self, ctx: ExecCtx, fn: Callable[..., Any], args: tuple[Any, ...],
                     what: str, default: Any = None) -> Any:
        """Call a handler; an exception becomes an Oops report, not a crash."""
        if self.modules.unloaded:
            gone = self.modules.is_unloaded_code(fn)
            if gone is not None:
                self.report_unloaded_call(ctx, fn, gone, what)
                return default
        pc = ctx.preempt_count
        irqs = ctx.irqs_off
        try:
            return fn(*args)
        except Exception as exc:
            self.oops(ctx, exc, f"{what} {self.symbols.symbol(fn)}")
            ctx.preempt_count = pc
            if ctx.irqs_off != irqs:
                if irqs:
                    self.engine.local_irq_disable(ctx)
                else:
                    self.engine.local_irq_enable(ctx)
            return default

    # ------------------------------------------------------------------
    # reports
    def add_taint(self, flag: str, lockdep_ok: bool = True) -> None:
        """add_taint(): a taint that makes lockdep unreliable turns lock
        debugging off, saying so the first time."""
        if not lockdep_ok and self.debug_locks:
            self.debug_locks = False
            self.log_line(4, "Disabling lock debugging due to kernel taint")
        self.taint.add(flag)

    def taint_mask(self) -> int:
        return sum(1 << report.TAINT_FLAGS.index(c) for c in self.taint
                   if c in report.TAINT_FLAGS)

    def warn(self, ctx: ExecCtx | None, message: str | None, where: str | None = None) -> None:
        report.warn(self, ctx, message, where, sys._getframe(1))

    def oops(self, ctx: ExecCtx | None, exc: BaseException, what: str) -> None:
        if getattr(exc, "_bh_reported", False):
            return  # already reported where it was raised (BUG())
        exc._bh_reported = True  # type: ignore[attr-defined]
        report.oops(self, ctx, exc, what)

    def dump_stack(self, ctx: ExecCtx | None, level: int = 4) -> None:
        report.dump_stack(self, ctx, sys._getframe(1), level)

    def report_atomic_sleep(self, ctx: ExecCtx, what: str, frame: Any) -> None:
        report.atomic_sleep(self, ctx, what, frame)

    def spin_bug(self, ctx: ExecCtx, lock: Any, msg: str) -> None:
        """CONFIG_DEBUG_SPINLOCK's spin_bug()."""
        task = ctx.task
        self.log_line(0, f"BUG: spinlock {msg} on CPU#{ctx.cpu}, {task.comm}/{task.pid}")
        owner = getattr(lock._raw, "owner", None) if getattr(lock, "_raw", None) else None
        who = f"{owner.task.comm}/{owner.task.pid}" if owner is not None else "<none>/-1"
        ocpu = owner.cpu if owner is not None else -1
        self.log_line(0, f" lock: {self.symbols.symbol(lock, True)}, .magic: dead4ead, "
                         f".owner: {who}, .owner_cpu: {ocpu}")
        report.dump_stack(self, ctx, sys._getframe(2), 4)

    def report_recursive_locking(self, ctx: ExecCtx, lock: Any) -> None:
        """lockdep's "possible recursive locking detected" on a mutex (the
        caller has turned lock debugging off: once per boot)."""
        path, line = report.caller_location(self, sys._getframe(2))
        report.recursive_locking(self, ctx, f"&{self.symbols.symbol(lock)}",
                                 self.symbols.pointer(lock), "{4:4}", f"{path}:{line}", None)

    def report_unloaded_call(self, ctx: ExecCtx, fn: Any, mod: Module, what: str) -> None:
        """The kernel jumped into the freed code of an unloaded module."""
        report.page_fault(self, ctx, fn, mod.name, mod.address, what, sys._getframe(2))

    # ------------------------------------------------------------------
    # tasks
    def kthread_stop(self, ctx: ExecCtx, task: Task) -> Any:
        """Ask a kernel thread to stop and wait until it has exited."""
        if task.exited:
            return task.result
        waiter = ctx.task
        prev = task.on_exit

        def on_exit(t: Task) -> None:
            if prev is not None:
                prev(t)
            self.sched.wake_up_process(waiter)

        task.on_exit = on_exit
        task.should_stop = True
        self.sched.wake_up_process(task)
        self.sched.sleep_until(ctx, lambda: task.exited, TASK_UNINTERRUPTIBLE,
                               f"kthread_stop({task.comm})")
        return task.result

    # ------------------------------------------------------------------
    # idleness and what is busy
    def is_idle(self) -> bool:
        if not self.engine.cpus_idle():
            return False
        if any(self.softirq.pending):
            return False
        if self.tasklets.queued_count():
            return False
        if self.timers.user_timers_pending():
            return False
        if self.wq.items_in_flight:
            return False
        if self.irq.busy():
            return False
        if self.devices_running and any(d.running for d in self.devices_running):
            return False
        return True

    def busy_report(self) -> list[str]:
        out = list(self.engine.cpu_states())
        for cpu, bits in enumerate(self.softirq.pending):
            if bits:
                from .softirq import SOFTIRQ_NAMES

                names = [n for i, n in enumerate(SOFTIRQ_NAMES) if bits & (1 << i)]
                out.append(f"CPU{cpu}: softirqs pending: {', '.join(names)}")
        for cpu, hi, tl in self.tasklets.all_queued():
            kind = "HI tasklet" if hi else "tasklet"
            extra = " (disabled: it will not run until tasklet_enable())" if tl.count else ""
            out.append(f"CPU{cpu}: {kind} {self.symbols.symbol(tl.handler)} scheduled{extra}")
        for tm in self.timers.all_pending():
            if not tm.housekeeping:
                out.append(f"timer {self.symbols.symbol(tm.function)} armed, expires at jiffy "
                           f"{tm.expires} (in {max(0, tm.expires - self.timers.jiffies())} jiffies)")
        out.extend(self.wq.busy_items())
        out.extend(self.irq.threads_busy())
        for d in self.devices_running:
            if d.running:
                out.append(f"interrupt source {getattr(d, 'name', d.timer.name)} on IRQ {d.irq} "
                           "still firing")
        for task in list(self.sched.tasks.values()):
            if task.state == TASK_UNINTERRUPTIBLE and task.wait_desc:
                out.append(f"{task.comm}/{task.pid} blocked in {task.wait_desc}")
        return out

    def report_hang(self, busy: list[str], stuck: Task | None = None) -> None:
        """sim: nothing can ever happen again; report it as Linux's detectors would.

        A CPU spinning for ever is seen by the lockup detectors
        (kernel/watchdog.c): the soft-lockup watchdog if its interrupts are
        on, the hard-lockup (NMI) watchdog if they are off.  Tasks asleep in
        D state are seen by the hung-task detector (kernel/hung_task.c).
        """
        start = self.engine.now_ns()
        spinning = self.engine.spinning()
        spinners = {task for _cpu, task, _since in spinning}
        blocked = [t for t in self.sched.tasks.values()
                   if t.state == TASK_UNINTERRUPTIBLE and not t.exited]
        if (stuck is not None and stuck not in blocked and stuck not in spinners
                and not stuck.exited):
            blocked.append(stuck)
        thresh = int(self.params["kernel.watchdog_thresh"])
        lockups = sorted(
            (report.lockup_detected_at(thresh, since, task.ctx.irqs_off), cpu, task, since)
            for cpu, task, since in spinning
        ) if thresh else []
        for at, cpu, task, since in lockups:
            self.engine.advance_idle(max(0, at - self.engine.now_ns()))
            report.lockup(self, cpu, task, since, thresh)
        if not blocked:
            return
        secs = int(self.params["kernel.hung_task_timeout_secs"])
        self.engine.advance_idle(max(0, start + secs * 1_000_000_000 - self.engine.now_ns()))
        report.hung_task(self, [(t.comm, t.pid, t.wait_desc) for t in blocked], secs)

    def release_module_resources(self, ctx: ExecCtx, mod: Module, why: str) -> None:
        """Roll back a failed load: release what the module left registered."""
        owns = self.modules.owns(mod)
        name = mod.name

        def note(what: str) -> None:
            self.log_line(4, f"bottomhalf: {name}: {what} left behind when {why}; released")

        for action in list(self.irq.owned_by(name)):
            if self.irq.remove_action(ctx, self.irq.descs[action.irq], action.dev_id):
                note(f"IRQ {action.irq} handler ({action.name})")
        for tl in self.tasklets.remove_owned(owns):
            note(f"scheduled tasklet {self.symbols.symbol(tl.handler)}")
        for tm in self.timers.remove_owned(ctx, owns):
            note(f"armed timer {self.symbols.symbol(tm.function)}")
        for wq in [w for w in self.wq.workqueues if w.owner == name]:
            note(f"workqueue {wq.name}")
            self.wq.destroy_workqueue(ctx, wq)
        for work in self.wq.pending_owned(owns):
            note(f"queued work {self.symbols.symbol(work.func)}")
            self.wq.cancel_work(ctx, work, is_dwork=work.dwork is not None)
        for task in list(self.sched.tasks.values()):
            if task.fn is not None and owns(task.fn) and not task.exited:
                note(f"kernel thread {task.comm}")
                task.should_stop = True
                self.sched.wake_up_process(task)

