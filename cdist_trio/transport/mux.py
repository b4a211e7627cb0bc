"""Sessions through an OpenSSH ControlMaster, without an ``ssh`` process per session.

``ssh -S <socket> host command`` (a mux client) is a process per command: an exec,
libcrypto's start-up and the ssh_config read again, 4.6 ms of local CPU per command here
against 0.5 ms without it, and ~6 MiB resident while it runs.  The master it talks to
listens on a unix socket and speaks a small, documented protocol (OpenSSH's
``PROTOCOL.mux``, version 4): a hello each way, then a new-session request carrying the
command, followed by the session's stdin, stdout and stderr as three file descriptors
(one ``SCM_RIGHTS`` message each).  The master opens the channel on the server and runs it on
those descriptors; it answers "session opened" or a failure with a reason, and when the
command ends it sends the exit status and closes the socket.  `run_session` speaks that
protocol from the run's own thread: pipes instead of a process.  `request_exit` asks the
master to exit the same way (``ssh -O exit`` is a process for one message).

The master stays the real ``ssh`` binary, so authentication, host keys, ProxyJump and
every ssh_config option are OpenSSH's own.  Like ssh's mux client, a session the server
refuses (MaxSessions) is reported, never retried on a new connection here.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import trio

VERSION = 4
MSG_HELLO = 0x00000001
C_NEW_SESSION = 0x10000002
C_TERMINATE = 0x10000005
S_OK = 0x80000001
S_PERMISSION_DENIED = 0x80000002
S_FAILURE = 0x80000003
S_EXIT_MESSAGE = 0x80000004
S_SESSION_OPENED = 0x80000006
S_TTY_ALLOC_FAIL = 0x80000008
NO_ESCAPE_CHAR = 0xFFFFFFFF
MAX_PACKET = 256 * 1024
"""Larger replies than any the master sends (its longest is a failure reason)."""

_READ_SIZE = 65536


class MuxError(Exception):
    """The master could not be reached or did not answer as expected: nothing ran."""


class MuxUnsupported(MuxError):
    """The master speaks another protocol version (use ssh's own mux client)."""


class MuxRefused(MuxError):
    """The master answered the session request with a failure; ``reason`` is its text
    (``Session open refused by peer`` when the server refused the channel)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MuxSessionBroken(Exception):
    """The session was opened, then the master sent something other than an exit
    status: the command may have run."""


@dataclass(frozen=True)
class SessionResult:
    """What one session left: the exit status the master reported (None: it reported
    none, as when the command died of a signal or the connection went away) and the
    command's output."""

    status: int | None
    stdout: bytes
    stderr: bytes


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def _string(value: bytes) -> bytes:
    return _u32(len(value)) + value


def _packet(*fields: bytes) -> bytes:
    body = b"".join(fields)
    return _u32(len(body)) + body


def hello() -> bytes:
    return _packet(_u32(MSG_HELLO), _u32(VERSION))


def new_session(request_id: int, command: bytes, environment: Iterable[bytes] = ()) -> bytes:
    """The session request: no tty, not a subsystem, no escape character, no terminal
    type (ssh's own mux client with ``-T`` sends the same).  Agent and X11 forwarding are
    asked for, and ``environment`` (``NAME=value`` strings) sent: the master grants them
    as far as its own ssh_config says (``ForwardAgent``, ``ForwardX11``, ``SendEnv``),
    which is the ssh_config ssh's mux client would have read."""
    return _packet(
        _u32(C_NEW_SESSION),
        _u32(request_id),
        _string(b""),  # reserved
        _u32(0),  # want tty
        _u32(1),  # X11 forwarding, if the master's ForwardX11 says so
        _u32(1),  # agent forwarding, if the master's ForwardAgent says so
        _u32(0),  # subsystem
        _u32(NO_ESCAPE_CHAR),
        _string(b""),  # terminal type
        _string(command),
        *map(_string, environment),
    )


class _Control:
    """The control socket: length-prefixed packets, descriptors, and every failure of
    the socket mapped to `MuxError` here."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    @classmethod
    async def connect(cls, control: Path) -> _Control:
        try:
            return cls(await trio.open_unix_socket(str(control)))
        except OSError as exc:
            reason = exc.strerror or exc
            raise MuxError(f"cannot reach the ssh master at {control}: {reason}") from exc

    async def send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except trio.BrokenResourceError as exc:
            raise MuxError(f"writing to the ssh master failed: {exc.__cause__ or exc}") from exc

    async def send_fd(self, fd: int) -> None:
        # One byte of data carries each descriptor, as the master's receiver expects.
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        try:
            await self._stream.socket.sendmsg([b"\0"], rights)
        except OSError as exc:
            raise MuxError(f"passing a descriptor to the ssh master failed: {exc}") from exc

    async def packet(self) -> bytes | None:
        """The next packet's body, or None when the master closed the socket."""
        while True:
            if len(self._buffer) >= 4:
                (size,) = struct.unpack_from(">I", self._buffer)
                if size > MAX_PACKET:
                    raise MuxError(f"the ssh master sent a {size}-byte message")
                if len(self._buffer) >= 4 + size:
                    body = bytes(self._buffer[4 : 4 + size])
                    del self._buffer[: 4 + size]
                    return body
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except trio.BrokenResourceError as exc:  # ECONNRESET: the master went away
                reason = exc.__cause__ or exc
                raise MuxError(f"reading from the ssh master failed: {reason}") from exc
            if not data:
                if self._buffer:
                    raise MuxError("the ssh master closed the socket inside a message")
                return None
            self._buffer += data

    def close(self) -> None:
        self._stream.socket.close()


def _fields(body: bytes, count: int) -> list[int]:
    if len(body) < 4 * count:
        raise MuxError("the ssh master sent a truncated message")
    return list(struct.unpack_from(f">{count}I", body))


def _reason(body: bytes) -> str:
    """The string after a failure reply's type and request id."""
    if len(body) < 12:
        return "no reason given"
    (size,) = struct.unpack_from(">I", body, 8)
    return body[12 : 12 + size].decode(errors="replace") or "no reason given"


async def _handshake(control: _Control) -> None:
    await control.send(hello())
    body = await control.packet()
    if body is None:
        raise MuxError("the ssh master closed the socket before its hello")
    kind, version = _fields(body, 2)
    if kind != MSG_HELLO or version != VERSION:
        raise MuxUnsupported(
            f"the ssh master speaks mux message {kind:#x} version {version}, not hello {VERSION}"
        )


async def _drain(fd: int, sink: bytearray) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        while chunk := await stream.receive_some(_READ_SIZE):
            sink += chunk


async def _feed(fd: int, data: bytes) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        # The command may end without reading all of its input, as with ssh.
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(data)


async def run_session(control: Path, command: str, stdin: bytes | None) -> SessionResult:
    """Run ``command`` in a new session of the master listening on ``control``.

    Raises `MuxError` when nothing ran (the master is gone, or refused the request:
    `MuxRefused`; speaks another version: `MuxUnsupported`), `MuxSessionBroken` when the
    master broke the protocol after the session opened.  Cancelled, it closes the
    socket and the pipes: the master then closes the channel, as when ssh's mux client
    is killed; the command itself is left to the caller (`sessions.kill_tracked`).
    """
    master = await _Control.connect(control)
    ours: list[int] = []
    theirs: list[int] = []
    try:
        await _handshake(master)
        if stdin is None:
            stdin_read, stdin_write = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
        else:
            stdin_read, stdin_write = os.pipe()
            ours.append(stdin_write)
        theirs.append(stdin_read)
        out_read, out_write = os.pipe()
        ours.append(out_read)
        theirs.append(out_write)
        err_read, err_write = os.pipe()
        ours.append(err_read)
        theirs.append(err_write)

        # Our whole environment: the master keeps what its SendEnv lines name, as it
        # does for ssh's mux client (which would have inherited the same environment).
        environment = [b"%s=%s" % item for item in os.environb.items()]
        await master.send(new_session(1, command.encode(), environment))
        for fd in theirs:
            await master.send_fd(fd)
        # The master holds its own copies now: ours would keep the pipes from closing.
        while theirs:
            os.close(theirs.pop())

        await _opened(master)
        stdout = bytearray()
        stderr = bytearray()
        status: int | None = None
        failure: MuxSessionBroken | None = None
        async with trio.open_nursery() as nursery:
            # The descriptors belong to these tasks from here on.
            ours.clear()
            if stdin_write is not None:
                nursery.start_soon(_feed, stdin_write, stdin or b"")
            nursery.start_soon(_drain, out_read, stdout)
            nursery.start_soon(_drain, err_read, stderr)
            try:
                status = await _exit_status(master)
            except MuxError as exc:  # raised after the nursery: no exception group
                failure = MuxSessionBroken(str(exc))
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure from None
        return SessionResult(status, bytes(stdout), bytes(stderr))
    finally:
        for fd in (*ours, *theirs):
            os.close(fd)
        master.close()


async def request_exit(control: Path) -> None:
    """Ask the master on ``control`` to exit, as ``ssh -O exit`` does, without a process.

    Returns once the master said yes, or closed the socket instead: it often exits
    before its answer is out, and ssh's own ``-O exit`` takes that as done too.  Raises
    `MuxError` when it could not be asked or did not agree (`MuxUnsupported`: another
    protocol version; `MuxRefused`: a refusal), so the caller stops it another way.
    """
    master = await _Control.connect(control)
    try:
        await _handshake(master)
        await master.send(_packet(_u32(C_TERMINATE), _u32(1)))
        body = await master.packet()
        if body is None:
            return
        kind = _fields(body, 1)[0]
        if kind in (S_FAILURE, S_PERMISSION_DENIED):
            raise MuxRefused(_reason(body))
        if kind != S_OK:
            raise MuxError(f"the ssh master answered {kind:#x} to an exit request")
    finally:
        master.close()


async def _opened(master: _Control) -> None:
    """The master's reply to the session request: opened, or `MuxRefused`."""
    body = await master.packet()
    if body is None:
        raise MuxError("the ssh master closed the socket without answering")
    kind = _fields(body, 1)[0]
    if kind in (S_FAILURE, S_PERMISSION_DENIED):
        raise MuxRefused(_reason(body))
    if kind != S_SESSION_OPENED:
        raise MuxError(f"the ssh master answered {kind:#x} to a session request")


async def _exit_status(master: _Control) -> int | None:
    """Messages until the master closes the socket; the exit status, if it sent one."""
    status: int | None = None
    while (body := await master.packet()) is not None:
        kind = _fields(body, 1)[0]
        if kind == S_EXIT_MESSAGE:
            status = _fields(body, 3)[2]
        elif kind != S_TTY_ALLOC_FAIL:
            raise MuxError(f"the ssh master sent an unexpected message {kind:#x}")
    return status
