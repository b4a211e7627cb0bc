"""The `openssh` transport: the ``ssh`` binary with supervised ControlMasters per host.

Each pooled connection is a master (``ssh -M -N``, ControlPersist off) owned by the host
scope and closed when it ends, success or failure.  Commands are sessions the engine asks
the master for over its control socket (`mux.run_session`: no process per command), so a
MaxSessions refusal is seen, counted and waited out.  A master that speaks another mux
protocol version gets ssh's own mux clients instead, which cannot silently fall back to a
new connection: a failing ProxyCommand marks the fallback path (FIELD-NOTES).
"""

from __future__ import annotations

import enum
import itertools
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..errors import AuthError, ConnectError, HostKeyError, TransportError
from ..unixserver import socket_directory
from ._process import _kill_group, run_argv
from .base import Completed
from .mux import (
    MuxError,
    MuxRefused,
    MuxSessionBroken,
    MuxUnsupported,
    request_exit,
    run_session,
)
from .pool import SessionPool
from .pooled import PooledRemote
from .sessions import (
    BUSY_WINDOW,
    NOBODY_WINDOW,
    PooledSessions,
    RetryableConnectError,
)

FALLBACK_MARKER = "cdist-trio-mux-fallback"
REFUSED = "Session open refused"
MASTER_READY_TIMEOUT = 60.0
_PROXY = f"ProxyCommand=sh -c 'echo {FALLBACK_MARKER} >&2; exit 1'"
_DROPPED = (
    "kex_exchange_identification",
    "Connection closed by",
    "Connection reset by peer",
    "banner exchange",
)
# Through docker-proxy, a port with no sshd behind it resets the connection, while a
# MaxStartups drop closes it (FIELD-NOTES): the first is retried for a short while only.
_NOBODY = "read: Connection reset by peer"


class _NothingRan(enum.Enum):
    REFUSED = "the server refused the session (MaxSessions): wait for a slot"
    UNREACHABLE = "the master could not be reached: that connection is lost"


def classify_ssh_error(host: str, stderr: str) -> TransportError:
    """Map OpenSSH's stderr to our error tree (FIELD-NOTES' table of messages)."""
    text = stderr.strip() or "ssh exited without a message"
    if "Permission denied" in text:
        return AuthError(f"{host}: authentication failed: {text}")
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION" in text:
        return HostKeyError(f"{host}: host key verification failed: {text}")
    if any(marker in text for marker in _DROPPED):
        window = NOBODY_WINDOW if _NOBODY in text else BUSY_WINDOW
        return RetryableConnectError(
            f"{host}: connection dropped during handshake: {text}", window=window
        )
    return ConnectError(f"{host}: ssh connection failed: {text}")


def base_options(ssh_config: Path | None, address_family: int | None) -> list[str]:
    options = ["-o", "User=root", "-o", "BatchMode=yes"]
    if ssh_config is not None:
        options[:0] = ["-F", str(ssh_config.absolute())]
    if address_family in (4, 6):
        options.append(f"-{address_family}")
    return options


@dataclass
class Master:
    """One supervised ControlMaster process and its socket."""

    process: trio.Process
    control: Path


