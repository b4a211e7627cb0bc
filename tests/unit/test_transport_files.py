"""What the asyncssh transport reads once per run instead of at every handshake.

The ssh_config cut per host (`transport.sshconfig`): asyncssh reads from the cut what it
reads from the whole file, and the whole file is used where a cut could differ.  Client
keys and known_hosts files (`transport.handshake_files`): loaded once, the same keys as
asyncssh's own loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdist_trio.errors import ConnectError
from cdist_trio.transport import TransportResources, handshake_files, open_remote
from cdist_trio.transport.handshake_files import HandshakeFiles
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


def test_only_newlines_end_lines(tmp_path: Path) -> None:
    # a form feed is a line break to str.splitlines, not to asyncssh: "Host elsewhere"
    # is part of a comment, and the Port below it belongs to web-1's block
    path = tmp_path / "ssh_config"
    path.write_text("Host web-1\n    # note\x0cHost elsewhere\n    Port 2201\n")
    cut = ConfigCuts(path, tmp_path).path_for("web-1")
    assert effective(cut, "web-1")["port"] == effective(path, "web-1")["port"] == 2201


def test_a_file_that_is_not_text_is_left_to_asyncssh(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    path.write_bytes(b"Host web-1\n    User \xff\n")
    assert ConfigCuts(path, tmp_path).path_for("web-1") == path


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


async def test_two_config_files_in_one_run_keep_their_cuts_apart(
    config: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other_config"
    other.write_text("Host web-1\n    Port 2299\n")
    resources = TransportResources()
    try:
        first = (await resources.ssh_config_cuts(config)).path_for("web-1")
        second = (await resources.ssh_config_cuts(other)).path_for("web-1")
        assert effective(first, "web-1")["port"] == 2201
        assert effective(second, "web-1")["port"] == 2299
    finally:
        resources.close()


async def test_the_run_removes_its_cuts(config: Path) -> None:
    resources = TransportResources()
    cuts = await resources.ssh_config_cuts(config)
    assert await resources.ssh_config_cuts(config) is cuts  # read once per run
    cut = cuts.path_for("web-1")
    assert cut.exists()
    resources.close()
    assert not cut.exists()
    assert not cut.parent.parent.exists()


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKo9x3n0bPq9hX8dVNBLJhXmQ2ZWmFK1w0MmnqkGQ3xA"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1Dbd8Q5Hrq8MpBqYQ0KqW6QeEq8jW2R5BoHhZ7C9tQ"


def write_config(tmp_path: Path, *lines: str) -> Path:
    config = tmp_path / "files_config"
    config.write_text("Host *\n" + "".join(f"    {line}\n" for line in lines))
    return config


def connect_options(files: HandshakeFiles, config: Path, host: str) -> tuple[Any, dict[str, Any]]:
    return files.options(host, username="root", config=[str(config)])


def trusted(known: object, port: int) -> list[str]:
    """The host keys trusted for a host named web-1 at 127.0.0.1:``port``."""
    keys = asyncssh.match_known_hosts(known, "web-1", "127.0.0.1", port)[0]
    return [" ".join(key.export_public_key().decode().split()[:2]) for key in keys]


def public(keys: Any) -> list[bytes]:
    return [key.public_data for key in keys]


def test_known_hosts_files_are_read_once_with_the_keys_asyncssh_reads(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.1]:2201 {KEY}\n[127.0.0.1]:2202 {OTHER}\n")
    config = write_config(tmp_path, f"UserKnownHostsFile {path}")
    files = HandshakeFiles()
    _, extra = connect_options(files, config, "web-1")
    known = extra["known_hosts"]
    assert trusted(known, 2201) == trusted(str(path), 2201) == [KEY]
    assert trusted(known, 2202) == [OTHER]
    path.write_text("")  # read once: a second host gets what was read
    assert connect_options(files, config, "web-2")[1]["known_hosts"] is known


def test_the_default_known_hosts_file_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    files = HandshakeFiles()
    config = write_config(tmp_path, "Port 2201")
    assert connect_options(files, config, "web-1")[1] == {}  # no ~/.ssh/known_hosts
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:2201 {KEY}\n")
    known = connect_options(files, config, "web-1")[1]["known_hosts"]
    assert trusted(known, 2201) == [KEY]
    assert connect_options(files, config, "web-2")[1]["known_hosts"] is known


@pytest.fixture
def ssh_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``~`` and the global known_hosts defaults moved under ``tmp_path``: this
    machine's own files stay out.  Returns (``~/.ssh``, the global default file)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    system = tmp_path / "etc" / "ssh_known_hosts"
    system.parent.mkdir()
    monkeypatch.setattr(handshake_files, "GLOBAL_KNOWN_HOSTS", (str(system), str(system) + "2"))
    return home / ".ssh", system


def test_a_global_file_does_not_hide_the_users_known_hosts(
    tmp_path: Path, ssh_defaults: tuple[Path, Path]
) -> None:
    """As ssh: GlobalKnownHostsFile without UserKnownHostsFile still reads the user's
    default files (asyncssh alone reads only the global one: 2201 "not trusted")."""
    dot_ssh, _ = ssh_defaults
    (dot_ssh / "known_hosts").write_text(f"[127.0.0.1]:2201 {KEY}\n")
    (dot_ssh / "known_hosts2").write_text(f"[127.0.0.1]:2203 {KEY}\n")
    shared = tmp_path / "shared_known_hosts"
    shared.write_text(f"[127.0.0.1]:2202 {OTHER}\n")
    config = write_config(tmp_path, f"GlobalKnownHostsFile {shared}")
    known = connect_options(HandshakeFiles(), config, "web-1")[1]["known_hosts"]
    assert trusted(known, 2201) == [KEY]
    assert trusted(known, 2202) == [OTHER]
    assert trusted(known, 2203) == [KEY]


def test_the_default_global_files_are_read_with_the_users(
    tmp_path: Path, ssh_defaults: tuple[Path, Path]
) -> None:
    dot_ssh, system = ssh_defaults
    system.write_text(f"[127.0.0.1]:2202 {OTHER}\n")
    config = write_config(tmp_path, "Port 2201")
    known = connect_options(HandshakeFiles(), config, "web-1")[1]["known_hosts"]
    assert trusted(known, 2202) == [OTHER]  # /etc/ssh/ssh_known_hosts alone
    (dot_ssh / "known_hosts").write_text(f"[127.0.0.1]:2201 {KEY}\n")
    user = write_config(tmp_path, f"UserKnownHostsFile {tmp_path / 'mine'}")
    (tmp_path / "mine").write_text(f"[127.0.0.1]:2204 {KEY}\n")
    known = connect_options(HandshakeFiles(), user, "web-1")[1]["known_hosts"]
    assert trusted(known, 2204) == [KEY]  # the named user file
    assert trusted(known, 2202) == [OTHER]  # and the global default
    assert trusted(known, 2201) == []  # not the default user file it replaces


def test_no_check_and_unreadable_files_are_left_to_asyncssh(tmp_path: Path) -> None:
    files = HandshakeFiles()
    none = write_config(tmp_path, "UserKnownHostsFile none")
    assert connect_options(files, none, "web-1")[1] == {}
    missing = write_config(tmp_path, f"UserKnownHostsFile {tmp_path / 'missing'}")
    assert connect_options(files, missing, "web-1")[1] == {}


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "id_rsa"
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    return path


@pytest.mark.parametrize("identities_only", ["yes", "no"])
def test_client_keys_are_loaded_once_with_what_asyncssh_loads(
    tmp_path: Path, rsa_key: Path, identities_only: str
) -> None:
    config = write_config(tmp_path, f"IdentityFile {rsa_key}", f"IdentitiesOnly {identities_only}")
    files = HandshakeFiles()
    first, _ = connect_options(files, config, "web-1")
    second, _ = connect_options(files, config, "web-2")
    alone = asyncssh.SSHClientConnectionOptions(config=[str(config)], host="web-2")
    # the same loaded objects, with the keys asyncssh loads itself
    assert all(a is b for a, b in zip(second.client_keys, first.client_keys, strict=True))
    assert public(second.client_keys) == public(alone.client_keys)
    assert second.agent_identities == alone.agent_identities


def test_hosts_with_other_keys_get_their_own(tmp_path: Path, rsa_key: Path) -> None:
    other = tmp_path / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    config = tmp_path / "two_keys"
    config.write_text(
        f"Host web-1\n    IdentityFile {rsa_key}\nHost web-2\n    IdentityFile {other}\n"
    )
    files = HandshakeFiles()
    first, _ = connect_options(files, config, "web-1")
    second, _ = connect_options(files, config, "web-2")
    assert public(first.client_keys) != public(second.client_keys)


def test_keys_with_certificates_are_left_to_asyncssh(tmp_path: Path, rsa_key: Path) -> None:
    ca = asyncssh.generate_private_key("ssh-ed25519")
    user = asyncssh.read_private_key(str(rsa_key))
    cert = tmp_path / "id_rsa-cert.pub"
    ca.generate_user_certificate(user, "root").write_certificate(str(cert))
    config = write_config(tmp_path, f"IdentityFile {rsa_key}", f"CertificateFile {cert}")
    files = HandshakeFiles()
    first, _ = connect_options(files, config, "web-1")
    second, _ = connect_options(files, config, "web-2")
    assert not any(a is b for a in first.client_keys for b in second.client_keys)
    assert len(second.client_keys) == len(first.client_keys)


def test_ciphers_offer_aes_gcm_first_unless_the_config_chooses(tmp_path: Path) -> None:
    """The same ciphers asyncssh offers, AES-GCM first (a fifth of chacha20-poly1305's
    CPU per packet in asyncssh); an ssh_config with ``Ciphers`` keeps its own list."""
    from asyncssh.encryption import get_default_encryption_algs

    files = HandshakeFiles()
    plain = write_config(tmp_path, "Port 2201")
    options, _ = connect_options(files, plain, "web-1")
    offered = list(options.encryption_algs)
    assert offered[0] == b"aes128-gcm@openssh.com"
    assert sorted(offered) == sorted(get_default_encryption_algs())
    chosen = write_config(tmp_path, "Ciphers chacha20-poly1305@openssh.com,aes256-ctr")
    options, _ = connect_options(files, chosen, "web-1")
    assert list(options.encryption_algs) == [b"chacha20-poly1305@openssh.com", b"aes256-ctr"]
