"""The lesson's steps: what ``bh lesson`` says, types and corrects.

One function per step, in the tutorial's order.  Each step types commands
through :meth:`Lesson.type` (so what is shown is what ran) and explains the
output.  The corrections follow reference §12; the C compiler's messages
quoted in steps 2 and 6 are gcc 12's on Linux 6.1 headers, from there.
"""

from __future__ import annotations

import os

from .lesson import Lesson, Step

INTRO = """
    Deferred work in a kernel module: the tutorial, run and corrected

    This lesson follows the popular tutorial "Day 10: Using Workqueues &
    Tasklets - Deferred Work Handling in Kernel Space" on a simulated Linux
    kernel: 2 CPUs, HZ=250, virtual time, seed 0, so every run prints the same
    thing.  Each step shows the command you would type on Linux, what it does,
    and what the kernel answers.  Where the tutorial is wrong, the step says so
    and shows why.

    A module here is a Python file written like the C module and using the same
    kernel API.  "tasklet_driver.ko" is examples/tasklet_driver.py, or, where
    the lesson loads the tutorial's code as written,
    examples/tutorial_verbatim/tasklet_driver.py.  "$" is your shell; "#" is a
    root shell (sudo -i), needed to write a kernel file with ">": in "sudo echo
    1 > FILE" the redirection is done by your own, unprivileged shell, and
    fails.  Between commands a few seconds pass, as they would while you type;
    the timestamps in dmesg show it.
"""


def tracepoints(l: Lesson) -> None:
    l.say("""
        Not in the tutorial, but its debugging section needs it: a record of
        which tasklet and which work item ran, where and when.  Linux keeps one
        if you ask before things happen.  Each tracepoint switched on here
        writes a line to /sys/kernel/tracing/trace every time a tasklet starts
        or ends, or a work item is queued, activated, started or finished.
    """)
    l.type("# echo 1 > /sys/kernel/tracing/events/irq/tasklet_entry/enable")
    l.type("# echo 1 > /sys/kernel/tracing/events/irq/tasklet_exit/enable")
    l.type("# echo 1 > /sys/kernel/tracing/events/workqueue/enable")
    l.say("""
        Steps 10 to 12 read the record.
    """)


def tasklet_verbatim(l: Lesson) -> None:
    l.say("""
        The tutorial's tasklet_driver.c names its init function
        "static int __init tasklet_init(void)".  But tasklet_init is the kernel
        function the module calls on the next line, declared by
        <linux/interrupt.h>:
    """)
    l.block("""
        extern void tasklet_init(struct tasklet_struct *t,
                                 void (*func)(unsigned long), unsigned long data);
    """)
    l.say("""
        So "make" stops (gcc 12, Linux 6.1 headers; 6.12 and 6.18 declare it the
        same way):
    """)
    l.block("error: conflicting types for 'tasklet_init'; have 'int(void)'\n"
            "note: previous declaration of 'tasklet_init' with type 'void(struct tasklet_struct *, "
            "void (*)(long unsigned int), long unsigned int)'\n"
            "error: too many arguments to function 'tasklet_init'")
    l.say("""
        There is no compiler here, but bottomhalf's module loader makes the same
        check before running anything.  Here is the tutorial's module, line for
        line (examples/tutorial_verbatim/tasklet_driver.py):
    """)
    l.shell.module_dir = l.verbatim
    l.type("$ sudo insmod tasklet_driver.ko")
    l.shell.module_dir = l.examples
    l.say("The loader says why:")
    l.loader_error()
    l.say("""
        Correction: give the module's own functions the module's name, as kernel
        code does.  examples/tasklet_driver.py is the tutorial's module with
        just that change; the call to tasklet_init() now reaches the kernel's:
    """)
    l.changes(os.path.join(l.verbatim, "tasklet_driver.py"),
              os.path.join(l.examples, "tasklet_driver.py"))
    l.say("""
        Since Linux 5.9 new code initialises a tasklet with tasklet_setup(),
        whose callback receives the tasklet itself; tasklet_init() remains for
        old code like this.
    """)


