"""Each fault does what it says: a paused target hangs, a killed sshd refuses new
connections but keeps sessions, killed sessions drop, a restart keeps identity, a slow
link is slow.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from harness import FaultUnavailable, Fleet, SshTarget
from harness.client import waiting_session
from harness.plugin import FleetFactory
from harness.sshd import read_banner

pytestmark = pytest.mark.integration


@pytest.fixture
def target(fleet: FleetFactory) -> Iterator[SshTarget]:
    """A target of the test's own: faults must not leak into other tests."""
    own: Fleet = fleet(1, fresh=True)
    try:
        yield own[0]
    finally:
        own.stop()


def test_pause_hangs_target_until_unpaused(target: SshTarget) -> None:
    with target.paused():
        assert read_banner("127.0.0.1", target.port, timeout=1.0) is None
        pending = subprocess.Popen(
            target.ssh_args("echo done"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        with pytest.raises(subprocess.TimeoutExpired):
            pending.wait(timeout=1.5)  # hung, not refused: ssh would fail within ms
    stdout, stderr = pending.communicate(timeout=60)
    assert (pending.returncode, stdout) == (0, "done\n"), stderr


def test_kill_sshd_refuses_new_connections_but_keeps_sessions(target: SshTarget) -> None:
    before = target.sshd_counts()
    with waiting_session(target.ssh_args("read x; echo survived")) as live:
        target.wait_for_log(r"^Starting session: ", count=before.sessions + 1)
        target.kill_sshd()
        assert target.sshd_pid() is None
        refused = target.ssh("true")
        assert refused.returncode == 255
        assert "kex_exchange_identification" in refused.stderr
        stdout, _ = live.communicate("\n", timeout=30)
        assert (live.returncode, stdout) == (0, "survived\n")
    target.start_sshd()
    assert target.ssh("true").returncode == 0


def test_kill_sessions_drops_live_connections(target: SshTarget) -> None:
    before = target.sshd_counts()
    with waiting_session(target.ssh_args("read x")) as live:
        target.wait_for_log(r"^Starting session: ", count=before.sessions + 1)
        assert target.kill_sessions() >= 1
        live.wait(timeout=30)
        assert live.returncode == 255
    assert target.session_pids() == []
    assert target.ssh("echo again").stdout == "again\n"


def test_restart_keeps_port_host_key_and_files(target: SshTarget) -> None:
    port, host_key, old_sshd = target.port, target.host_key, target.sshd_pid()
    assert target.ssh("echo kept >/root/marker").returncode == 0
    with waiting_session(target.ssh_args("read x")) as live:
        target.wait_for_log(r"^Starting session: ")
        target.restart()
        live.wait(timeout=30)
        assert live.returncode == 255, "a restart drops every connection"
    assert (target.port, target.host_key) == (port, host_key)
    result = target.ssh("cat /root/marker")  # strict host key checking still passes
    assert (result.returncode, result.stdout) == (0, "kept\n"), result.stderr
    assert target.sshd_pid() is not None
    assert target.sshd_pid() != old_sshd or target.sshd_log().count("cdist-trio-hostkey") == 2


def _timed_login(target: SshTarget) -> float:
    started = time.monotonic()
    result = target.ssh("true")
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def test_slow_link_rate_slows_logins_and_clears(target: SshTarget) -> None:
    baseline = _timed_login(target)
    try:
        target.slow_link(rate_kbit=8)
    except FaultUnavailable as error:
        pytest.skip(str(error))
    try:
        slowed = _timed_login(target)
    finally:
        target.clear_link()
    # A login moves a few kB from the target; at 1 kB/s that takes seconds, far more
    # than a loaded machine's jitter.
    assert slowed > 2 * baseline
    assert slowed - baseline > 1.5
    assert _timed_login(target) < slowed / 2


def test_slow_link_delay_adds_latency_to_every_round_trip(target: SshTarget) -> None:
    baseline = _timed_login(target)
    try:
        target.slow_link(300)
    except FaultUnavailable as error:
        pytest.skip(f"{error} (this kernel has no sch_netem; rate_kbit still works)")
    try:
        slowed = _timed_login(target)
    finally:
        target.clear_link()
    # A fresh login is several round trips; each now waits 300 ms more.
    assert slowed - baseline > 0.9
