"""The adaptive session pool: bookkeeping without sockets, retries under a MockClock."""

from __future__ import annotations

import logging
import random
import re

import pytest
import trio
import trio.testing

from cdist_trio.errors import AuthError, ConnectError
from cdist_trio.transport.pool import Open, SessionPool, Use, Wait, backoff_delays
from cdist_trio.transport.sessions import PooledSessions, RetryableConnectError


def test_pool_opens_first_connection_then_uses_its_budget() -> None:
    pool = SessionPool(max_sessions=2, max_connections=1)
    decision = pool.acquire()
    assert decision == Open(1)
    assert pool.acquire() == Wait()  # one handshake at a time per host
    pool.opened(1)
    assert pool.acquire() == Use(1)
    assert pool.acquire() == Use(1)
    assert pool.acquire() == Wait()
    pool.release(1)
    assert pool.acquire() == Use(1)


def test_pool_opens_second_connection_within_cap() -> None:
    pool = SessionPool(max_sessions=1, max_connections=2)
    assert pool.acquire() == Open(1)
    pool.opened(1)
    assert pool.acquire() == Use(1)
    assert pool.acquire() == Open(2)
    pool.opened(2)
    assert pool.acquire() == Use(2)
    assert pool.acquire() == Wait()
    assert pool.statistics()["connections"] == 2


def test_pool_refusal_shrinks_budget_to_what_is_held() -> None:
    pool = SessionPool(max_sessions=10, max_connections=1)
    pool.acquire()
    pool.opened(1)
    for _ in range(3):
        assert pool.acquire() == Use(1)
    message = pool.refused(1)  # the third session was refused: the server allows 2
    assert message == "server refused session 3 on connection 1; limiting it to 2"
    assert pool.connections[1].budget == 2
    assert pool.connections[1].in_use == 2
    assert pool.acquire() == Wait()
    assert pool.refusals == 1


def test_pool_refusal_never_shrinks_below_one() -> None:
    pool = SessionPool(max_sessions=4, max_connections=1)
    pool.acquire()
    pool.opened(1)
    pool.acquire()
    pool.refused(1)
    assert pool.connections[1].budget == 1
    assert pool.acquire() == Use(1)


def test_pool_budget_grows_back_after_clean_sessions() -> None:
    pool = SessionPool(max_sessions=3, max_connections=1)
    pool.acquire()
    pool.opened(1)
    pool.acquire()
    pool.acquire()
    pool.refused(1)
    assert pool.connections[1].budget == 1
    pool.release(1)
    for _ in range(3):  # 4 clean sessions at budget 1 earn one more slot
        assert pool.acquire() == Use(1)
        pool.release(1)
    assert pool.connections[1].budget == 2
    for _ in range(8):
        pool.acquire()
        pool.release(1)
    assert pool.connections[1].budget == 3
    for _ in range(20):
        pool.acquire()
        pool.release(1)
    assert pool.connections[1].budget == 3  # never above max_sessions


def test_pool_lost_connection_is_replaced() -> None:
    pool = SessionPool(max_sessions=2, max_connections=1)
    pool.acquire()
    pool.opened(1)
    pool.acquire()
    pool.lost(1)
    assert pool.acquire() == Open(2)


def test_pool_rejects_zero_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SessionPool(max_sessions=0)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    delays = backoff_delays(first=0.1, factor=2, cap=1.0, rng=random.Random(7))
    values = [next(delays) for _ in range(8)]
    assert 0.05 <= values[0] <= 0.1
    assert 0.1 <= values[1] <= 0.2
    assert all(0.5 <= v <= 1.0 for v in values[4:])
    assert len(set(values)) == len(values)


class FakeServer:
    """A scripted server: ``max_sessions`` per connection, handshakes that may drop."""

    def __init__(self, max_sessions: int, drops: int = 0, auth_fails: bool = False) -> None:
        self.max_sessions = max_sessions
        self.drops = drops
        self.auth_fails = auth_fails
        self.connects = 0
        self.open_sessions: dict[int, int] = {}
        self.peak = 0

    async def connect(self) -> int:
        self.connects += 1
        await trio.sleep(0.01)
        if self.auth_fails:
            raise AuthError("denied")
        if self.drops:
            self.drops -= 1
            raise RetryableConnectError("kex_exchange_identification: Connection closed")
        self.open_sessions[self.connects] = 0
        return self.connects

    async def close(self, conn: int) -> None:
        self.open_sessions.pop(conn, None)


