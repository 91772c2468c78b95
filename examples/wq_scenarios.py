"""The "Example Execution Scenarios" of Documentation/core-api/workqueue.rst.

Three work items are queued at once on one CPU, in the order w0, w1, w2:

* w0 burns the CPU for 5 ms, sleeps 10 ms, burns 5 ms more and finishes;
* w1 and w2 burn 5 ms, sleep 10 ms and finish.

``mdelay`` burns CPU time; ``usleep_range(10000, 10000)`` sleeps exactly
10 ms (``msleep(10)`` would round up to whole jiffies and sleep 12-16 ms at
HZ=250, which the documented timelines ignore).

The parameter ``scenario`` picks the queues:

* ``A`` - the original, pre-cmwq workqueue: one thread serves the CPU and
  runs the items strictly one after another, even while one sleeps.  Today
  the queue that behaves so is an ordered queue
  (``alloc_ordered_workqueue``, what ``create_singlethread_workqueue`` now
  gives): at most one item in flight, in queueing order.  ``A-legacy`` uses
  ``create_workqueue`` instead, whose ``max_active`` of 1 per CPU gives the
  same timeline for items queued on one CPU.
* ``B`` - a bound cmwq queue with ``max_active`` >= 3: a new item starts as
  soon as the running one sleeps.
* ``C`` - the same with ``max_active`` 2: w2 waits until w0 finishes.
* ``D`` - w0 on a normal bound queue, w1 and w2 on a ``WQ_CPU_INTENSIVE``
  one: they do not hold back the pool, so both start when w0 sleeps, and
  share the CPU.

Each event goes to the kernel log as ``wN START``, ``wN SLEEP``, ``wN WAKE``,
``wN FINISH``, stamped with the time since the items were queued.
"""

from bottomhalf.linux import *

scenario = "B"
module_param("scenario", "charp", 0o444)

q0 = None
q1 = None
w0 = work_struct()
w1 = work_struct()
w2 = work_struct()
t0 = 0


def event(what):
    ms = (ktime_get_ns() - t0) // 1_000_000
    pr_info("wq_scenarios: %3d ms: %s\n", ms, what)


def w0_fn(work):
    event("w0 START")
    mdelay(5)
    event("w0 SLEEP")
    usleep_range(10000, 10000)
    event("w0 WAKE")
    mdelay(5)
    event("w0 FINISH")


def burn_then_sleep(name):
    event(name + " START")
    mdelay(5)
    event(name + " SLEEP")
    usleep_range(10000, 10000)
    event(name + " WAKE")
    event(name + " FINISH")


def w1_fn(work):
    burn_then_sleep("w1")


def w2_fn(work):
    burn_then_sleep("w2")


def wq_scenarios_init():
    global q0, q1, t0
    if scenario == "A":
        q0 = alloc_ordered_workqueue("q0", 0)
        q1 = q0
    elif scenario == "A-legacy":
        q0 = create_workqueue("q0")
        q1 = q0
    elif scenario == "B":
        q0 = alloc_workqueue("q0", 0, 3)
        q1 = q0
    elif scenario == "C":
        q0 = alloc_workqueue("q0", 0, 2)
        q1 = q0
    elif scenario == "D":
        q0 = alloc_workqueue("q0", 0, 0)
        q1 = alloc_workqueue("q1", WQ_CPU_INTENSIVE, 0)
    else:
        pr_err("wq_scenarios: unknown scenario %s (A, A-legacy, B, C or D)\n", scenario)
        return -EINVAL
    if not q0 or not q1:
        return -ENOMEM
    INIT_WORK(w0, w0_fn)
    INIT_WORK(w1, w1_fn)
    INIT_WORK(w2, w2_fn)
    t0 = ktime_get_ns()
    queue_work_on(0, q0, w0)
    queue_work_on(0, q1, w1)
    queue_work_on(0, q1, w2)
    return 0


def wq_scenarios_exit():
    destroy_workqueue(q0)
    if q1 is not q0:
        destroy_workqueue(q1)


module_init(wq_scenarios_init)
module_exit(wq_scenarios_exit)
MODULE_LICENSE("GPL")
MODULE_DESCRIPTION("The workqueue.rst execution scenarios A-D")
