"""The SSH transports against real sshd targets: conformance, sshd limits, cancellation.

Every test talks to containers started by the harness on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from cdist_trio.errors import AuthError, ConnectError, HostKeyError
from cdist_trio.transport import Remote, TransportResources, mux, open_remote, openssh
from harness import Fleet, SshdTuning
from harness.plugin import FleetFactory
from tests.conformance import *  # noqa: F403
from tests.conformance import poll

pytestmark = pytest.mark.integration

TRANSPORTS = ["openssh", "asyncssh"]


@pytest.fixture(scope="module")
def plain_fleet(fleet: FleetFactory) -> Fleet:
    return fleet(1)


@pytest.fixture
async def resources() -> AsyncIterator[TransportResources]:
    res = TransportResources()
    try:
        yield res
    finally:
        res.close()


@pytest.fixture(params=TRANSPORTS)
async def remote(
    request: pytest.FixtureRequest, plain_fleet: Fleet, resources: TransportResources
) -> AsyncIterator[Remote]:
    async with open_remote(
        plain_fleet.hosts[0],
        transport=request.param,
        resources=resources,
        ssh_config=plain_fleet.ssh_config,
    ) as opened:
        yield opened


@pytest.fixture
def remote_tmp(plain_fleet: Fleet) -> Iterator[str]:
    target = plain_fleet[0]
    path = target.shell("mktemp -d").text.strip()
    yield path
    target.shell(f"rm -rf '{path}'")


async def _many(remote: Remote, count: int, command: str) -> list[bytes]:
    outputs: list[bytes] = []

    async def one(i: int) -> None:
        outputs.append((await remote.run(f"{command}; echo {i}")).stdout)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return outputs


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("max_sessions", [1, 2, 10])
async def test_transport_64_commands_within_max_sessions(
    fleet: FleetFactory, resources: TransportResources, transport: str, max_sessions: int
) -> None:
    tuned = fleet(1, tuning=SshdTuning(max_sessions=max_sessions))
    target = tuned[0]
    before = target.sshd_counts()
    with trio.fail_after(120):
        async with open_remote(
            tuned.hosts[0], transport=transport, resources=resources, ssh_config=tuned.ssh_config
        ) as remote:
            outputs = await _many(remote, 64, "sleep 0.05")
            stats = remote.statistics()
    used = target.sshd_counts() - before
    assert sorted(int(o.split()[-1]) for o in outputs) == list(range(64))
    assert stats.connections_opened <= 2
    assert used.logins <= 2  # never more connections than --max-connections
    if max_sessions < 10:
        assert stats.sessions_refused >= 1
        assert used.refused_sessions >= 1
    # sshd may also refuse while it closes finished sessions; every refusal is counted.
    assert stats.sessions_refused == used.refused_sessions


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_transport_30_first_connections_survive_max_startups(
    fleet: FleetFactory, resources: TransportResources, transport: str
) -> None:
    tuned = fleet(1, tuning=SshdTuning(max_startups="1:100:1"), hosts_per_target=30)
    target = tuned[0]
    before = target.sshd_counts()
    retried = 0

    async def one(host: str) -> None:
        nonlocal retried
        async with open_remote(
            host, transport=transport, resources=resources, ssh_config=tuned.ssh_config
        ) as remote:
            assert (await remote.run("echo ok")).stdout == b"ok\n"
            retried += remote.statistics().handshakes_retried

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for host in tuned.hosts:
                nursery.start_soon(one, host)
    used = target.sshd_counts() - before
    assert len(tuned.hosts) == 30
    assert used.logins == 30
    assert used.dropped_startups >= 1
    assert retried >= 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _variant_config(
    fleet: Fleet,
    tmp_path: Path,
    *,
    key: Path | None = None,
    known_hosts: Path | None = None,
    port: int | None = None,
) -> Path:
    text = fleet.ssh_config.read_text()
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if key is not None and stripped.startswith("IdentityFile "):
            line = f"    IdentityFile {key}"
        if known_hosts is not None and stripped.startswith("UserKnownHostsFile "):
            line = f"    UserKnownHostsFile {known_hosts}"
        if port is not None and stripped.startswith("Port "):
            line = f"    Port {port}"
        lines.append(line)
    config = tmp_path / "ssh_config"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["wrong key", "changed host key", "closed port"])
async def test_transport_fails_fast_without_retry(
    plain_fleet: Fleet, resources: TransportResources, tmp_path: Path, transport: str, fault: str
) -> None:
    if fault == "wrong key":
        key = tmp_path / "other_key"
        await trio.run_process(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        config = _variant_config(plain_fleet, tmp_path, key=key)
        expected: type[Exception] = AuthError
        words = "authentication failed"
    elif fault == "changed host key":
        other = tmp_path / "hostkey"
        await trio.run_process(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
        public = other.with_suffix(".pub").read_text().split()
        known = tmp_path / "known_hosts"
        lines = []
        for line in plain_fleet.known_hosts.read_text().splitlines():
            names = line.split()[0]
            lines.append(f"{names} {public[0]} {public[1]}")
        known.write_text("\n".join(lines) + "\n")
        config = _variant_config(plain_fleet, tmp_path, known_hosts=known)
        expected = HostKeyError
        words = "host key"
    else:
        config = _variant_config(plain_fleet, tmp_path, port=_closed_port())
        expected = ConnectError
        words = "refused"
    started = time.monotonic()
    with trio.fail_after(30), pytest.raises(expected) as caught:
        async with open_remote(
            plain_fleet.hosts[0], transport=transport, resources=resources, ssh_config=config
        ) as remote:
            await remote.run("true")
    assert words in str(caught.value).lower()
    assert plain_fleet.hosts[0] in str(caught.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_transport_cancel_frees_target_and_slots(
    fleet: FleetFactory, resources: TransportResources, transport: str
) -> None:
    tuned = fleet(1, tuning=SshdTuning(max_sessions=10), fresh=True)
    target = tuned[0]
    marker = "3600.5"  # an unusual duration names our sleeps among the target's processes

    def sleepers() -> int:
        return sum(1 for p in target.processes() if p.comm == "sleep" and marker in p.args)

    async def all_sleeping() -> bool:
        return sleepers() == 8

    async def none_left() -> bool:
        return sleepers() == 0

    async with open_remote(
        tuned.hosts[0],
        transport=transport,
        resources=resources,
        ssh_config=tuned.ssh_config,
        max_connections=1,
    ) as remote:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(remote.run, f"sleep {marker}")
                await poll(all_sleeping, interval=0.05)
                nursery.cancel_scope.cancel()
            cancelled_at = time.monotonic()
            await poll(none_left, interval=0.05)
            gone_after = time.monotonic() - cancelled_at
            started = time.monotonic()
            outputs = await _many(remote, 10, "true")
            took = time.monotonic() - started
        stats = remote.statistics()
    assert gone_after < 2
    assert len(outputs) == 10
    assert stats.connections_opened == 1
    assert took < 5
    tuned.stop()
    assert shutil.which("ssh")


@pytest.mark.parametrize("native", [True, False], ids=["control-socket", "ssh-mux-client"])
async def test_openssh_sessions_through_the_masters_control_socket(
    plain_fleet: Fleet,
    resources: TransportResources,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    native: bool,
) -> None:
    """Sessions are asked of the ssh master over its control socket, with no ``ssh``
    process per command; a master that answers in another mux protocol version gets
    ssh's own mux client instead.  Either way bytes arrive exact in both directions, the
    variables the ssh_config's SendEnv names go along (the targets AcceptEnv LC_*), and
    ForwardAgent forwards the agent."""
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host *\n    SendEnv LC_CDIST_TRIO_SENT\n    ForwardAgent yes\n\n"
        + plain_fleet.ssh_config.read_text()
    )
    monkeypatch.setenv("LC_CDIST_TRIO_SENT", "sent along")
    monkeypatch.setenv("LC_CDIST_TRIO_KEPT", "not named by SendEnv")
    started: list[list[str]] = []
    real_run_argv = openssh.run_argv

    async def recording(argv: Sequence[str], **kwargs: Any) -> Any:
        started.append(list(argv))
        return await real_run_argv(argv, **kwargs)

    monkeypatch.setattr(openssh, "run_argv", recording)
    killed: list[object] = []
    real_kill_group = openssh._kill_group

    async def recording_kill(process: Any) -> None:
        killed.append(process)
        await real_kill_group(process)

    monkeypatch.setattr(openssh, "_kill_group", recording_kill)
    if not native:
        monkeypatch.setattr(mux, "VERSION", mux.VERSION + 1)  # the master says 4: unsupported
    payload = os.urandom(1 << 20)
    with trio.fail_after(60):
        async with open_remote(
            plain_fleet.hosts[0],
            transport="openssh",
            resources=resources,
            ssh_config=config,
        ) as remote:
            command = (
                'cat; echo "$LC_CDIST_TRIO_SENT|$LC_CDIST_TRIO_KEPT|${SSH_AUTH_SOCK:+agent}" >&2'
                "; exit 3"
            )
            results = [await remote.run(command, stdin=payload, check=False) for _ in range(3)]
            assert isinstance(remote, openssh.OpensshRemote)
            assert remote.native_mux is native
    for result in results:
        assert (result.returncode, result.stderr) == (3, b"sent along||agent\n")
        assert result.stdout == payload
    clients = [argv for argv in started if "-O" not in argv]
    assert len(clients) == (0 if native else 3)
    # The master is asked to exit over its socket (ssh's `-O exit` for another version),
    # and does: never killed.
    exits = [argv for argv in started if "-O" in argv]
    assert len(exits) == (0 if native else 1)
    assert killed == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_transports_never_ask_for_a_terminal(
    plain_fleet: Fleet, resources: TransportResources, tmp_path: Path, transport: str
) -> None:
    """An ssh_config with ``RequestTTY force`` (some operators set it for interactive
    use) gets no terminal: a tty would echo and translate the batches' binary stdin."""
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    RequestTTY force\n\n" + plain_fleet.ssh_config.read_text())
    payload = bytes(range(256)) * 64 + b"\r\n\x03\x04\x1a"
    with trio.fail_after(60):
        async with open_remote(
            plain_fleet.hosts[0], transport=transport, resources=resources, ssh_config=config
        ) as remote:
            result = await remote.run("cat; [ -t 0 ] || echo no-tty >&2", stdin=payload)
    assert result.stdout == payload
    assert result.stderr == b"no-tty\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_transports_read_user_at_host_as_ssh_does(
    plain_fleet: Fleet, resources: TransportResources, transport: str
) -> None:
    """``nobody@<host>``: the ssh_config's ``Host <host>`` applies and the login is
    root's, as ``ssh -o User=root nobody@<host>`` (cdist's command) does; asyncssh
    looked the whole string up as a host name."""
    with trio.fail_after(60):
        async with open_remote(
            f"nobody@{plain_fleet.hosts[0]}",
            transport=transport,
            resources=resources,
            ssh_config=plain_fleet.ssh_config,
        ) as remote:
            result = await remote.run("id -un")
    assert result.stdout == b"root\n"
