"""Talking to a kernel that stays up (``bh boot``): where it listens, and how.

A booted kernel listens on a Unix socket in a private runtime directory:
``$XDG_RUNTIME_DIR/bottomhalf/`` when that is usable, else
``/tmp/bottomhalf-<uid>/``.  The directory must belong to the user and allow
no access to anyone else (mode 0700), and the socket is 0600; the server also
checks the peer's uid (SO_PEERCRED).  A directory or socket that fails those
checks is refused with a message saying what is wrong.

The protocol is one JSON object per line.  A request is
``{"op": NAME, ...arguments}``; the answer is ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "one line", "errno": N}``.  Streaming requests
(``"follow": true``) get one ``{"line": ...}`` object per line until the
client closes the connection.

This module imports nothing from the kernel, so commands start fast.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from typing import Any

DEFAULT_NAME = "default"


class ClientError(Exception):
    """A request could not be made or was refused; ``str()`` is one clear line."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


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
    if st.st_uid != os.getuid():
        raise ClientError(f"{path} belongs to uid {st.st_uid}, not to you: refusing to use it")
    if st.st_mode & 0o077:
        raise ClientError(f"{path} is accessible to other users (mode {st.st_mode & 0o777:04o}); "
                          "it must be 0700: refusing to use it")


def socket_path(name: str = DEFAULT_NAME) -> str:
    check_name(name)
    return os.path.join(runtime_dir(), f"{name}.sock")


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name) \
            or name.startswith("."):
        raise ClientError(f"bad kernel name {name!r}: use letters, digits, '-', '_' and '.'")


def list_kernels() -> list[str]:
    base = runtime_dir()
    try:
        names = sorted(f[:-5] for f in os.listdir(base) if f.endswith(".sock"))
    except OSError:
        return []
    return names


class Client:
    """A connection to one booted kernel."""

    def __init__(self, name: str = DEFAULT_NAME, timeout: float | None = 30.0) -> None:
        self.name = name
        path = socket_path(name)
        base = os.path.dirname(path)
        if not os.path.exists(base) or not os.path.exists(path):
            raise ClientError(f"no kernel named '{name}' is running (start one with: bh boot"
                              + ("" if name == DEFAULT_NAME else f" --name {name}") + ")")
        check_private_dir(base)
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise ClientError(f"{path} is not a socket: refusing to use it")
        if st.st_uid != os.getuid():
            raise ClientError(f"{path} belongs to uid {st.st_uid}, not to you: refusing to use it")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except ConnectionRefusedError:
            self.sock.close()
            raise ClientError(f"kernel '{name}' is not answering (stale socket {path}); "
                              "run: bh halt" + ("" if name == DEFAULT_NAME else f" --name {name}")
                              ) from None
        except PermissionError:
            self.sock.close()
            raise ClientError(f"permission denied connecting to {path}") from None
        self._file = self.sock.makefile("rwb")

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, op: str, args: dict[str, Any]) -> None:
        msg = dict(args)
        msg["op"] = op
        self._file.write(json.dumps(msg).encode() + b"\n")
        self._file.flush()

    def _recv(self) -> dict[str, Any]:
        line = self._file.readline()
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
            raise ClientError(f"lost kernel '{self.name}': {e}") from None
        if not reply.get("ok"):
            raise ClientError(reply.get("error", "request failed"), reply.get("errno", 0))
        return reply.get("result")

    def stream(self, op: str, **args: Any) -> Iterator[Any]:
        """Send a following request; yield each item until the connection ends."""
        self.sock.settimeout(None)
        self._send(op, dict(args, follow=True))
        while True:
            line = self._file.readline()
            if not line:
                return
            msg = json.loads(line)
            if msg.get("ping"):
                continue
            if "error" in msg:
                raise ClientError(msg["error"], msg.get("errno", 0))
            if msg.get("end"):
                return
            yield msg.get("item")
