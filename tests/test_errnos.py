"""errnos: Linux's errno values and glibc's strerror() texts for them."""

from __future__ import annotations

from bottomhalf import errnos


def test_every_errno_constant_has_glibc_text() -> None:
    """strerror() knows every E* constant but the kernel-internal ENOTSUPP and ERESTARTSYS."""
    internal = {errnos.ENOTSUPP, errnos.ERESTARTSYS}
    unknown = sorted(name for name, value in vars(errnos).items()
                     if name.startswith("E") and name.isupper() and isinstance(value, int)
                     and value not in internal
                     and errnos.strerror(value) == f"Unknown error {value}")
    assert unknown == []


def test_strerror_of_the_internal_errnos_is_unknown() -> None:
    """glibc has no text for ENOTSUPP (524) or ERESTARTSYS (512)."""
    assert errnos.strerror(errnos.ENOTSUPP) == "Unknown error 524"
    assert errnos.strerror(errnos.ERESTARTSYS) == "Unknown error 512"
    assert errnos.strerror(errnos.ECONNREFUSED) == "Connection refused"


def test_kmod_strerror_uses_insmods_words_else_strerror() -> None:
    """tools/insmod.c mod_strerror: four errnos get kmod's own words."""
    assert errnos.kmod_strerror(errnos.EINVAL) == "Invalid parameters"
    assert errnos.kmod_strerror(errnos.ENOEXEC) == "Invalid module format"
    assert errnos.kmod_strerror(errnos.ENOENT) == "Unknown symbol in module"
    assert errnos.kmod_strerror(errnos.ESRCH) == "Module has wrong symbol version"
    assert errnos.kmod_strerror(errnos.ENOMEM) == "Cannot allocate memory"
