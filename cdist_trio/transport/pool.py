"""The adaptive session pool of one host: pure bookkeeping shared by every SSH transport.

Per host: connections, each with a session budget (sshd's MaxSessions, default 10).  A
session the server refuses lowers that connection's budget to what it holds; the request
then waits for a slot or takes another connection, opened only within the per-host cap.
`SessionPool` decides, with no I/O and no checkpoint; `transport.sessions` acts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

REGROW_AFTER = 4


@dataclass
class Connection:
    """Bookkeeping of one SSH connection (a ControlMaster or an asyncssh connection)."""

    id: int
    budget: int
    in_use: int = 0
    alive: bool = True
    opened: bool = False  # False while its handshake is in flight
    clean_releases: int = 0  # sessions that ended since the last refusal

    @property
    def free(self) -> int:
        return self.budget - self.in_use if self.alive and self.opened else 0


@dataclass(frozen=True)
class Use:
    """Take a session on this connection."""

    connection: int


@dataclass(frozen=True)
class Open:
    """Open this new connection (already counted), then ask again."""

    connection: int


@dataclass(frozen=True)
class Wait:
    """Nothing free and no connection may be opened: wait for a release."""


Decision = Use | Open | Wait


@dataclass
class SessionPool:
    """Which connection gets the next session, and when to open or retire one."""

    max_sessions: int = 10
    max_connections: int = 2
    connections: dict[int, Connection] = field(default_factory=dict)
    refusals: int = 0
    _next_id: int = 1
    _adaptations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.max_connections < 1:
            raise ValueError("max_sessions and max_connections must be at least 1")

    def _live(self) -> list[Connection]:
        return [c for c in self.connections.values() if c.alive]

    def acquire(self) -> Decision:
        """Decide for one session request; a `Use` already counts the session as held."""
        best: Connection | None = None
        for conn in self._live():
            if conn.free > 0 and (best is None or conn.free > best.free):
                best = conn
        if best is not None:
            best.in_use += 1
            return Use(best.id)
        # Open another only if none is opening already and the cap allows it.
        live = self._live()
        opening = any(not c.opened for c in live)
        if not opening and len(live) < self.max_connections:
            conn = Connection(self._next_id, self.max_sessions)
            self._next_id += 1
            self.connections[conn.id] = conn
            return Open(conn.id)
        return Wait()

    def opened(self, connection: int) -> None:
        self.connections[connection].opened = True

    def release(self, connection: int) -> None:
        """A session ended.  A shrunk budget grows back by one after a run of clean
        sessions, because sshd also refuses while it is still closing old sessions."""
        conn = self.connections.get(connection)
        if conn is None or conn.in_use == 0:
            return
        conn.in_use -= 1
        conn.clean_releases += 1
        if conn.budget < self.max_sessions and conn.clean_releases >= REGROW_AFTER * conn.budget:
            conn.budget += 1
            conn.clean_releases = 0

    def refused(self, connection: int) -> str | None:
        """The server refused a session we counted on ``connection``.

        The refused request's slot is given back, and the budget shrinks to what the
        connection holds now (at least 1).  Returns a message the first time a
        connection's budget changes, for the operator's log.
        """
        conn = self.connections[connection]
        self.refusals += 1
        conn.clean_releases = 0
        conn.in_use = max(0, conn.in_use - 1)
        new_budget = max(1, conn.in_use)
        if new_budget < conn.budget:
            conn.budget = new_budget
            return (
                f"server refused session {conn.in_use + 1} on connection {conn.id}; "
                f"limiting it to {new_budget}"
            )
        return None

    def lost(self, connection: int) -> None:
        """A connection died or failed to open: forget it; its sessions are gone."""
        conn = self.connections.pop(connection, None)
        if conn is not None:
            conn.alive = False

    def statistics(self) -> dict[str, int]:
        live = self._live()
        return {
            "connections": len(live),
            "sessions_in_use": sum(c.in_use for c in live),
            "session_budget": sum(c.budget for c in live),
            "refusals": self.refusals,
        }


def backoff_delays(
    *, first: float = 0.05, factor: float = 2.0, cap: float = 2.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential backoff with full jitter: each delay uniform in [0, min(cap, first·factorⁿ)]."""
    rng = rng or random.Random()
    ceiling = first
    while True:
        yield rng.uniform(ceiling / 2, ceiling)
        ceiling = min(cap, ceiling * factor)
