"""The `asyncssh` transport: in-process SSH, asyncssh on a private asyncio loop thread.

Sessions are channels on pooled connections (`PooledSessions`); a channel the server
refuses (MaxSessions: ChannelOpenError code 2) shrinks that connection's budget and
waits; a dropped handshake (MaxStartups) is retried with backoff.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..errors import AuthError, ConnectError, HostKeyError, TransportError
from .aioloop import AsyncioThread
from .base import Completed
from .libsearch import quick_library_lookup
from .pool import SessionPool
from .pooled import PooledRemote
from .sessions import (
    BUSY_WINDOW,
    NOBODY_WINDOW,
    PooledSessions,
    RetryableConnectError,
)

try:
    with quick_library_lookup():
        import asyncssh as _asyncssh
except ImportError:  # pragma: no cover - the extra is not installed
    _asyncssh = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .handshake_files import HandshakeFiles

# RFC 4254 channel open failure reasons that mean "no more sessions here".
_SESSION_LIMIT_CODES = {2, 4}


class AsyncsshRemote(PooledRemote):
    def __init__(
        self, host: str, aio: AsyncioThread, sessions: PooledSessions[Any], ssh_config: Path | None
    ) -> None:
        super().__init__(host, sessions)
        self._aio = aio
        self._ssh_config = ssh_config

    async def _exec(self, command: str, stdin: bytes | None) -> Completed:
        while True:
            async with self._sessions.slot() as slot:
                conn = slot.connection
                try:
                    result = await self._aio.call(
                        functools.partial(
                            conn.run,
                            command,
                            input=stdin,
                            encoding=None,
                            check=False,
                            # never a terminal, whatever RequestTTY says: a tty would echo
                            # and translate the batch's binary stdin (the openssh transport
                            # asks for none either)
                            request_pty=False,
                        )
                    )
                except _asyncssh.ChannelOpenError as exc:
                    if exc.code in _SESSION_LIMIT_CODES:
                        self._sessions.refused(slot)
                        continue
                    raise ConnectError(f"{self.host}: session failed: {exc.reason}") from exc
                except (_asyncssh.DisconnectError, OSError) as exc:
                    self._sessions.lost(slot)
                    raise ConnectError(f"{self.host}: connection lost: {exc}") from exc
            status = result.exit_status
            if status is None and result.exit_signal is None:
                # The channel closed without an exit status: the connection went away.
                self._sessions.lost(slot)
                raise ConnectError(f"{self.host}: connection lost while running a command")
            if status is None:
                status = 128 + 9
            return Completed(
                command, status, bytes(result.stdout or b""), bytes(result.stderr or b"")
            )

    def exported_commands(self) -> tuple[str, str]:
        # Types that copy by themselves ($__remote_copy) get plain OpenSSH commands.
        config = f"-F {self._ssh_config.absolute()} " if self._ssh_config else ""
        return f"ssh {config}-o User=root", f"scp -q {config}-o User=root"


def _map_connect_error(host: str, exc: BaseException) -> TransportError:
    if isinstance(exc, _asyncssh.PermissionDenied):
        return AuthError(f"{host}: authentication failed: {exc.reason}")
    if isinstance(exc, _asyncssh.HostKeyNotVerifiable):
        return HostKeyError(f"{host}: host key verification failed: {exc.reason}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"{host}: connection refused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return RetryableConnectError(
            f"{host}: connection reset during handshake", window=NOBODY_WINDOW
        )
    if isinstance(exc, _asyncssh.ConnectionLost):
        return RetryableConnectError(
            f"{host}: connection closed during handshake", window=BUSY_WINDOW
        )
    if isinstance(exc, _asyncssh.DisconnectError):
        return ConnectError(f"{host}: {exc.reason}")
    return ConnectError(f"{host}: cannot connect: {exc}")


def ssh_destination(host: str) -> str:
    """The host a ``user@host`` target names, as ``ssh -o User=root user@host`` (cdist's
    command, and the openssh transport's) reads it: the user part is overridden by
    ``User=root``, and ssh_config's ``Host`` lines match the rest."""
    return host.rpartition("@")[2]


@asynccontextmanager
async def open_asyncssh_remote(
    host: str,
    *,
    aio: AsyncioThread,
    connect_limiter: trio.CapacityLimiter,
    pool: SessionPool,
    files: HandshakeFiles,
    ssh_config: Path | None = None,
    config_for_host: Path | None = None,
    address_family: int | None = None,
    log: Any = None,
) -> AsyncIterator[AsyncsshRemote]:
    """Sessions to ``host`` over pooled asyncssh connections.  ``config_for_host``: the
    ssh_config to read (`sshconfig.ConfigCuts.path_for`), by default ``ssh_config``;
    ``files``: the run's keys and known_hosts, read once."""
    if _asyncssh is None:
        raise ConnectError("the asyncssh transport needs: pip install 'cdist-trio[asyncssh]'")
    import socket

    kwargs: dict[str, Any] = {"username": "root"}
    config = config_for_host or ssh_config
    if config is not None:
        kwargs["config"] = [str(config)]
    if address_family in (4, 6):
        kwargs["family"] = socket.AF_INET if address_family == 4 else socket.AF_INET6

    async def connect() -> Any:
        try:

            async def _connect() -> Any:
                address = ssh_destination(host)
                options, extra = files.options(address, **kwargs)
                return await _asyncssh.connect(address, options=options, **extra)

            return await aio.call(_connect)
        except (OSError, _asyncssh.Error) as exc:
            raise _map_connect_error(host, exc) from exc
        except ValueError as exc:  # the ssh_config or an option: never retried
            raise ConnectError(f"{host}: {await _config_error(exc)}") from exc

    async def _config_error(exc: ValueError) -> str:
        """What asyncssh says about the file the user gave, not about its cut copy."""
        if config_for_host is None or config_for_host == ssh_config:
            return str(exc)

        async def _options() -> str:
            try:
                whole = [str(ssh_config)] if ssh_config else ()
                _asyncssh.SSHClientConnectionOptions(
                    **{**kwargs, "config": whole}, host=ssh_destination(host)
                )
            except ValueError as original:
                return str(original)
            return str(exc)

        return await aio.call(_options)

    async def close(conn: Any) -> None:
        async def _close() -> None:
            conn.close()
            await conn.wait_closed()

        with trio.move_on_after(5):
            await aio.call(_close)

    sessions: PooledSessions[Any] = PooledSessions(
        host, connect=connect, close=close, pool=pool, connect_limiter=connect_limiter, log=log
    )
    try:
        yield AsyncsshRemote(host, aio, sessions, ssh_config)
    finally:
        await sessions.aclose()
