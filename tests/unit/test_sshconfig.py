"""The ssh_config cut per host (`transport.sshconfig`): asyncssh reads from the cut what
it reads from the whole file, and the whole file is used where a cut could differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdist_trio.errors import ConnectError
from cdist_trio.transport import TransportResources, open_remote
from cdist_trio.transport.sshconfig import ConfigCuts

asyncssh = pytest.importorskip("asyncssh")

CONFIG = """\
# defaults first: they apply to every host
ConnectTimeout 7
Compression no

Host web-1
    HostName 127.0.0.11
    Port 2201
    User deploy
    IdentityFile ~/.ssh/web1

Host web-2 web-3
    HostName 127.0.0.12
    Port 2202

Host=eq-host
    Port=2203

Host "quoted-host"
    Port 2204

Host MiXeD
    Port 2205

Host db-* !db-9
    User postgres
    IdentityFile ~/.ssh/db

Host web-? lit[1]
    ProxyJump jump@127.0.0.99
    ServerAliveInterval 30

Host *
    User fallback
    UserKnownHostsFile ~/.ssh/fleet_known_hosts
    Port 22
"""

HOSTS = [
    "web-1",
    "web-2",
    "web-3",
    "eq-host",
    "quoted-host",
    "MiXeD",
    "mixed",
    "db-1",
    "db-9",
    "lit[1]",
    "lit1",
    "other",
]

OPTIONS = (
    "Hostname",
    "Port",
    "User",
    "IdentityFile",
    "ConnectTimeout",
    "Compression",
    "ProxyJump",
    "ServerAliveInterval",
    "UserKnownHostsFile",
)


def effective(config: Path, host: str) -> dict[str, object]:
    """What asyncssh makes of ``config`` for ``host`` (keys and known hosts as named,
    not loaded: the files do not exist)."""
    options = asyncssh.SSHClientConnectionOptions(
        config=[str(config)], host=host, client_keys=[], known_hosts=None
    )
    values = {name: options.config.get(name) for name in OPTIONS}
    values.update(host=options.host, port=options.port, username=options.username)
    return values


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("host", HOSTS)
def test_the_cut_gives_asyncssh_what_the_whole_file_does(
    config: Path, tmp_path: Path, host: str
) -> None:
    cuts = ConfigCuts(config, tmp_path)
    assert cuts.cuttable
    cut = cuts.path_for(host)
    assert cut != config
    assert effective(cut, host) == effective(config, host)


def test_a_cut_holds_the_defaults_and_only_the_blocks_that_may_match(
    config: Path, tmp_path: Path
) -> None:
    text = ConfigCuts(config, tmp_path).path_for("web-1").read_text()
    assert text.startswith("# defaults first")
    hosts = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith("Host ")]
    assert hosts == ["web-1", "web-? lit[1]", "*"]
    assert "2202" not in text
    assert "postgres" not in text


def test_hosts_with_the_same_blocks_share_one_cut(config: Path, tmp_path: Path) -> None:
    cuts = ConfigCuts(config, tmp_path)
    assert cuts.path_for("other") == cuts.path_for("something-else")
    assert cuts.path_for("db-1") == cuts.path_for("db-2")
    assert cuts.path_for("db-1") != cuts.path_for("other")


def test_a_big_fleet_config_is_cut_to_one_block_per_host(tmp_path: Path) -> None:
    path = tmp_path / "fleet_config"
    path.write_text(
        "".join(f"Host node-{i}\n    Port {20000 + i}\n    User root\n\n" for i in range(2000))
    )
    cuts = ConfigCuts(path, tmp_path)
    cut = cuts.path_for("node-1234")
    assert cut.read_text() == "Host node-1234\n    Port 21234\n    User root\n\n"
    assert effective(cut, "node-1234") == effective(path, "node-1234")


@pytest.mark.parametrize(
    "line",
    [
        "Match host web-1",
        "Include ~/.ssh/config.d/*",
        "CanonicalizeHostname yes",
        "Host",
        'HostName "unbalanced',
    ],
)
def test_files_a_cut_could_change_are_used_whole(tmp_path: Path, line: str) -> None:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG + "\n" + line + "\n")
    cuts = ConfigCuts(path, tmp_path)
    assert not cuts.cuttable
    assert cuts.path_for("web-1") == path


def test_an_unreadable_file_is_left_to_asyncssh(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert ConfigCuts(missing, tmp_path).path_for("web-1") == missing


async def test_a_bad_ssh_config_fails_the_host_naming_the_users_file(config: Path) -> None:
    # a bad value in the host's own block, below blocks the cut leaves out: asyncssh
    # rejects it before any socket opens
    text = CONFIG.replace("Port=2203", "Port=twenty-two")
    config.write_text(text)
    line = text.splitlines().index("    Port=twenty-two") + 1
    resources = TransportResources()
    try:
        async with open_remote(
            "eq-host", transport="asyncssh", resources=resources, ssh_config=config
        ) as remote:
            with pytest.raises(ConnectError) as failure:
                await remote.run("true")
    finally:
        resources.close()
    message = str(failure.value)
    assert message.startswith("eq-host: ")
    assert f"{config} line {line}:" in message  # the user's file and line, not the cut's
    assert "twenty-two" in message


async def test_the_run_removes_its_cuts(config: Path) -> None:
    resources = TransportResources()
    cuts = await resources.ssh_config_cuts(config)
    assert await resources.ssh_config_cuts(config) is cuts  # read once per run
    cut = cuts.path_for("web-1")
    assert cut.exists()
    resources.close()
    assert not cut.parent.exists()