def tasklet_load(l: Lesson) -> None:
    l.type("$ sudo insmod tasklet_driver.ko")
    l.say("""
        insmod prints nothing when it succeeds.  The kernel ran
        tasklet_driver_init() in the insmod process: it set up the tasklet,
        scheduled it and logged a line.
    """)
    l.say("""
        tasklet_schedule() does not run the tasklet.  It puts it on this CPU's
        tasklet list and raises TASKLET_SOFTIRQ; the tasklet runs when this CPU
        next processes softirqs.  Scheduled by an interrupt handler, it would
        run as the handler returns (irq_exit).  Here it was scheduled from
        process context, so raising the softirq woke this CPU's ksoftirqd/0
        thread, which ran it.
    """)


def tasklet_dmesg(l: Lesson) -> None:
    l.type("$ dmesg | tail -10")
    l.say("""
        The first three lines are the kernel's boot messages.  Then Linux's
        taint notice: a module built outside the kernel tree marks the kernel
        "O" the first time one loads.  Init's message comes before the
        tasklet's: tasklet_schedule() returned at once and the tasklet ran
        afterwards, in softirq context, with the data given to tasklet_init().
    """)


def tasklet_remove(l: Lesson) -> None:
    l.type("$ sudo rmmod tasklet_driver")
    l.type("$ dmesg | tail -1")
    l.say("""
        tasklet_kill() in the exit function waits until the tasklet is neither
        scheduled nor running.  It is not optional: once the exit function
        returns, the module's code and data are freed, and a tasklet still
        queued would make the kernel jump into freed memory - an Oops, and in
        softirq context a panic.
    """)
    l.say("""
        Tutorial: "Tasklets run after the ISR completes, but before returning to
        user space" and "must not sleep, allocate memory, or perform blocking
        I/O".
    """)
    l.say("""
        Correction: they run in softirq context on the CPU that scheduled them,
        either as an interrupt returns or, as just seen, in ksoftirqd, a normal
        kernel thread.  They must not sleep, so no msleep(), mutex_lock() or
        GFP_KERNEL allocation; kmalloc(size, GFP_ATOMIC) is fine.  The same
        tasklet never runs on two CPUs at once.
    """)


def workqueue_verbatim(l: Lesson) -> None:
    l.say("""
        The same mistake, in another header.  <linux/workqueue.h> declares
        "void __init workqueue_init(void)": the kernel's own boot step that
        starts the first kworkers.  The tutorial's "static int __init
        workqueue_init(void)" clashes with it, and "make" stops:
    """)
    l.block("""
        error: conflicting types for 'workqueue_init'; have 'int(void)'
        note: previous declaration of 'workqueue_init' with type 'void(void)'
        error: 'init_module' aliased to external symbol 'workqueue_init'
        warning: 'init_module' alias between functions of incompatible types 'int(void)' and 'void(void)'
    """)
    l.say("The tutorial's module as written (examples/tutorial_verbatim/workqueue_driver.py):")
    l.shell.module_dir = l.verbatim
    l.type("$ sudo insmod workqueue_driver.ko")
    l.shell.module_dir = l.examples
    l.loader_error()
    l.say("Correction: the same renaming, in examples/workqueue_driver.py:")
    l.changes(os.path.join(l.verbatim, "workqueue_driver.py"),
              os.path.join(l.examples, "workqueue_driver.py"))


def workqueue_load(l: Lesson) -> None:
    l.type("$ sudo insmod workqueue_driver.ko")
    l.say("""
        Whatever its name says, create_singlethread_workqueue("my_wq") does not
        give my_wq a thread to run its items.  Since the concurrency-managed
        workqueues of Linux 2.6.36, items run on kworker threads shared by all
        workqueues; today this call makes an ordered workqueue, which runs at
        most one item at a time, in the order queued.  Its only thread of its
        own is a rescuer, kworker/R-my_wq, used when memory is too short to
        start a kworker.  queue_work() put my_work on it and returned at once;
        a kworker then called my_work_func() in process context.
    """)


def workqueue_dmesg(l: Lesson) -> None:
    l.say("""
        The tutorial's "dmesg | tail -10" would show the tasklet module's lines
        again above the new ones: dmesg reads the kernel's ring buffer, which
        keeps them.  The new lines are the last two:
    """)
    l.type("$ dmesg | tail -2")
    l.say("""
        Again the init's message comes first and the deferred function's after
        it.  No taint notice this time: the kernel is already marked.
    """)


