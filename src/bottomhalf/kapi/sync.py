"""Spinlocks, mutexes, completions, wait queues and atomics
(include/linux/spinlock.h, mutex.h, completion.h, wait.h, atomic.h)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import locking as _locking
from ..context import current_ctx as _ctx
from ..locking import (
    atomic_t,
    completion,
    mutex,
    spinlock_t,
    wait_queue_head_t,
)
from ._base import (
    _need,
)
from .context import (
    local_bh_disable,
    local_bh_enable,
    local_irq_disable,
    local_irq_enable,
    local_irq_restore,
    local_irq_save,
)


def DEFINE_SPINLOCK() -> spinlock_t:  # noqa: N802
    lock = spinlock_t()
    lock.initialized = True
    return lock


def spin_lock_init(lock: spinlock_t) -> None:
    _need(lock, spinlock_t, "spin_lock_init", "lock")
    lock.initialized = True


def _lk(lock: Any, fn: str) -> spinlock_t:
    _need(lock, spinlock_t, fn, "lock")
    return lock


def spin_lock(lock: spinlock_t) -> None:
    _locking.spin_lock(_ctx(), _lk(lock, "spin_lock"))


def spin_trylock(lock: spinlock_t) -> int:
    return _locking.spin_trylock(_ctx(), _lk(lock, "spin_trylock"))


def spin_unlock(lock: spinlock_t) -> None:
    _locking.spin_unlock(_ctx(), _lk(lock, "spin_unlock"))


def spin_lock_bh(lock: spinlock_t) -> None:
    local_bh_disable()
    spin_lock(lock)


def spin_unlock_bh(lock: spinlock_t) -> None:
    spin_unlock(lock)
    local_bh_enable()


def spin_lock_irq(lock: spinlock_t) -> None:
    local_irq_disable()
    spin_lock(lock)


def spin_unlock_irq(lock: spinlock_t) -> None:
    spin_unlock(lock)
    local_irq_enable()


def spin_lock_irqsave(lock: spinlock_t) -> int:
    """Returns the flags to give back to spin_unlock_irqrestore()."""
    flags = local_irq_save()
    spin_lock(lock)
    return flags


def spin_unlock_irqrestore(lock: spinlock_t, flags: int) -> None:
    spin_unlock(lock)
    local_irq_restore(flags)


def spin_is_locked(lock: spinlock_t) -> bool:
    return _locking.spin_is_locked(_ctx(), _lk(lock, "spin_is_locked"))


def DEFINE_MUTEX() -> mutex:  # noqa: N802
    return mutex()


def mutex_init(m: mutex) -> None:
    _need(m, mutex, "mutex_init", "lock")
    m.owner = None


def mutex_lock(m: mutex) -> None:
    _need(m, mutex, "mutex_lock", "lock")
    _locking.mutex_lock(_ctx(), m)


def mutex_lock_interruptible(m: mutex) -> int:
    mutex_lock(m)
    return 0


def mutex_trylock(m: mutex) -> int:
    _need(m, mutex, "mutex_trylock", "lock")
    return _locking.mutex_trylock(_ctx(), m)


def mutex_unlock(m: mutex) -> None:
    _need(m, mutex, "mutex_unlock", "lock")
    _locking.mutex_unlock(_ctx(), m)


def mutex_is_locked(m: mutex) -> bool:
    _need(m, mutex, "mutex_is_locked", "lock")
    return _locking.mutex_is_locked(m)


def DECLARE_COMPLETION() -> completion:  # noqa: N802
    return completion()


def init_completion(c: completion) -> None:
    _need(c, completion, "init_completion", "x")
    c.done = 0


def reinit_completion(c: completion) -> None:
    _need(c, completion, "reinit_completion", "x")
    c.done = 0


def complete(c: completion) -> None:
    _need(c, completion, "complete", "x")
    _locking.complete(_ctx(), c)


def complete_all(c: completion) -> None:
    _need(c, completion, "complete_all", "x")
    _locking.complete(_ctx(), c, all_=True)


def wait_for_completion(c: completion) -> None:
    _need(c, completion, "wait_for_completion", "x")
    _locking.wait_for_completion(_ctx(), c)


def wait_for_completion_timeout(c: completion, timeout: int) -> int:
    """0 if it timed out, else the jiffies left (at least 1)."""
    _need(c, completion, "wait_for_completion_timeout", "x")
    return _locking.wait_for_completion(_ctx(), c, int(timeout), "wait_for_completion_timeout")


def wait_for_completion_interruptible(c: completion) -> int:
    wait_for_completion(c)
    return 0


def completion_done(c: completion) -> bool:
    _need(c, completion, "completion_done", "x")
    return _locking.completion_done(c)


def try_wait_for_completion(c: completion) -> bool:
    _need(c, completion, "try_wait_for_completion", "x")
    return _locking.try_wait_for_completion(_ctx(), c)


def DECLARE_WAIT_QUEUE_HEAD() -> wait_queue_head_t:  # noqa: N802
    return wait_queue_head_t()


def init_waitqueue_head(wq: wait_queue_head_t) -> None:
    _need(wq, wait_queue_head_t, "init_waitqueue_head", "wq_head")


def wait_event(wq: wait_queue_head_t, condition: Callable[[], Any]) -> None:
    """Sleep until ``condition()`` is true; re-checked after every wake_up."""
    _need(wq, wait_queue_head_t, "wait_event", "wq_head")
    _locking.wait_event(_ctx(), wq, condition)


def wait_event_timeout(wq: wait_queue_head_t, condition: Callable[[], Any], timeout: int) -> int:
    """0 if the condition was still false after ``timeout`` jiffies, else jiffies left (>= 1)."""
    _need(wq, wait_queue_head_t, "wait_event_timeout", "wq_head")
    return _locking.wait_event(_ctx(), wq, condition, int(timeout), "wait_event_timeout")


def wait_event_interruptible(wq: wait_queue_head_t, condition: Callable[[], Any]) -> int:
    wait_event(wq, condition)
    return 0


def wait_event_interruptible_timeout(wq: wait_queue_head_t, condition: Callable[[], Any],
                                     timeout: int) -> int:
    return wait_event_timeout(wq, condition, timeout)


def wake_up(wq: wait_queue_head_t) -> None:
    _need(wq, wait_queue_head_t, "wake_up", "wq_head")
    _locking.wake_up(_ctx(), wq)


wake_up_interruptible = wake_up
wake_up_all = wake_up
wake_up_interruptible_all = wake_up


def ATOMIC_INIT(i: int) -> atomic_t:  # noqa: N802
    return atomic_t(i)


def atomic_set(v: atomic_t, i: int) -> None:
    v.counter = i


def atomic_read(v: atomic_t) -> int:
    return v.counter


def atomic_add_return(i: int, v: atomic_t) -> int:
    return v.add_return(i)


def atomic_sub_return(i: int, v: atomic_t) -> int:
    return v.add_return(-i)


def atomic_inc_return(v: atomic_t) -> int:
    return v.add_return(1)


def atomic_dec_return(v: atomic_t) -> int:
    return v.add_return(-1)


def atomic_add(i: int, v: atomic_t) -> None:
    v.add_return(i)


def atomic_sub(i: int, v: atomic_t) -> None:
    v.add_return(-i)


def atomic_inc(v: atomic_t) -> None:
    v.add_return(1)


def atomic_dec(v: atomic_t) -> None:
    v.add_return(-1)


def atomic_dec_and_test(v: atomic_t) -> bool:
    return v.add_return(-1) == 0


def atomic_inc_and_test(v: atomic_t) -> bool:
    return v.add_return(1) == 0


def atomic_sub_and_test(i: int, v: atomic_t) -> bool:
    return v.add_return(-i) == 0


def atomic_cmpxchg(v: atomic_t, old: int, new: int) -> int:
    return v.cmpxchg(old, new)


def atomic_xchg(v: atomic_t, new: int) -> int:
    return v.xchg(new)
