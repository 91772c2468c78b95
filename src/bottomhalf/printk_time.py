"""The ``[%5lu.%06lu]`` timestamp of the kernel log (reference §10.3).

A module of its own, importing nothing, so that ``bh dmesg`` prints with the
same code as :mod:`bottomhalf.printk` without loading it (and its
dataclasses, threading and vsprintf) at start-up.
"""


def format_timestamp(ts_ns: int) -> str:
    """``[%5lu.%06lu]`` of the seconds and microseconds since boot."""
    usec = ts_ns // 1000
    return f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}]"