async def _run_session(sessions: PooledSessions[int], server: FakeServer) -> None:
    while True:
        async with sessions.slot() as slot:
            conn = slot.connection
            if server.open_sessions[conn] >= server.max_sessions:
                sessions.refused(slot)
                continue
            server.open_sessions[conn] += 1
            server.peak = max(server.peak, sum(server.open_sessions.values()))
            await trio.sleep(1)
            server.open_sessions[conn] -= 1
            return


async def test_sessions_adapt_to_server_limit(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(max_sessions=2)
    sessions = PooledSessions(
        "h",
        connect=server.connect,
        close=server.close,
        pool=SessionPool(max_sessions=10, max_connections=2),
        connect_limiter=trio.CapacityLimiter(10),
    )
    async with trio.open_nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(_run_session, sessions, server)
    await sessions.aclose()
    assert sessions.connections_opened == 2
    assert server.peak <= 4  # 2 connections x MaxSessions 2
    assert sessions.pool.refusals >= 2
    # Budgets shrank to the server's limit; clean sessions may have earned one back.
    assert all(2 <= c.budget <= 3 for c in sessions.pool.connections.values())


async def test_sessions_retry_dropped_handshakes(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(max_sessions=10, drops=3)
    sessions = PooledSessions(
        "h",
        connect=server.connect,
        close=server.close,
        pool=SessionPool(max_sessions=10, max_connections=1),
        connect_limiter=trio.CapacityLimiter(1),
    )
    await _run_session(sessions, server)
    assert sessions.handshakes_retried == 3
    assert server.connects == 4


async def test_sessions_log_each_connection_and_its_handshake_time(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Two drops: the connection is there after 3 handshakes of 10 ms and the backoff.
    server = FakeServer(max_sessions=10, drops=2)
    sessions = PooledSessions(
        "h",
        connect=server.connect,
        close=server.close,
        pool=SessionPool(max_sessions=10, max_connections=2),
        connect_limiter=trio.CapacityLimiter(1),
        log=logging.LoggerAdapter(logging.getLogger("cdist_trio.test_pool"), {}),
    )
    with caplog.at_level(logging.DEBUG, logger="cdist_trio.test_pool"):
        await _run_session(sessions, server)
    opened = [r.getMessage() for r in caplog.records if "opened in" in r.getMessage()]
    assert len(opened) == 1
    match = re.fullmatch(r"connection 1 of at most 2 opened in (\d+) ms", opened[0])
    assert match is not None, opened
    assert int(match.group(1)) >= 30 + 25 + 50  # 3 handshakes, 2 backoffs of >= 25 ms


async def test_sessions_never_retry_auth_failure(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(max_sessions=10, auth_fails=True)
    sessions = PooledSessions(
        "h",
        connect=server.connect,
        close=server.close,
        pool=SessionPool(),
        connect_limiter=trio.CapacityLimiter(1),
    )
    with pytest.raises(AuthError):
        await _run_session(sessions, server)
    assert server.connects == 1
    assert sessions.handshakes_retried == 0


async def test_sessions_give_up_after_many_drops(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(max_sessions=10, drops=1000)
    sessions = PooledSessions(
        "h",
        connect=server.connect,
        close=server.close,
        pool=SessionPool(),
        connect_limiter=trio.CapacityLimiter(1),
    )
    started = trio.current_time()
    with pytest.raises(ConnectError, match="gave up after"):
        await _run_session(sessions, server)
    assert 60 <= trio.current_time() - started <= 65
    assert sessions.handshakes_retried > 10


async def test_sessions_connect_limiter_bounds_handshakes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = trio.CapacityLimiter(2)
    servers = [FakeServer(max_sessions=10) for _ in range(6)]
    in_flight = 0
    peak = 0

    def counting(server: FakeServer):  # type: ignore[no-untyped-def]
        async def connect() -> int:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await server.connect()
            finally:
                in_flight -= 1

        return connect

    async with trio.open_nursery() as nursery:
        for server in servers:
            sessions = PooledSessions(
                "h",
                connect=counting(server),
                close=server.close,
                pool=SessionPool(),
                connect_limiter=limiter,
            )
            nursery.start_soon(_run_session, sessions, server)
    assert peak == 2
