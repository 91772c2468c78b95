"""Locks and waiting: spinlocks, mutexes, completions, wait queues, atomics.

Mirrors include/linux/{spinlock,mutex,completion,wait,atomic}.h and the
debug checks of kernel/locking (CONFIG_DEBUG_SPINLOCK, DEBUG_MUTEXES,
DEBUG_ATOMIC_SLEEP).  A spinlock makes the holder atomic (preempt count + 1)
and never sleeps: in ``sim`` a contended spinlock spins in virtual time until
it is released.  Mutexes, completions and wait queues sleep, so they refuse
atomic context with the might_sleep splat.

Lock debugging (lockdep's "possible recursive locking", DEBUG_MUTEXES'
``DEBUG_LOCKS_WARN_ON``) reports the first problem only and then switches
itself off, as lib/debug_locks.c does; a proprietary-module or Oops taint
switches it off too.

Every object here is created empty by module code, before it knows which
kernel it belongs to, so the engine lock behind it is made on first use.
Guards: each object's ``_raw`` lock protects its own fields (owner, waiters,
counters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import PREEMPT_MASK, ExecCtx
from .task import TASK_UNINTERRUPTIBLE, Task

if TYPE_CHECKING:
    from .engines.base import RawLock

UINT_MAX = 0xFFFFFFFF

# local_irq_save() flags: the x86 EFLAGS.IF bit tells whether IRQs were on.
X86_EFLAGS_IF = 0x200


def debug_locks_off(kernel: Any) -> bool:
    """lib/debug_locks.c: turn lock debugging off; True only for the caller
    that turned it off, so each lock-debugging report appears at most once
    per boot (and never after a taint that made lockdep unreliable)."""
    if kernel.debug_locks:
        kernel.debug_locks = False
        return True
    return False


def preempt_count_sub_ok(ctx: ExecCtx, val: int, where: str) -> bool:
    """CONFIG_DEBUG_PREEMPT's checks in preempt_count_sub(): an underflow is
    refused (the count stays as it is) and reported by DEBUG_LOCKS_WARN_ON,
    once per boot while lock debugging is on."""
    pc = ctx.preempt_count
    if val > pc:
        cond = "val > preempt_count()"
    elif val < PREEMPT_MASK and not pc & PREEMPT_MASK:
        cond = "(val < PREEMPT_MASK) && !(preempt_count() & PREEMPT_MASK)"
    else:
        return True
    if debug_locks_off(ctx.kernel):
        ctx.kernel.warn(ctx, f"DEBUG_LOCKS_WARN_ON({cond})", where)
    return False


def _raw_of(obj: Any, ctx: ExecCtx) -> RawLock:
    raw = obj._raw
    if raw is None or obj._kernel is not ctx.kernel:
        raw = ctx.kernel.engine.new_raw_lock()
        obj._raw = raw
        obj._kernel = ctx.kernel
    return raw


# ----------------------------------------------------------------------
# interrupts on/off


def local_irq_save(ctx: ExecCtx) -> int:
    flags = 0 if ctx.irqs_off else X86_EFLAGS_IF
    if not ctx.irqs_off:
        ctx.kernel.engine.local_irq_disable(ctx)
    return flags


def local_irq_restore(ctx: ExecCtx, flags: int) -> None:
    if flags & X86_EFLAGS_IF:
        if ctx.irqs_off:
            ctx.kernel.engine.local_irq_enable(ctx)
    elif not ctx.irqs_off:
        ctx.kernel.engine.local_irq_disable(ctx)


# ----------------------------------------------------------------------
# spinlocks


class spinlock_t:  # noqa: N801 - the kernel's name
    """spinlock_t.  ``spin_lock_init`` or ``DEFINE_SPINLOCK`` before use."""

    __slots__ = ("_raw", "_kernel", "name", "owner_cpu", "initialized", "__weakref__")

    def __init__(self) -> None:
        self._raw: RawLock | None = None
        self._kernel: Any = None
        self.name = ""
        self.owner_cpu = -1
        self.initialized = False

    def __repr__(self) -> str:
        return f"<spinlock_t {self.name or hex(id(self))} owner_cpu={self.owner_cpu}>"


def spin_lock(ctx: ExecCtx, lock: spinlock_t) -> None:
    """The raw lock adds PREEMPT_OFFSET; a contended lock spins.

    debug_spin_lock_before(): taking a lock this context already holds (a
    handler interrupting its holder, or a second spin_lock) is "recursion".
    Linux also reports "cpu recursion" for another task of the same CPU; that
    cannot happen while preemption is off, and on the real engine two
    threads of one CPU may legitimately contend, so it is not modelled.
    """
    raw = _raw_of(lock, ctx)
    if raw.owner is ctx:
        ctx.kernel.spin_bug(ctx, lock, "recursion")
    raw.acquire(ctx)
    lock.owner_cpu = ctx.cpu


def spin_trylock(ctx: ExecCtx, lock: spinlock_t) -> int:
    if _raw_of(lock, ctx).try_acquire(ctx):
        lock.owner_cpu = ctx.cpu
        return 1
    return 0


def spin_unlock(ctx: ExecCtx, lock: spinlock_t) -> None:
    raw = _raw_of(lock, ctx)
    if raw.owner is None:
        ctx.kernel.spin_bug(ctx, lock, "already unlocked")
        return
    if raw.owner is not ctx:
        ctx.kernel.spin_bug(ctx, lock, "wrong owner")
    elif raw.owner.cpu != ctx.cpu:
        ctx.kernel.spin_bug(ctx, lock, "wrong CPU")
    lock.owner_cpu = -1
    raw.release(ctx)


def spin_is_locked(ctx: ExecCtx, lock: spinlock_t) -> bool:
    return _raw_of(lock, ctx).owner is not None


# ----------------------------------------------------------------------
# sleeping: the shared waiter list


class _Waiters:
    """Tasks sleeping on one object, in arrival order."""

    __slots__ = ("tasks",)

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    def add(self, task: Task) -> None:
        if task not in self.tasks:
            self.tasks.append(task)

    def remove(self, task: Task) -> None:
        if task in self.tasks:
            self.tasks.remove(task)

    def take_all(self) -> list[Task]:
        t, self.tasks = self.tasks, []
        return t

    def take_first(self) -> Task | None:
        return self.tasks.pop(0) if self.tasks else None


def _sleep_on(ctx: ExecCtx, obj: Any, cond: Callable[[], bool], why: str,
              timeout: int | None = None) -> int:
    """Sleep until ``cond()`` (checked under the object's lock) holds.

    Returns the jiffies left (>= 1) or 0 on timeout; ``timeout`` None waits
    for ever.
    """
    k = ctx.kernel
    raw = _raw_of(obj, ctx)
    waiters: _Waiters = obj._waiters
    task = ctx.task

    def check() -> bool:
        raw.acquire(ctx)
        try:
            if cond():
                return True
            waiters.add(task)
            return False
        finally:
            raw.release(ctx)

    try:
        if timeout is None:
            k.sched.sleep_until(ctx, check, TASK_UNINTERRUPTIBLE, why)
            return 1
        left = timeout
        old = task.wait_desc
        task.wait_desc = why
        try:
            while True:
                task.state = TASK_UNINTERRUPTIBLE
                if check():
                    task.state = 0
                    return max(left, 1)
                if left <= 0:
                    task.state = 0
                    return 0
                left = k.sched.schedule_timeout(ctx, left, why=why)
        finally:
            task.wait_desc = old
    finally:
        raw.acquire(ctx)
        waiters.remove(task)
        raw.release(ctx)


def _wake(ctx: ExecCtx, obj: Any, all_: bool) -> int:
    raw = _raw_of(obj, ctx)
    raw.acquire(ctx)
    if all_:
        tasks = obj._waiters.take_all()
    else:
        first = obj._waiters.take_first()
        tasks = [first] if first is not None else []
    raw.release(ctx)
    for t in tasks:
        ctx.kernel.sched.wake_up_process(t)
    return len(tasks)


# ----------------------------------------------------------------------
# mutexes


class mutex:  # noqa: N801 - the kernel's name
    """struct mutex.  ``mutex_init`` or ``DEFINE_MUTEX`` before use."""

    __slots__ = ("_raw", "_kernel", "_waiters", "owner", "name", "__weakref__")

    def __init__(self) -> None:
        self._raw: RawLock | None = None
        self._kernel: Any = None
        self._waiters = _Waiters()
        self.owner: Task | None = None
        self.name = ""

    def __repr__(self) -> str:
        owner = f"{self.owner.comm}/{self.owner.pid}" if self.owner else None
        return f"<mutex {self.name or hex(id(self))} owner={owner}>"


def mutex_lock(ctx: ExecCtx, m: mutex) -> None:
    k = ctx.kernel
    k.sched.might_sleep(ctx, "mutex_lock", depth=3)
    task = ctx.task
    if m.owner is task and debug_locks_off(k):
        k.report_recursive_locking(ctx, m)

    def free() -> bool:
        if m.owner is None:
            m.owner = task
            return True
        return False

    who = m.owner.comm if m.owner is not None else "?"
    _sleep_on(ctx, m, free, f"mutex_lock({m.name or 'mutex'}) held by {who}")


def mutex_trylock(ctx: ExecCtx, m: mutex) -> int:
    raw = _raw_of(m, ctx)
    raw.acquire(ctx)
    try:
        if m.owner is None:
            m.owner = ctx.task
            return 1
        return 0
    finally:
        raw.release(ctx)


def mutex_unlock(ctx: ExecCtx, m: mutex) -> None:
    k = ctx.kernel
    if m.owner is not ctx.task:
        if debug_locks_off(k):
            k.warn(ctx, "DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current)")
        if m.owner is None:
            return
    raw = _raw_of(m, ctx)
    raw.acquire(ctx)
    m.owner = None
    raw.release(ctx)
    _wake(ctx, m, all_=False)


def mutex_is_locked(m: mutex) -> bool:
    return m.owner is not None


# ----------------------------------------------------------------------
# completions


class completion:  # noqa: N801 - the kernel's name
    """struct completion.  ``init_completion`` or ``DECLARE_COMPLETION``."""

    __slots__ = ("_raw", "_kernel", "_waiters", "done", "__weakref__")

    def __init__(self) -> None:
        self._raw: RawLock | None = None
        self._kernel: Any = None
        self._waiters = _Waiters()
        self.done = 0

    def __repr__(self) -> str:
        return f"<completion done={self.done}>"


def complete(ctx: ExecCtx, c: completion, all_: bool = False) -> None:
    raw = _raw_of(c, ctx)
    raw.acquire(ctx)
    if all_:
        c.done = UINT_MAX
    elif c.done != UINT_MAX:
        c.done += 1
    raw.release(ctx)
    _wake(ctx, c, all_=all_)


def wait_for_completion(ctx: ExecCtx, c: completion, timeout: int | None = None,
                        what: str = "wait_for_completion") -> int:
    k = ctx.kernel
    k.sched.might_sleep(ctx, what, depth=3)
    return _sleep_on(ctx, c, lambda: _take_done(c), what, timeout)


def completion_done(c: completion) -> bool:
    return c.done != 0


def try_wait_for_completion(ctx: ExecCtx, c: completion) -> bool:
    raw = _raw_of(c, ctx)
    raw.acquire(ctx)
    try:
        return _take_done(c)
    finally:
        raw.release(ctx)


def _take_done(c: completion) -> bool:
    """Under the completion's lock: consume one ``done`` (complete_all's
    UINT_MAX is never used up); False if there is none."""
    if not c.done:
        return False
    if c.done != UINT_MAX:
        c.done -= 1
    return True


# ----------------------------------------------------------------------
# wait queues


class wait_queue_head_t:  # noqa: N801 - the kernel's name
    """wait_queue_head_t.  ``init_waitqueue_head`` or ``DECLARE_WAIT_QUEUE_HEAD``."""

    __slots__ = ("_raw", "_kernel", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._raw: RawLock | None = None
        self._kernel: Any = None
        self._waiters = _Waiters()

    def __repr__(self) -> str:
        return f"<wait_queue_head_t waiters={len(self._waiters.tasks)}>"


def wait_event(ctx: ExecCtx, wq: wait_queue_head_t, condition: Callable[[], Any],
               timeout: int | None = None, what: str = "wait_event") -> int:
    if not callable(condition):
        raise TypeError(
            f"{what}(wq, condition): pass the condition as a callable, e.g. "
            "lambda: data_ready, so it can be re-checked after every wake-up")
    k = ctx.kernel
    k.sched.might_sleep(ctx, what, depth=3)
    if condition():
        return max(timeout, 1) if timeout is not None else 1
    return _sleep_on(ctx, wq, lambda: bool(condition()), what, timeout)


def wake_up(ctx: ExecCtx, wq: wait_queue_head_t, all_: bool = True) -> None:
    _wake(ctx, wq, all_=all_)


# ----------------------------------------------------------------------
# atomics


class atomic_t:  # noqa: N801 - the kernel's name
    """atomic_t: an int whose read-modify-write operations are indivisible."""

    __slots__ = ("counter", "_lock")

    def __init__(self, i: int = 0) -> None:
        import threading

        self.counter = i
        self._lock = threading.Lock()

    def add_return(self, i: int) -> int:
        with self._lock:
            self.counter += i
            return self.counter

    def cmpxchg(self, old: int, new: int) -> int:
        with self._lock:
            cur = self.counter
            if cur == old:
                self.counter = new
            return cur

    def xchg(self, new: int) -> int:
        with self._lock:
            cur = self.counter
            self.counter = new
            return cur

    def __repr__(self) -> str:
        return f"<atomic_t {self.counter}>"


atomic_long_t = atomic_t
