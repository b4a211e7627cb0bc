"""The mux protocol client (`transport.mux`) against a scripted ControlMaster.

The scripted master here speaks PROTOCOL.mux from the master's side on a unix socket and
receives the three descriptors like ssh does; the integration suite runs the same client
against real ``ssh -M`` masters and sshd.
"""

from __future__ import annotations

import array
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from cdist_trio.transport import mux

Script = Callable[["MasterSide"], Awaitable[None]]


class MasterSide:
    """One accepted control connection, from the master's point of view."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.command = b""
        self.environment: list[bytes] = []
        self.fds: list[int] = []

    async def _exactly(self, count: int) -> bytes:
        # Never more than asked for: a greedy read would swallow the byte that carries
        # a descriptor, and the descriptor with it (ssh's master reads the same way).
        data = bytearray()
        while len(data) < count:
            chunk = await self.sock.recv(count - len(data))
            assert chunk, "the client closed the socket"
            data += chunk
        return bytes(data)

    async def packet(self) -> bytes:
        (size,) = struct.unpack(">I", await self._exactly(4))
        return await self._exactly(size)

    async def send(self, *words: int, text: bytes | None = None) -> None:
        body = b"".join(struct.pack(">I", w) for w in words)
        if text is not None:
            body += struct.pack(">I", len(text)) + text
        await self.sock.send(struct.pack(">I", len(body)) + body)

    async def hello(self, version: int = mux.VERSION) -> None:
        await self.send(mux.MSG_HELLO, version)
        kind, theirs = struct.unpack(">II", await self.packet())
        assert (kind, theirs) == (mux.MSG_HELLO, mux.VERSION)

    async def session_request(self) -> int:
        """Read the request and the three descriptors; the request id."""
        body = await self.packet()
        kind, request_id = struct.unpack_from(">II", body)
        assert kind == mux.C_NEW_SESSION
        fields = body[8:]
        (reserved,) = struct.unpack_from(">I", fields)
        flags = struct.unpack_from(">5I", fields, 4 + reserved)
        # no tty; X11 and agent forwarding as the master's ssh_config says; no subsystem
        assert flags == (0, 1, 1, 0, mux.NO_ESCAPE_CHAR)
        rest = fields[4 + reserved + 20 :]
        (term,) = struct.unpack_from(">I", rest)
        rest = rest[4 + term :]
        (size,) = struct.unpack_from(">I", rest)
        self.command = rest[4 : 4 + size]
        rest = rest[4 + size :]
        while rest:
            (size,) = struct.unpack_from(">I", rest)
            self.environment.append(rest[4 : 4 + size])
            rest = rest[4 + size :]
        for _ in range(3):
            data, ancillary, _, _ = await self.sock.recvmsg(1, socket.CMSG_SPACE(4))
            assert data == b"\0"
            [(level, kind, payload)] = ancillary
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            self.fds.append(array.array("i", payload)[0])
        return int(request_id)

    def close_fds(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


async def _serve(tmp_path: Path, script: Script, nursery: trio.Nursery) -> Path:
    """A listening control socket whose one connection is handled by ``script``."""
    path = tmp_path / "control"
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener.bind(str(path))
    listener.listen(1)

    async def accept_one() -> None:
        with listener:
            conn, _ = await listener.accept()
        with conn:
            side = MasterSide(conn)
            try:
                await script(side)
            finally:
                side.close_fds()

    nursery.start_soon(accept_one)
    return path


async def _run(
    tmp_path: Path, script: Script, command: str = "cmd", stdin: bytes | None = None
) -> mux.SessionResult:
    outcome: list[mux.SessionResult | BaseException] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            control = await _serve(tmp_path, script, nursery)
            try:
                outcome.append(await mux.run_session(control, command, stdin))
            except Exception as exc:  # raised here, not as a group from the nursery
                outcome.append(exc)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_session_carries_command_stdin_output_and_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(300_000)  # more than a pipe holds: fed while the master reads
    seen: dict[str, bytes] = {}
    monkeypatch.setenv("LC_MUX_TEST", "a b=c")

    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_SESSION_OPENED, request_id, 5)
        stdin_fd, stdout_fd, stderr_fd = side.fds
        seen["stdin"] = await trio.to_thread.run_sync(_read_all, stdin_fd)
        os.write(stdout_fd, b"out:" + side.command)
        # The whole environment goes along: the master keeps what SendEnv names.
        assert b"LC_MUX_TEST=a b=c" in side.environment
        assert len(side.environment) == len(os.environ)
        os.write(stderr_fd, b"err")
        side.close_fds()
        await side.send(mux.S_EXIT_MESSAGE, 5, 7)

    result = await _run(tmp_path, master, command="printf 'x y'", stdin=payload)
    assert result == mux.SessionResult(7, b"out:printf 'x y'", b"err")
    assert seen["stdin"] == payload


async def test_no_stdin_gives_the_command_an_empty_input(tmp_path: Path) -> None:
    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_SESSION_OPENED, request_id, 1)
        assert os.read(side.fds[0], 10) == b""
        side.close_fds()
        await side.send(mux.S_EXIT_MESSAGE, 1, 0)

    assert (await _run(tmp_path, master)).status == 0


async def test_a_master_that_reports_no_exit_status(tmp_path: Path) -> None:
    # As when the command dies of a signal or the connection goes: ssh's client says 255.
    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_SESSION_OPENED, request_id, 1)
        os.write(side.fds[1], b"partial")

    result = await _run(tmp_path, master)
    assert result == mux.SessionResult(None, b"partial", b"")


async def test_a_refused_session_is_an_error_with_the_masters_reason(tmp_path: Path) -> None:
    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_FAILURE, request_id, text=b"Session open refused by peer")

    with pytest.raises(mux.MuxRefused) as caught:
        await _run(tmp_path, master)
    assert caught.value.reason == "Session open refused by peer"


async def test_another_protocol_version_is_unsupported(tmp_path: Path) -> None:
    async def master(side: MasterSide) -> None:
        await side.send(mux.MSG_HELLO, 3)
        await side.packet()

    with pytest.raises(mux.MuxUnsupported, match="version 3"):
        await _run(tmp_path, master)


async def test_a_master_that_is_gone(tmp_path: Path) -> None:
    with pytest.raises(mux.MuxError, match="cannot reach the ssh master"):
        await mux.run_session(tmp_path / "no-such-socket", "true", None)


async def test_a_protocol_error_after_the_session_opened_says_so(tmp_path: Path) -> None:
    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_SESSION_OPENED, request_id, 1)
        await side.send(0x12345678, 1)

    with pytest.raises(mux.MuxSessionBroken, match="0x12345678"):
        await _run(tmp_path, master)


async def test_cancelling_a_session_closes_the_socket_and_the_pipes(tmp_path: Path) -> None:
    closed = trio.Event()

    async def master(side: MasterSide) -> None:
        await side.hello()
        request_id = await side.session_request()
        await side.send(mux.S_SESSION_OPENED, request_id, 1)
        assert await side.sock.recv(1) == b""  # the client hung up
        with pytest.raises(BrokenPipeError):
            os.write(side.fds[1], b"late output")
        closed.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            control = await _serve(tmp_path, master, nursery)
            with trio.CancelScope() as scope:
                nursery.start_soon(_cancel_when_blocked, scope)
                await mux.run_session(control, "sleep 100", b"input")
            assert scope.cancelled_caught
            await closed.wait()


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def _exit(tmp_path: Path, script: Script) -> None:
    """`mux.request_exit` against ``script``; its exception raised here, not grouped."""
    failures: list[Exception] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            control = await _serve(tmp_path, script, nursery)
            try:
                await mux.request_exit(control)
            except Exception as exc:
                failures.append(exc)
    if failures:
        raise failures[0]


@pytest.mark.parametrize("answers", [True, False])
async def test_an_exit_request_is_the_terminate_message(tmp_path: Path, answers: bool) -> None:
    """Granted with an ok, or by closing the socket: OpenSSH's master often exits
    before its answer is out."""
    asked: list[tuple[int, int]] = []

    async def master(side: MasterSide) -> None:
        await side.hello()
        kind, request_id = struct.unpack(">II", await side.packet())
        asked.append((kind, request_id))
        if answers:
            await side.send(mux.S_OK, request_id)

    await _exit(tmp_path, master)
    assert asked == [(mux.C_TERMINATE, 1)]


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        ((mux.S_PERMISSION_DENIED, 1), mux.MuxRefused, "not allowed"),
        ((mux.S_FAILURE, 1), mux.MuxRefused, "not allowed"),
        ((mux.S_SESSION_OPENED, 1), mux.MuxError, "0x80000006 to an exit request"),
    ],
)
async def test_an_exit_request_not_granted_is_an_error(
    tmp_path: Path, answer: tuple[int, int], error: type[Exception], match: str
) -> None:
    """Refused, or answered with something else: the caller has to stop the master
    another way."""

    async def master(side: MasterSide) -> None:
        await side.hello()
        await side.packet()
        await side.send(*answer, text=b"not allowed")

    with pytest.raises(error, match=match):
        await _exit(tmp_path, master)


async def test_an_exit_request_to_another_protocol_version_is_unsupported(
    tmp_path: Path,
) -> None:
    async def master(side: MasterSide) -> None:
        await side.send(mux.MSG_HELLO, 3)
        await side.packet()

    with pytest.raises(mux.MuxUnsupported):
        await _exit(tmp_path, master)
    with pytest.raises(mux.MuxError, match="cannot reach the ssh master"):
        await mux.request_exit(tmp_path / "no-such-socket")
