"""What the two SSH transports share: commands tracked so that a cancel reaches the
target, tar uploads over one session, and statistics from the session pool."""

from __future__ import annotations

import abc
import itertools
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from ..errors import TransportError
from .archive import tar_upload
from .base import Completed, Remote, RemoteStatistics, checked
from .command import remote_word
from .sessions import KILL_TIMEOUT, PooledSessions, kill_tracked, tracked


class PooledRemote(Remote):
    """A Remote whose sessions come from `PooledSessions`; subclasses run one session."""

    def __init__(self, host: str, sessions: PooledSessions[Any]) -> None:
        self.host = host
        self._sessions = sessions
        self._token = secrets.token_hex(6)
        self._counter = itertools.count(1)
        self._bytes = 0

    @abc.abstractmethod
    async def _exec(self, command: str, stdin: bytes | None) -> Completed:
        """Run ``command`` as the login shell's command line in one pooled session."""

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed:
        tag = f"cdist-trio-{self._token}-{next(self._counter)}"
        try:
            result = await self._exec(tracked(remote_word(command, env), tag), stdin)
        except BaseException as exc:
            # Cancelled (possibly inside an exception group from a child nursery) or
            # anything else that is not the transport failing: the command may still
            # run on the target, holding a session slot, so kill it over a new session.
            # With no connection ever opened nothing can be running: skip the kill.
            if not isinstance(exc, TransportError) and self._sessions.connections_opened:
                with trio.CancelScope(shield=True), trio.move_on_after(KILL_TIMEOUT):
                    await self._exec(kill_tracked(tag), None)
            raise
        return checked(Completed(command, result.returncode, result.stdout, result.stderr), check)

    async def put(self, sources: Sequence[Path], destination: str) -> None:
        if not sources:
            return
        payload, command = tar_upload(sources, destination)
        self._bytes += len(payload)
        await self.run(command, stdin=payload)

    def statistics(self) -> RemoteStatistics:
        return RemoteStatistics(
            connections_opened=self._sessions.connections_opened,
            sessions_opened=self._sessions.sessions_opened,
            sessions_refused=self._sessions.pool.refusals,
            handshakes_retried=self._sessions.handshakes_retried,
            bytes_sent=self._bytes,
        )
