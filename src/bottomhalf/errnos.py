"""Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h).

Kept here rather than taken from Python's :mod:`errno`, whose values follow
the host operating system, because modules return Linux's numbers.
"""

EPERM = 1
ENOENT = 2
ESRCH = 3
EINTR = 4
EIO = 5
ENXIO = 6
E2BIG = 7
ENOEXEC = 8
EBADF = 9
ECHILD = 10
EAGAIN = 11
EWOULDBLOCK = EAGAIN
ENOMEM = 12
EACCES = 13
EFAULT = 14
EBUSY = 16
EEXIST = 17
EXDEV = 18
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENFILE = 23
EMFILE = 24
ENOTTY = 25
EFBIG = 27
ENOSPC = 28
ESPIPE = 29
EROFS = 30
EPIPE = 32
EDOM = 33
ERANGE = 34
EDEADLK = 35
ENAMETOOLONG = 36
ENOSYS = 38
ENOTEMPTY = 39
ENODATA = 61
ETIME = 62
ENOLINK = 67
EPROTO = 71
EBADMSG = 74
EOVERFLOW = 75
EILSEQ = 84
ENOTSUPP = 524
EOPNOTSUPP = 95
ENOTCONN = 107
ETIMEDOUT = 110
ECONNREFUSED = 111
EALREADY = 114
EINPROGRESS = 115
ECANCELED = 125
ERESTARTSYS = 512

_STRERROR = {
    EPERM: "Operation not permitted",
    ENOTCONN: "Transport endpoint is not connected",
    ENOENT: "No such file or directory",
    ESRCH: "No such process",
    EINTR: "Interrupted system call",
    EIO: "Input/output error",
    ENXIO: "No such device or address",
    E2BIG: "Argument list too long",
    ENOEXEC: "Exec format error",
    EBADF: "Bad file descriptor",
    ECHILD: "No child processes",
    EAGAIN: "Resource temporarily unavailable",
    ENOMEM: "Cannot allocate memory",
    EACCES: "Permission denied",
    EFAULT: "Bad address",
    EBUSY: "Device or resource busy",
    EEXIST: "File exists",
    EXDEV: "Invalid cross-device link",
    ENODEV: "No such device",
    ENOTDIR: "Not a directory",
    EISDIR: "Is a directory",
    EINVAL: "Invalid argument",
    ENFILE: "Too many open files in system",
    EMFILE: "Too many open files",
    ENOTTY: "Inappropriate ioctl for device",
    EFBIG: "File too large",
    ENOSPC: "No space left on device",
    ESPIPE: "Illegal seek",
    EROFS: "Read-only file system",
    EPIPE: "Broken pipe",
    EDOM: "Numerical argument out of domain",
    ERANGE: "Numerical result out of range",
    EDEADLK: "Resource deadlock avoided",
    ENAMETOOLONG: "File name too long",
    ENOSYS: "Function not implemented",
    ENOTEMPTY: "Directory not empty",
    ENODATA: "No data available",
    ETIME: "Timer expired",
    ENOLINK: "Link has been severed",
    EPROTO: "Protocol error",
    EBADMSG: "Bad message",
    EOVERFLOW: "Value too large for defined data type",
    EILSEQ: "Invalid or incomplete multibyte or wide character",
    EOPNOTSUPP: "Operation not supported",
    ETIMEDOUT: "Connection timed out",
    ECONNREFUSED: "Connection refused",
    EALREADY: "Operation already in progress",
    EINPROGRESS: "Operation now in progress",
    ECANCELED: "Operation canceled",
    ENOTSUPP: "Unknown error 524",  # kernel-internal: glibc has no text for it
}

ERRNO_NAMES = {v: k for k, v in globals().items() if k.startswith("E") and isinstance(v, int)}
ERRNO_NAMES[EAGAIN] = "EAGAIN"


def strerror(err: int) -> str:
    """glibc's strerror() text for a Linux errno."""
    return _STRERROR.get(err, f"Unknown error {err}")


# kmod's insmod (tools/insmod.c mod_strerror) has its own words for the errors
# init_module() returns most often, whoever returned them: the loader or the
# module's init (an init returning -EINVAL also reads "Invalid parameters").
_KMOD_STRERROR = {
    ENOEXEC: "Invalid module format",
    ENOENT: "Unknown symbol in module",
    ESRCH: "Module has wrong symbol version",
    EINVAL: "Invalid parameters",
}


def kmod_strerror(err: int) -> str:
    """insmod's reason in "could not insert module X: <reason>"."""
    return _KMOD_STRERROR.get(err) or strerror(err)
