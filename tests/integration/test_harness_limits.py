"""sshd tuning really changes what clients see: MaxSessions refuses the session beyond the
limit on one connection, MaxStartups drops concurrent handshakes, LoginGraceTime closes.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from harness import SshdTuning
from harness.client import control_master, run_concurrently, waiting_session
from harness.plugin import FleetFactory
from harness.sshd import poll_until, read_banner

pytestmark = pytest.mark.integration


def test_tuning_reaches_sshd_command_line(fleet: FleetFactory) -> None:
    tuning = SshdTuning(max_sessions=3, max_startups="4:50:8", login_grace_time=30)
    target = fleet(1, tuning=tuning)[0]
    listener = next(p for p in target.processes() if p.pid == target.sshd_pid())
    for option in ("LogLevel=VERBOSE", "MaxSessions=3", "MaxStartups=4:50:8", "LoginGraceTime=30"):
        assert option in listener.args
    assert "of 4-8 startups" in listener.args  # sshd's own title shows the limit in force


def test_max_sessions_refuses_third_session_on_one_connection(
    fleet: FleetFactory, short_dir: Path
) -> None:
    target = fleet(1, tuning=SshdTuning(max_sessions=2))[0]
    with control_master(target, short_dir / "m") as mux:
        before = target.sshd_counts()
        with waiting_session([*mux, "read x"]), waiting_session([*mux, "read x"]):
            target.wait_for_log(r"^Starting session: ", count=before.sessions + 2)
            third = subprocess.run(
                [*mux, "echo third"], capture_output=True, text=True, timeout=60, check=False
            )
            assert third.returncode == 255
            assert "Session open refused by peer" in third.stderr
            assert "third" not in third.stdout
            target.wait_for_log(r"no more sessions", count=before.refused_sessions + 1)
        after_release = subprocess.run(
            [*mux, "echo third"], capture_output=True, text=True, timeout=60, check=False
        )
        assert after_release.returncode == 0, after_release.stderr
        assert after_release.stdout == "third\n"
    used = target.sshd_counts() - before
    assert used.connections == 0, "every session went over the one master connection"
    assert used.refused_sessions == 1


def test_max_startups_drops_concurrent_handshakes(fleet: FleetFactory) -> None:
    target = fleet(1, tuning=SshdTuning(max_startups="1:100:1"))[0]
    before = target.sshd_counts()
    # An unauthenticated connection holds the only startup slot.
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as held:
        assert held.recv(64).startswith(b"SSH-2.0-")
        target.wait_for_log(r"^Connection from ", count=before.connections + 1)
        results = run_concurrently([target.ssh_args("true") for _ in range(4)])
        for result in results:
            assert result.returncode == 255
            assert "kex_exchange_identification" in result.stderr
        target.wait_for_log(r"past MaxStartups", count=before.dropped_startups + 4)
    # Once the slot is free (sshd notices the close), handshakes succeed again.
    poll_until(
        lambda: target.ssh("true").returncode == 0,
        timeout=30,
        what="a handshake after the slot is free",
    )


def test_login_grace_time_closes_idle_handshake(fleet: FleetFactory) -> None:
    target = fleet(1, tuning=SshdTuning(login_grace_time=1))[0]
    with socket.create_connection(("127.0.0.1", target.port), timeout=15) as idle:
        banner = idle.recv(64)
        assert banner.startswith(b"SSH-2.0-")
        # sshd closes the connection itself after LoginGraceTime; recv returns b"".
        assert idle.recv(64) == b""
    assert read_banner("127.0.0.1", target.port) is not None
