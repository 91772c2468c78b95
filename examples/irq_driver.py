"""A device interrupt handled the Linux way: top half, tasklet, work item.

The chain this module shows:

1. hard IRQ (top half): ``my_device_irq`` runs with interrupts off; it only
   reads the device's data, schedules the tasklet and returns IRQ_HANDLED;
2. tasklet (softirq context): ``my_tasklet_func`` runs at irq_exit on the same
   CPU, right after the handler; it does the quick part and queues work;
3. work item (process context): ``my_work_func`` runs on a kworker and may
   sleep, as the slow part (here ``msleep(5)``) needs to.

Real hardware raises the interrupt.  Here a timer stands in for the device
(``fake_device_fire`` calls ``bh_raise_irq``, which is bottomhalf's, not
Linux's) and asserts IRQ 17 every 20 ms, ``fires`` times.  From Python you can
also raise it yourself: ``k.raise_irq(17)``.

    bh run examples/irq_driver.py --for 150
"""

from bottomhalf.linux import *

IRQ = 17
fires = 3
module_param("fires", "int", 0o444)
MODULE_PARM_DESC("fires", "how many interrupts the fake device raises (default 3)")

dev_id = object()  # the cookie request_irq/free_irq match on
events = 0  # interrupts seen by the top half
my_tasklet = tasklet_struct()
my_work = work_struct()
my_wq = None
device_timer = timer_list()
fired = 0


def my_device_irq(irq, dev):
    """Top half: acknowledge, grab the data, defer the rest."""
    global events
    if dev is not dev_id:
        return IRQ_NONE
    events += 1
    my_tasklet.data = events
    tasklet_schedule(my_tasklet)
    return IRQ_HANDLED


def my_tasklet_func(data):
    """Softirq context: quick processing, then hand the slow part to a kworker."""
    pr_info("irq_driver: tasklet on CPU %d handles event %lu (in_softirq=%d)\n",
            smp_processor_id(), data, in_serving_softirq())
    queue_work(my_wq, my_work)


def my_work_func(work):
    """Process context: allowed to sleep."""
    pr_info("irq_driver: work on %s processes events up to %d\n", current.comm, events)
    msleep(5)
    pr_info("irq_driver: work done\n")


def fake_device_fire(t):
    """Stands in for the hardware: assert the interrupt line, re-arm."""
    global fired
    fired += 1
    bh_raise_irq(IRQ)
    if fired < fires:
        mod_timer(device_timer, jiffies() + msecs_to_jiffies(20))


def irq_driver_init():
    global my_wq
    my_wq = alloc_workqueue("irq_driver_wq", 0, 0)
    if my_wq is None:
        return -ENOMEM
    tasklet_init(my_tasklet, my_tasklet_func, 0)
    INIT_WORK(my_work, my_work_func)
    ret = request_irq(IRQ, my_device_irq, IRQF_SHARED, "my_device", dev_id)
    if ret:
        destroy_workqueue(my_wq)
        return ret
    timer_setup(device_timer, fake_device_fire, 0)
    if fires > 0:
        mod_timer(device_timer, jiffies() + msecs_to_jiffies(20))
    pr_info("irq_driver: IRQ %d requested, device armed\n", IRQ)
    return 0


def irq_driver_exit():
    # Stop the sources first, then the deferred work, then the queue.
    del_timer_sync(device_timer)
    free_irq(IRQ, dev_id)
    tasklet_kill(my_tasklet)
    cancel_work_sync(my_work)
    destroy_workqueue(my_wq)
    pr_info("irq_driver: removed after %d interrupts\n", events)


module_init(irq_driver_init)
module_exit(irq_driver_exit)
MODULE_LICENSE("GPL")
MODULE_AUTHOR("bottomhalf")
MODULE_DESCRIPTION("IRQ -> tasklet -> workqueue chain")
