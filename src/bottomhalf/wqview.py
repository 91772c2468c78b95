"""/sys/kernel/debug/workqueue: bottomhalf's live view of the workqueues.

Linux has no such file (reference §9.4): on a real kernel the same facts
come from ``tools/workqueue/wq_dump.py`` (pools and the CPU -> pool map),
``wq_monitor.py`` (counters) and SysRq-t (busy workers).  This view puts
them on one page, in wq_dump.py's layout where it has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kernel import Kernel

HEADER = (
    "# bottomhalf's live view of every workqueue, pool and worker.\n"
    "# Linux has no /sys/kernel/debug/workqueue: there, use tools/workqueue/wq_dump.py,\n"
    "# wq_monitor.py, SysRq-t (echo t > /proc/sysrq-trigger) and the workqueue tracepoints.\n"
)


def debug_workqueue(k: Kernel) -> str:
    wqs = k.wq
    sym = k.symbols
    out = [HEADER, "Worker Pools", "============"]
    for pool in wqs.pools:
        nw = 1 if pool.is_bh else pool.nr_workers
        ni = 0 if pool.is_bh else pool.nr_idle
        line = (f"pool[{pool.id:02d}] flags=0x{pool.flags:02x} ref={pool.refcnt:2d} "
                f"nice={pool.nice:3d} idle/workers={ni:3d}/{nw:3d} ")
        if pool.cpu >= 0:
            line += f"cpu={pool.cpu:3d}" + (" bh" if pool.is_bh else "")
        else:
            line += f"cpus={wqs.cpumask_str()} pod_cpus={wqs.cpumask_str()}"
        line += f" nr_running={pool.nr_running}"
        out.append(line)
        for w in pool.workers:
            t = w.task
            pid = t.pid if t else 0
            if w.current_work is not None:
                state = (f"running {sym.symbol(w.current_func)} for "
                         f"{w.current_pwq.wq.name if w.current_pwq else '?'}")
                if t is not None and t.state and t.wait_desc:
                    state += f", sleeping in {t.wait_desc}"
            elif w.flags & 0x4:
                state = "idle"
            else:
                state = "preparing"
            suffix = ("+" if w.current_work is not None else "-") + w.last_wq_name \
                if w.last_wq_name else ""
            out.append(f"    {w.name()}{suffix} (pid {pid}): {state}")
        if pool.worklist:
            out.append("    worklist: " + ", ".join(sym.symbol(x.func) for x in pool.worklist))
    out += ["", "Workqueue CPU -> pool", "====================="]
    cpus = " ".join(f"{c:3d}" for c in range(k.ncpus))
    out.append(f"[{'workqueue':^24s} \\ type   CPU {cpus} dfl]")
    for wq in wqs.workqueues:
        if len(wq.pwqs) == 1:
            ids = " ".join(f"{wq.pwqs[0].pool.id:3d}" for _ in range(k.ncpus))
            dfl = f"{wq.pwqs[0].pool.id:3d}"
        else:
            ids = " ".join(f"{p.pool.id:3d}" for p in wq.pwqs)
            dfl = "  -"
        out.append(f"{wq.name[-24:]:24s} {wq.kind():8s}    {ids} {dfl}")
    out += ["", "Workqueues", "=========="]
    for wq in wqs.workqueues:
        active = sum(p.nr_active for p in wq.pwqs)
        inactive = sum(len(p.inactive) for p in wq.pwqs)
        started = sum(p.stats[0] for p in wq.pwqs)
        done = sum(p.stats[1] for p in wq.pwqs)
        flags = []
        if wq.rescuer is not None:
            flags.append(f"rescuer={wq.rescuer.comm}")
        if wq.flags & (1 << 16):
            flags.append("draining")
        out.append(f"{wq.name:24s} {wq.kind():8s} flags=0x{wq.flags:x} max_active={wq.max_active} "
                   f"active={active} inactive={inactive} started={started} completed={done}"
                   + (" " + " ".join(flags) if flags else ""))
    return "\n".join(out) + "\n"
