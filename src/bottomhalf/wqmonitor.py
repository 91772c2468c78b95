"""tools/workqueue/wq_monitor.py's table: its -j keys, its header and its rows.

One format for both sides: the kernel's ``/sys/kernel/debug/bottomhalf/wq_monitor``
(:func:`bottomhalf.wqview.wq_monitor`) and ``bh top``.  A leaf module with no
imports at all, so that the CLI pays nothing for it at start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# wq_monitor.py -j's keys, in its order
KEYS = ("name", "unbound", "mem_reclaim", "started", "completed", "cpu_time",
        "cpu_intensive", "cm_wakeup", "repatriated", "mayday", "rescued")


def header() -> str:
    return (f'{"":>24} {"total":>8} {"infl":>5} {"CPUtime":>8} '
            f'{"CPUitsv":>7} {"CMW/RPR":>7} {"mayday":>7} {"rescued":>7}')


def row(s: dict[str, Any]) -> str:
    """One workqueue's row, from a dict with :data:`KEYS` (``-`` where a column
    does not apply: CPUitsv and CMW for unbound queues, RPR for per-CPU ones,
    mayday and rescued without WQ_MEM_RECLAIM)."""
    cpu_intensive = cmw_rpr = mayday = rescued = "-"
    if s["unbound"]:
        cmw_rpr = str(s["repatriated"])
    else:
        cpu_intensive = str(s["cpu_intensive"])
        cmw_rpr = str(s["cm_wakeup"])
    if s["mem_reclaim"]:
        mayday = str(s["mayday"])
        rescued = str(s["rescued"])
    return (f"{s['name'][-24:]:24} {s['started']:8} "
            f"{max(s['started'] - s['completed'], 0):5} {s['cpu_time'] / 1000000:8.1f} "
            f"{cpu_intensive:>7} {cmw_rpr:>7} {mayday:>7} {rescued:>7} ")