class OpensshRemote(PooledRemote):
    """Sessions over pooled masters: asked for over the control socket, or through ssh's
    mux client when the master speaks another mux protocol version."""

    def __init__(self, host: str, base: Sequence[str], sessions: PooledSessions[Master]) -> None:
        super().__init__(host, sessions)
        self._base = list(base)
        self.last_control: Path | None = None
        self.native_mux = True
        """False once a master answered in another protocol version: ssh's mux client."""

    def _client(self, master: Master) -> list[str]:
        return [
            "ssh", *self._base, "-o", f"ControlPath={master.control}", "-o", "ControlMaster=no",
            "-o", _PROXY, "-o", "LogLevel=ERROR", self.host,
        ]  # fmt: skip

    async def _exec(self, command: str, stdin: bytes | None) -> Completed:
        while True:
            async with self._sessions.slot() as slot:
                self.last_control = slot.connection.control
                if self.native_mux:
                    result = await self._session(slot.connection, command, stdin)
                else:
                    result = await self._mux_client(slot.connection, command, stdin)
                if result is _NothingRan.REFUSED:
                    self._sessions.refused(slot)
                    continue
                if result is _NothingRan.UNREACHABLE:
                    self._sessions.lost(slot)
                    continue
                if result.returncode == 255 and slot.connection.process.poll() is not None:
                    # The master died under a running command: report, never retry.
                    self._sessions.lost(slot)
                    raise ConnectError(
                        f"{self.host}: connection lost while running a command: "
                        f"{result.stderr.decode(errors='replace').strip()}"
                    )
            return result

    async def _session(
        self, master: Master, command: str, stdin: bytes | None
    ) -> Completed | _NothingRan:
        """One session through the control socket."""
        try:
            done = await run_session(master.control, command, stdin)
        except MuxUnsupported:
            self.native_mux = False
            return await self._mux_client(master, command, stdin)
        except MuxRefused as exc:
            if REFUSED in exc.reason:
                return _NothingRan.REFUSED
            raise ConnectError(f"{self.host}: session failed: {exc.reason}") from exc
        except MuxError:
            return _NothingRan.UNREACHABLE  # the master went away before the session
        except MuxSessionBroken as exc:
            raise ConnectError(
                f"{self.host}: connection lost while running a command: {exc}"
            ) from exc
        # ssh's mux client exits 255 when the master reports no exit status.
        status = 255 if done.status is None else done.status
        return Completed(command, status, done.stdout, done.stderr)

    async def _mux_client(
        self, master: Master, command: str, stdin: bytes | None
    ) -> Completed | _NothingRan:
        """One session through ``ssh``'s mux client (a process)."""
        result = await run_argv([*self._client(master), command], stdin=stdin, display=command)
        if result.returncode == 255 and FALLBACK_MARKER.encode() in result.stderr:
            # The mux client never reached a session, so nothing ran: try again.
            refused = REFUSED.encode() in result.stderr
            return _NothingRan.REFUSED if refused else _NothingRan.UNREACHABLE
        return result

    def exported_commands(self) -> tuple[str, str]:
        # For types that run ssh/scp themselves: through a master when one is up, with
        # OpenSSH's own fallback allowed (these calls are the type's, not ours).
        words = list(self._base)
        if self.last_control is not None:
            words += ["-o", f"ControlPath={self.last_control}", "-o", "ControlMaster=no"]
        joined = " ".join(shlex.quote(w) for w in words)
        return f"ssh {joined}", f"scp -q {joined}"


CONTROL_NAME_LENGTH = 24
"""A control socket's name, ``m<number>``, plus the 17 characters of the temporary name
ssh binds it under first."""


async def _start_master(host: str, base: Sequence[str], tmp: Path, number: int) -> Master:
    control = tmp / f"m{number}"
    errors_path = tmp / f"m{number}.err"
    argv = [
        "ssh", *base, "-M", "-N", "-S", str(control), "-o", "ControlPersist=no",
        "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=15", host,
    ]  # fmt: skip
    # stderr goes to a file: no reader task, so no nursery wrapping the caller's errors.
    with errors_path.open("wb") as errors:
        process = await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    master = Master(process, control)
    try:
        with trio.fail_after(MASTER_READY_TIMEOUT):
            while True:
                if process.poll() is not None:
                    raise classify_ssh_error(host, errors_path.read_text(errors="replace"))
                if control.exists():
                    return master
                await trio.sleep(0.005)
    except trio.TooSlowError:
        await _stop_master(host, base, master)
        raise ConnectError(
            f"{host}: ssh did not connect within {MASTER_READY_TIMEOUT:.0f} s"
        ) from None
    except BaseException:
        await _stop_master(host, base, master)
        raise


async def _stop_master(host: str, base: Sequence[str], master: Master) -> None:
    with trio.CancelScope(shield=True):
        process = master.process
        if process.returncode is None and master.control.exists():
            # A master that stopped answering is killed below, as one that would not exit.
            with trio.move_on_after(2):
                try:
                    await request_exit(master.control)  # as `ssh -O exit` asks, no process
                except MuxError:
                    await run_argv(["ssh", *base, "-S", str(master.control), "-O", "exit", host])
            with trio.move_on_after(2):
                await process.wait()
        if process.returncode is None:
            await _kill_group(process)
            await process.wait()


@asynccontextmanager
async def open_openssh_remote(
    host: str,
    *,
    connect_limiter: trio.CapacityLimiter,
    pool: SessionPool,
    ssh_config: Path | None = None,
    address_family: int | None = None,
    log: Any = None,
) -> AsyncIterator[OpensshRemote]:
    """Yield a Remote for ``host``; every master it opened is closed on exit."""
    base = base_options(ssh_config, address_family)
    # ssh binds the control socket under a temporary name, 17 characters longer
    tmp = socket_directory("cdist-trio-ssh.", CONTROL_NAME_LENGTH)
    numbers = itertools.count(1)

    async def connect() -> Master:
        return await _start_master(host, base, tmp, next(numbers))

    async def close(master: Master) -> None:
        await _stop_master(host, base, master)

    sessions: PooledSessions[Master] = PooledSessions(
        host, connect=connect, close=close, pool=pool, connect_limiter=connect_limiter, log=log
    )
    try:
        yield OpensshRemote(host, base, sessions)
    finally:
        await sessions.aclose()
        shutil.rmtree(tmp, ignore_errors=True)
