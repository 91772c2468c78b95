"""A NAPI-style receive path on bottomhalf's bursty network-like device.

Network drivers do not take one interrupt per packet under load.  NAPI's
pattern, shown here with a tasklet standing in for the NET_RX softirq's poll
(a module cannot register a softirq of its own):

1. hard IRQ: the first packet's interrupt masks the device's line
   (``disable_irq_nosync``) and schedules the poll;
2. poll (softirq context): take at most ``budget`` packets off the device's
   ring; if it is not empty yet, schedule the poll again (other softirqs run
   in between, as ``net_rx_action`` leaves the rest for the next round);
   once it is empty, unmask the line (``enable_irq``), which replays an
   interrupt that arrived meanwhile.

Processing a packet takes ``cost_ns`` of CPU time, and packets keep arriving
meanwhile, so a burst of 8 packets costs one or two interrupts, not eight.  Boot a
kernel with the device first (Linux has hardware; ``bh_device`` is
bottomhalf's stand-in for finding it):

    bh boot --device net0=bursty:irq=40,burst=8,spacing=0.01,gap=20
    bh insmod examples/napi_driver.py budget=4
    bh top -1                      # NET_RX-like polls show as TASKLET softirqs
    bh rmmod napi_driver           # prints packets, polls and interrupts
"""

from bottomhalf.linux import *

device = "net0"
module_param("device", "charp", 0o444)
MODULE_PARM_DESC("device", "the virtual device to drive (default net0)")
budget = 4
module_param("budget", "int", 0o444)
MODULE_PARM_DESC("budget", "packets taken per poll, NAPI's weight (default 4)")
cost_ns = 30000
module_param("cost_ns", "int", 0o444)
MODULE_PARM_DESC("cost_ns", "CPU time to process one packet, in ns (default 30000)")

dev = None
dev_id = object()
poll = tasklet_struct()
stats = {"packets": 0, "polls": 0, "interrupts": 0, "bursts": 0, "in_burst": 0}


def napi_irq(irq, cookie):
    """Top half: mask the line and hand the ring to the poll."""
    if cookie is not dev_id:
        return IRQ_NONE
    stats["interrupts"] += 1
    disable_irq_nosync(irq)
    tasklet_schedule(poll)
    return IRQ_HANDLED


def napi_poll(t):
    """Softirq context: at most `budget` packets per call."""
    stats["polls"] += 1
    got = dev.read(budget)
    ndelay(got * cost_ns)  # the packets' processing (meanwhile more arrive)
    stats["packets"] += got
    stats["in_burst"] += got
    if dev.pending:
        tasklet_schedule(poll)  # budget used up: poll again later
        return
    if stats["in_burst"]:  # (a replayed interrupt may find the ring empty)
        printk(KERN_DEBUG + "napi_driver: burst of %d packets done on CPU %d\n",
               stats["in_burst"], smp_processor_id())
        stats["bursts"] += 1
        stats["in_burst"] = 0
    enable_irq(dev.irq)  # napi_complete_done: interrupts again


def napi_driver_init():
    global dev
    if budget < 1:
        pr_err("napi_driver: budget must be at least 1, not %d\n", budget)
        return -EINVAL
    dev = bh_device(device)
    if dev is None:
        pr_err("napi_driver: no device '%s' (boot with: bh boot --device "
               "%s=bursty:irq=40)\n", device, device)
        return -ENODEV
    tasklet_setup(poll, napi_poll)
    ret = request_irq(dev.irq, napi_irq, 0, "napi_driver", dev_id)
    if ret:
        return ret
    pr_info("napi_driver: driving %s on IRQ %d, budget %d\n", device, dev.irq, budget)
    return 0


def napi_driver_exit():
    free_irq(dev.irq, dev_id)
    tasklet_kill(poll)
    pr_info("napi_driver: %d packets in %d bursts: %d polls, %d interrupts\n",
            stats["packets"], stats["bursts"], stats["polls"], stats["interrupts"])


module_init(napi_driver_init)
module_exit(napi_driver_exit)
MODULE_LICENSE("GPL")
MODULE_AUTHOR("bottomhalf")
MODULE_DESCRIPTION("NAPI-style polling on the bursty virtual network device")
