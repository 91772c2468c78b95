"""Two classic workqueue mistakes, and what the kernel says about them.

Load with ``mistake=...``:

* ``unload_pending`` - init arms a delayed work on the system workqueue and
  exit forgets to cancel it.  ``rmmod`` succeeds; a second later the timer
  queues the item and a kworker jumps into the module's freed code:
  ``BUG: unable to handle page fault for address: ...`` and an Oops.  The
  fix: ``cancel_delayed_work_sync(&dwork)`` in exit (items on system
  workqueues are covered by no ``destroy_workqueue``).
* ``flush_own_queue`` - a work item on an ordered queue calls
  ``flush_workqueue`` on that same queue.  The flush waits for every item
  queued before it, including the one doing the flushing, which can only
  finish once the flush returns: the kworker hangs for good.  A lockdep
  kernel reports ``possible recursive locking detected`` on
  ``(wq_completion)<name>`` at the flush; every kernel reports the blocked
  kworker after ``hung_task_timeout_secs``.  On ``sim`` the run ends with
  those reports (``KernelHang``).  The fix: never flush your own queue from
  its items; flush from outside, or use ``flush_work`` on another item on a
  queue that can run it concurrently.
"""

from bottomhalf.linux import *

mistake = "unload_pending"
module_param("mistake", "charp", 0o444)

my_wq = None
late_work = delayed_work()
self_flusher = work_struct()


def late_work_fn(work):
    pr_info("wq_mistakes: late work ran\n")


def self_flusher_fn(work):
    pr_info("wq_mistakes: flushing my own queue\n")
    flush_workqueue(my_wq)
    pr_info("wq_mistakes: never printed\n")


def wq_mistakes_init():
    global my_wq
    if mistake == "unload_pending":
        INIT_DELAYED_WORK(late_work, late_work_fn)
        schedule_delayed_work(late_work, HZ)
    elif mistake == "flush_own_queue":
        my_wq = alloc_ordered_workqueue("mistakes_wq", 0)
        if not my_wq:
            return -ENOMEM
        INIT_WORK(self_flusher, self_flusher_fn)
        queue_work(my_wq, self_flusher)
    else:
        pr_err("wq_mistakes: unknown mistake %s\n", mistake)
        return -EINVAL
    return 0


def wq_mistakes_exit():
    # Mistake: no cancel_delayed_work_sync(late_work) here.
    if my_wq:
        destroy_workqueue(my_wq)


module_init(wq_mistakes_init)
module_exit(wq_mistakes_exit)
MODULE_LICENSE("GPL")
MODULE_DESCRIPTION("Classic workqueue mistakes")