def workqueue_remove(l: Lesson) -> None:
    l.type("$ sudo rmmod workqueue_driver")
    l.type("$ dmesg | tail -1")
    l.say("""
        flush_workqueue() waits for the items queued so far; destroy_workqueue()
        drains the queue itself too, so here the flush is harmless but not
        needed.  Work queued on a system workqueue with schedule_work() is
        covered by no destroy: an exit function must cancel_work_sync() each
        such item.
    """)
    l.say("""
        Work items, unlike tasklets, run in process context: they may sleep,
        take mutexes and allocate with GFP_KERNEL.
    """)


def softirq_counts(l: Lesson) -> None:
    l.say("""
        Tutorial: "Check if a tasklet or workqueue is running" with
        "cat /proc/interrupts | grep -i softirq".
    """)
    result = l.type("$ cat /proc/interrupts | grep -i softirq")
    l.say(f"""
        Nothing (grep exits with status {result.status}).  Correction:
        /proc/interrupts counts hardware interrupts, one row per IRQ line that
        has a handler and one per architecture counter (LOC for the local timer,
        RES, CAL, TLB...); softirqs and tasklets do not appear in it:
    """)
    l.type("$ cat /proc/interrupts")
    l.say("Softirq counts are in /proc/softirqs:")
    l.type("$ cat /proc/softirqs")
    l.say("""
        Each number counts how many times that softirq's handler ran on that
        CPU, not tasklets: one run of the TASKLET handler executes every tasklet
        queued on its CPU, BH workqueue items run in it too, and nothing here
        says whether anything is running now.  The TASKLET row shows the one
        run on CPU 0 that executed my_tasklet_func.  /proc/stat has the totals
        on one line, all vectors first, then each in order (HI, TIMER, NET_TX,
        NET_RX, BLOCK, IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU):
    """)
    l.type("$ grep softirq /proc/stat")
    l.say("""
        To see each tasklet, read the trace that step 1 switched on:
    """)
    l.type("$ grep tasklet /sys/kernel/tracing/trace")
    l.say("""
        The tasklet ran on CPU 0 ([000]), in ksoftirqd/0, in softirq context
        (the "s" in the flags column), at the very time of its line in the log.
    """)


def debug_workqueue(l: Lesson) -> None:
    l.say("""
        Tutorial: "View kernel workqueues in real-time" with
        "cat /sys/kernel/debug/workqueue".
    """)
    l.say("""
        Correction: Linux has no such file, and mainline never had one.  On
        Linux the command prints "cat: /sys/kernel/debug/workqueue: No such
        file or directory".  bottomhalf does provide it, as its own live view
        of every workqueue, pool and worker, and its first lines say so:
    """)
    l.type("$ cat /sys/kernel/debug/workqueue")
    l.say("""
        my_wq is gone: the module destroyed it.  On Linux, look at workqueues
        with:
    """)
    l.say("""
        - the workqueue tracepoints, as switched on in step 1;
        - tools/workqueue/wq_dump.py (pools, and which pool serves each
          workqueue on each CPU) and wq_monitor.py (per-workqueue counters),
          drgn scripts shipped in the kernel source;
        - SysRq-t (echo t > /proc/sysrq-trigger), which logs the busy
          workqueues and worker pools to dmesg;
        - /sys/bus/workqueue/devices/, for workqueues created with WQ_SYSFS;
        - ps, where kworkers are named after their pool and last workqueue
          (kworker/u8:0-my_wq).
    """)
    l.type("$ grep workqueue_ /sys/kernel/tracing/trace")
    l.say("""
        insmod queued my_work on my_wq (req_cpu=8192 is WORK_CPU_UNBOUND, "any
        CPU"); the item became active at once, and the kworker kworker/u8:0
        (pool 8, the unbound pool) ran my_work_func.
    """)


