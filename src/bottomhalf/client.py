"""Talking to a kernel that stays up (``bh boot``): where it listens, and how.

A booted kernel listens on a Unix socket in a private runtime directory:
``$XDG_RUNTIME_DIR/bottomhalf/`` when that is usable, else
``/tmp/bottomhalf-<uid>/``.  The directory must belong to the user and allow
no access to anyone else (mode 0700), and the socket is 0600; the server also
checks the peer's uid (SO_PEERCRED).  A directory or socket that fails those
checks is refused with a message saying what is wrong.  Next to each socket
``NAME.sock`` lie ``NAME.pid`` (the server's pid) and ``NAME.log`` (its stderr).

The protocol is one JSON object per line.  A request is
``{"op": NAME, ...arguments}``; the answer is ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "one line", "errno": N, ...}``.  Streaming requests
(``"follow": true``) get one ``{"item": ...}`` object per item, ``{"ping":
true}`` now and then while nothing happens, and ``{"end": true}`` if the
stream is finite, until the client closes the connection.

This module imports only the standard library's lightest parts (``_socket``
rather than ``socket``), so that ``bh lsmod`` starts fast.
"""

from __future__ import annotations

import _socket
import json
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

DEFAULT_NAME = "default"
NAME_ENV = "BH_NAME"  # the kernel a command talks to when --name is not given
SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1


class ClientError(Exception):
    """A request could not be made or was refused; ``str()`` is one clear line.

    ``errno`` is the kernel's errno when the kernel refused the request (0 when
    the request never got an answer, or failed without one), ``detail`` what
    the kernel knows beyond it, and ``reply`` the whole answer."""

    def __init__(self, message: str, errno: int = 0, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.reply = reply or {}
        self.detail: str = self.reply.get("detail", "")


class StaleSocket(ClientError):
    """The socket is there but nobody listens: its server died without cleaning up."""


class NoKernel(ClientError):
    """No socket of that name: no such kernel was booted, or it has halted."""


def default_name() -> str:
    return os.environ.get(NAME_ENV) or DEFAULT_NAME


def runtime_dir(create: bool = False) -> str:
    """The private directory holding the sockets of this user's kernels."""
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        try:
            st = os.stat(xdg)
            if st.st_uid == uid and not st.st_mode & 0o077:
                base = os.path.join(xdg, "bottomhalf")
                if create:
                    _make_private_dir(base)
                return base
        except OSError:
            pass
    base = os.path.join("/tmp", f"bottomhalf-{uid}")
    if create:
        _make_private_dir(base)
    return base


def _make_private_dir(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    check_private_dir(path)


def check_private_dir(path: str) -> None:
    """Refuse a runtime directory another user could read or replace."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ClientError(f"{path} does not exist") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ClientError(f"{path} is not a directory: refusing to use it")
    _check_private(path, st, 0o700)


def check_socket(path: str) -> None:
    """Refuse a socket file that is not a socket or belongs to someone else."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise ClientError(f"{path} is not a socket: refusing to use it")
    _check_private(path, st, 0o600)


def _check_private(path: str, st: os.stat_result, mode: int) -> None:
    if st.st_uid != os.getuid():
        raise ClientError(f"{path} belongs to uid {st.st_uid}, not to you: refusing to use it")
    if st.st_mode & 0o077:
        raise ClientError(f"{path} is accessible to other users (mode {st.st_mode & 0o777:04o}); "
                          f"it must be {mode:04o}: refusing to use it")


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name) \
            or name.startswith("."):
        raise ClientError(f"bad kernel name {name!r}: use letters, digits, '-', '_' and '.'")


def socket_path(name: str = DEFAULT_NAME) -> str:
    check_name(name)
    return os.path.join(runtime_dir(), f"{name}.sock")


def pid_path(name: str = DEFAULT_NAME) -> str:
    check_name(name)
    return os.path.join(runtime_dir(), f"{name}.pid")


def log_path(name: str = DEFAULT_NAME) -> str:
    check_name(name)
    return os.path.join(runtime_dir(), f"{name}.log")


def remove_runtime_files(name: str) -> None:
    """Remove a kernel's socket and pid file, whichever are there (its log stays)."""
    for path in (socket_path(name), pid_path(name)):
        try:
            os.unlink(path)
        except OSError:
            pass


def check_path_length(path: str) -> None:
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise ClientError(f"the socket path {path} is longer than a Unix socket allows "
                          f"({SUN_PATH_MAX} bytes): set XDG_RUNTIME_DIR to a shorter directory")


def list_kernels() -> list[str]:
    """The names of the kernels with a socket in the runtime directory."""
    try:
        return sorted(f[:-5] for f in os.listdir(runtime_dir()) if f.endswith(".sock"))
    except OSError:
        return []


def _hint(name: str) -> str:
    return "" if name == DEFAULT_NAME else f" --name {name}"


class Client:
    """A connection to one booted kernel."""

    def __init__(self, name: str | None = None, timeout: float | None = 60.0) -> None:
        self.name = name = name or default_name()
        path = socket_path(name)
        base = os.path.dirname(path)
        if not os.path.lexists(base) or not os.path.lexists(path):
            raise NoKernel(f"no kernel named '{name}' is running (start one with: bh boot"
                           f"{_hint(name)})")
        check_private_dir(base)
        check_socket(path)
        check_path_length(path)
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except ConnectionRefusedError:
            self.sock.close()
            raise StaleSocket(f"kernel '{name}' is not running any more (stale socket {path}); "
                              f"clean up with: bh halt{_hint(name)}") from None
        except FileNotFoundError:
            self.sock.close()
            raise NoKernel(f"no kernel named '{name}' is running (start one with: bh boot"
                           f"{_hint(name)})") from None
        except PermissionError:
            self.sock.close()
            raise ClientError(f"permission denied connecting to {path}") from None
        except OSError as e:
            self.sock.close()
            raise ClientError(f"cannot connect to kernel '{name}': {e.strerror or e}") from None
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, op: str, args: dict[str, Any]) -> None:
        msg = dict(args)
        msg["op"] = op
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def _readline(self) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl + 1], self._buf[nl + 1:]
                return line
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                line, self._buf = self._buf, b""
                return line
            self._buf += chunk

    def _recv(self) -> dict[str, Any]:
        line = self._readline()
        if not line:
            raise ClientError(f"kernel '{self.name}' closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its result, or raise ClientError."""
        try:
            self._send(op, args)
            reply = self._recv()
        except TimeoutError:
            raise ClientError(f"kernel '{self.name}' did not answer '{op}' in time") from None
        except OSError as e:
            raise ClientError(f"lost kernel '{self.name}': {e.strerror or e}") from None
        if not reply.get("ok"):
            raise ClientError(reply.get("error", "request failed"), reply.get("errno", 0), reply)
        return reply.get("result")

    def stream(self, op: str, **args: Any) -> Iterator[Any]:
        """Send a following request now; iterate over its items until the stream ends."""
        self.sock.settimeout(None)
        try:
            self._send(op, dict(args, follow=True))
        except OSError as e:
            raise ClientError(f"lost kernel '{self.name}': {e.strerror or e}") from None
        return self._items()

    def _items(self) -> Iterator[Any]:
        try:
            while True:
                line = self._readline()
                if not line:
                    return
                msg = json.loads(line)
                if msg.get("ping"):
                    continue
                if "error" in msg:
                    raise ClientError(msg["error"], msg.get("errno", 0), msg)
                if msg.get("end"):
                    return
                yield msg.get("item")
        except OSError as e:
            raise ClientError(f"lost kernel '{self.name}': {e.strerror or e}") from None
