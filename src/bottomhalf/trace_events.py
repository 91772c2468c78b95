"""The trace events and how ``set_event`` names them (reference §8).

A module of its own, importing nothing, so that ``bh trace record`` checks
its ``-e`` words with the kernel's own rules without loading the kernel's
tracing code.
"""

# event -> system, in available_events order
EVENTS: dict[str, str] = {
    "irq_handler_entry": "irq",
    "irq_handler_exit": "irq",
    "softirq_raise": "irq",
    "softirq_entry": "irq",
    "softirq_exit": "irq",
    "tasklet_entry": "irq",
    "tasklet_exit": "irq",
    "workqueue_queue_work": "workqueue",
    "workqueue_activate_work": "workqueue",
    "workqueue_execute_start": "workqueue",
    "workqueue_execute_end": "workqueue",
}


def match_events(word: str, events: dict[str, str] | None = None) -> list[str]:
    """The events (of ``events``, event -> system; default :data:`EVENTS`) that a
    ``set_event`` word names, as kernel/trace/trace_events.c
    ftrace_set_clr_event() splits it at the first ``:``:

    * ``SYSTEM:EVENT``; ``*:EVENT`` and ``:EVENT`` mean that event in any system,
      ``SYSTEM:*`` and ``SYSTEM:`` every event of the system;
    * a word without ``:`` names a system or an event.

    ``*`` alone is taken as ``*:*`` (every event).  An empty list: no such event.
    """
    if events is None:
        events = EVENTS
    word = word.strip()
    if not word:
        return []
    if word == "*":
        return list(events)
    system, colon, event = word.partition(":")
    if not colon:
        return [e for e, s in events.items() if word in (e, s)]
    any_system = system in ("", "*")
    any_event = event in ("", "*")
    return [e for e, s in events.items()
            if (any_system or s == system) and (any_event or e == event)]