def printk_level(l: Lesson) -> None:
    l.say("""
        Tutorial: "Manually schedule a workqueue for debugging" with
        "echo 1 > /proc/sys/kernel/printk".
    """)
    l.say("""
        Correction: that file holds four printk settings, and writing one number
        changes only the first, console_loglevel.  It decides which messages
        reach the console; it schedules nothing.  No command runs a module's
        work item unless the module itself provides a file or device whose
        handler queues it.
    """)
    l.type("$ cat /proc/sys/kernel/printk")
    l.say("""
        The four numbers are console_loglevel (a message reaches the console
        when its level is below it), the level of a printk without one
        (default_message_loglevel), the lowest console_loglevel allowed and the
        boot default.  Distributions that boot with "quiet" start at 4.
    """)
    l.say("""
        A console is where the kernel prints messages as they happen: the text
        screen, a serial line.  The lesson attaches one now and loads
        examples/hello.py, which logs one KERN_INFO (level 6) line when loaded
        and one when removed.  6 is below 7, so:
    """)
    l.attach_console()
    l.type("$ sudo insmod hello.ko")
    l.show_console()
    l.say("Count the work items queued so far (the trace has one line for each):")
    l.type("$ grep -c workqueue_queue_work /sys/kernel/tracing/trace")
    l.type("# echo 1 > /proc/sys/kernel/printk")
    l.type("$ cat /proc/sys/kernel/printk")
    l.type("$ grep -c workqueue_queue_work /sys/kernel/tracing/trace")
    l.say("""
        Only console_loglevel changed, and no work was queued.  Now only
        KERN_EMERG (level 0) messages reach the console:
    """)
    l.type("$ sudo rmmod hello")
    l.show_console()
    l.type("$ dmesg | tail -2")
    l.say("""
        dmesg reads the ring buffer, which keeps every message whatever its
        level: both lines are there.  "dmesg -n 1" is the usual way to do what
        this echo did.
    """)


def summary(l: Lesson) -> None:
    l.say("The tutorial's lesson, corrected:")
    l.say("""
        - Name a module's functions after the module: tasklet_init and
          workqueue_init are kernel functions, and the tutorial's modules do
          not compile.
        - A tasklet runs in softirq context on the CPU that scheduled it, as an
          interrupt returns or in ksoftirqd.  It must not sleep; GFP_ATOMIC
          allocations are fine.  Tasklets are deprecated: new code uses
          threaded IRQs, or BH workqueues (WQ_BH, Linux 6.9) for work that must
          run in softirq context.
        - A work item runs in process context on a kworker shared by all
          workqueues, and may sleep.
        - An exit function stops everything its module started before the
          code goes away: free_irq(), del_timer_sync(), tasklet_kill(),
          cancel_work_sync(), destroy_workqueue().
        - /proc/interrupts has no softirqs.  /proc/softirqs counts handler
          runs per CPU, not tasklets.  The irq and workqueue tracepoints show
          each tasklet and work item.
        - /sys/kernel/debug/workqueue does not exist on Linux.
        - echo 1 > /proc/sys/kernel/printk sets console_loglevel.  It hides
          messages from the console, not from dmesg, and queues no work.
    """)
    l.say("""
        Next, a device interrupt through all three stages - hard IRQ, tasklet,
        work item - with "bh run examples/irq_driver.py", and what the kernel
        reports when a tasklet sleeps with "bh run examples/sleepy_tasklet.py".
    """)


STEPS = [
    Step("Switch on the tracepoints", tracepoints),
    Step("The tutorial's tasklet_driver.c does not compile", tasklet_verbatim),
    Step("Load the tasklet module", tasklet_load),
    Step("Check the kernel log", tasklet_dmesg),
    Step("Remove the tasklet module", tasklet_remove),
    Step("The tutorial's workqueue_driver.c does not compile", workqueue_verbatim),
    Step("Load the workqueue module", workqueue_load),
    Step("Check the kernel log", workqueue_dmesg),
    Step("Remove the workqueue module", workqueue_remove),
    Step("Is a tasklet running? Not in /proc/interrupts", softirq_counts),
    Step("/sys/kernel/debug/workqueue does not exist", debug_workqueue),
    Step("echo 1 > /proc/sys/kernel/printk schedules nothing", printk_level),
    Step("Summary", summary),
]
