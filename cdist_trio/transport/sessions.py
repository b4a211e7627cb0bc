"""The async side of the adaptive pool: sessions, connection opening, retries, kills.

`PooledSessions` asks `SessionPool` what to do and does it: waits for a slot, opens a
connection (through the run-wide ``connect_limiter`` and a per-host limit of 2, with
jittered backoff when sshd drops the handshake), and counts what happened.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from ..errors import ConnectError
from .pool import Open, SessionPool, Use, backoff_delays

C = TypeVar("C")

KILL_TIMEOUT = 5.0


class RetryableConnectError(ConnectError):
    """The server dropped our handshake before authentication: retry it.

    ``window`` is how long to keep trying: long for sshd's MaxStartups drops (the
    server is there, just busy), short for resets with nothing answering behind the
    port (a stopped sshd, or one still starting).
    """

    def __init__(self, message: str, *, window: float = 60.0) -> None:
        super().__init__(message)
        self.window = window


BUSY_WINDOW = 60.0
NOBODY_WINDOW = 10.0


@dataclass
class Slot(Generic[C]):
    """One session's claim on a connection; `refused` hands the claim back."""

    connection_id: int
    connection: C
    was_refused: bool = False


class PooledSessions(Generic[C]):
    """Sessions of one host over up to ``max_connections`` connections of type ``C``."""

    def __init__(
        self,
        host: str,
        *,
        connect: Callable[[], Awaitable[C]],
        close: Callable[[C], Awaitable[None]],
        pool: SessionPool,
        connect_limiter: trio.CapacityLimiter,
        log: logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.host = host
        self._connect = connect
        self._close = close
        self.pool = pool
        self.connect_limiter = connect_limiter
        self.host_connect_limiter = trio.CapacityLimiter(2)
        self._log = log
        self._connections: dict[int, C] = {}
        self._changed = trio.lowlevel.ParkingLot()
        self.connections_opened = 0
        self.sessions_opened = 0
        self.handshakes_retried = 0
        self._told: set[int] = set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot[C]]:
        """Hold one session slot; the caller opens the session on ``slot.connection``."""
        while True:
            decision = self.pool.acquire()
            if isinstance(decision, Use):
                slot = Slot(decision.connection, self._connections[decision.connection])
                self.sessions_opened += 1
                try:
                    yield slot
                finally:
                    if not slot.was_refused:
                        self.pool.release(decision.connection)
                    self._changed.unpark_all()
                return
            if isinstance(decision, Open):
                await self._open(decision.connection)
                continue
            await self._changed.park()

    def refused(self, slot: Slot[C]) -> None:
        """The server refused the session of ``slot``: shrink the budget, log it once."""
        slot.was_refused = True
        message = self.pool.refused(slot.connection_id)
        if message and self._log is not None and slot.connection_id not in self._told:
            self._told.add(slot.connection_id)
            self._log.info("%s", message)
        self._changed.unpark_all()

    def lost(self, slot: Slot[C]) -> None:
        """The connection under ``slot`` is gone; later requests open another."""
        slot.was_refused = True
        self.pool.lost(slot.connection_id)
        self._connections.pop(slot.connection_id, None)
        self._changed.unpark_all()

    async def _open(self, connection_id: int) -> None:
        started = trio.current_time()
        try:
            conn = await self._connect_with_retry()
        except BaseException:
            self.pool.lost(connection_id)
            self._changed.unpark_all()
            raise
        self._connections[connection_id] = conn
        self.pool.opened(connection_id)
        self.connections_opened += 1
        self._changed.unpark_all()
        if self._log is not None:
            # -vvv: how long the handshake took, waits for a handshake slot included
            self._log.debug(
                "connection %d of at most %d opened in %.0f ms",
                self.connections_opened,
                self.pool.max_connections,
                (trio.current_time() - started) * 1000,
            )

    async def _connect_with_retry(self) -> C:
        """Connect, retrying dropped handshakes with jittered backoff.

        Retries stop after the error's window (`RetryableConnectError.window`); a host
        deadline set by the caller's cancel scope stops them sooner.
        """
        delays = backoff_delays()
        first_attempt = trio.current_time()
        attempt = 0
        while True:
            attempt += 1
            async with self.connect_limiter, self.host_connect_limiter:
                try:
                    return await self._connect()
                except RetryableConnectError as exc:
                    if trio.current_time() - first_attempt >= exc.window:
                        raise ConnectError(f"{exc} (gave up after {attempt} attempts)") from exc
                    self.handshakes_retried += 1
                    if self._log is not None:
                        # Once per host at INFO (-v); every further retry at DEBUG.
                        level = logging.INFO if self.handshakes_retried == 1 else logging.DEBUG
                        self._log.log(level, "handshake dropped (%s); retrying with backoff", exc)
            await trio.sleep(next(delays))

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            for conn in list(self._connections.values()):
                await self._close(conn)
        self._connections.clear()


# --- remote process tracking, so that cancellation reaches the target -----------------


def tracked(command: str, tag: str) -> str:
    """The login shell's command line for ``command``, findable by `kill_tracked`.

    ``command`` is one simple command, such as `command.remote_word`'s ``/bin/sh -c
    '...'``.  The login shell waits for it (the final ``exit`` keeps the shell from
    exec'ing it in its place), so the session's process group leader has ``tag`` in its
    command line as long as anything of the command runs, and nothing is left to clean
    up.  sshd will not signal a root session's command for us, so a cancelled command
    is killed with `kill_tracked` over another session; a kill that arrives before the
    session started leaves a ``.cancel`` file, and the command then never runs.
    """
    cancel = shlex.quote(f"/tmp/.{tag}.cancel")
    return f": {tag}; if [ -e {cancel} ]; then rm -f {cancel}; exit 130; fi; {command}; exit $?"


def kill_tracked(tag: str) -> str:
    """The command that kills the process groups of the `tracked` command with ``tag``
    (TERM, then KILL), found by their command lines."""
    cancel = shlex.quote(f"/tmp/.{tag}.cancel")
    return (
        # `read` rather than grep: BusyBox grep -F misses text in NUL-separated files.
        f"touch {cancel}; pids=; "
        'for f in /proc/[0-9]*/cmdline; do l=; read -r l <"$f"; '
        f"case $l in *{tag}*) "
        'p=${f#/proc/}; p=${p%/cmdline}; [ "$p" = $$ ] || pids="$pids $p";; esac; '
        "done 2>/dev/null; "
        'if [ -n "$pids" ]; then '
        'for p in $pids; do kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done; '
        "i=0; while [ $i -lt 20 ]; do alive=; "
        'for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done; '
        '[ -n "$alive" ] || break; sleep 0.1; i=$((i+1)); done; '
        'for p in $pids; do kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done; '
        f"rm -f {cancel}; fi; true"
    )
