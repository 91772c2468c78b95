"""A module's name from its file name, for the kernel (insmod) and ``bh``
(run, rmmod, modinfo) alike.

A module of its own, importing only :mod:`os` (loaded by every Python
start-up anyway), so the CLI uses it without loading :mod:`bottomhalf.module`.
"""

import os


def module_name(path: str) -> str:
    """The file name without ``.py`` (or ``.ko``, which ``rmmod x.ko`` accepts)."""
    base = os.path.basename(path)
    for ext in (".py", ".ko"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base
