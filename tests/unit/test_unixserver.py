"""Unix sockets of the run (the emulator's and relay's servers, ssh control sockets):
their directory is in TMPDIR when the socket paths fit, else in /tmp."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest
import trio

from cdist_trio.transport.openssh import CONTROL_NAME_LENGTH
from cdist_trio.unixserver import SOCKET_PATH_MAX, open_unix_server, socket_directory


@pytest.fixture
def deep_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TMPDIR as deep as CI workspaces have: no socket path under it fits."""
    deep = tmp_path / ("d" * (SOCKET_PATH_MAX + 16 - len(str(tmp_path))))
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    return deep


def _bind(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))


def test_socket_directory_in_tmpdir_when_the_paths_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    directory = socket_directory("cdist-trio-x.", 1)
    assert directory.parent == tmp_path
    _bind(directory / "s")


@pytest.mark.parametrize(
    ("prefix", "name"),
    [("cdist-trio-emu.", "s"), ("cdist-trio-ssh.", "m1" + "." + "x" * 16)],
)
def test_socket_directory_in_tmp_when_tmpdir_is_too_deep(
    deep_tmpdir: Path, prefix: str, name: str
) -> None:
    with pytest.raises(OSError, match="AF_UNIX path too long"):
        _bind(deep_tmpdir / name)  # what every host failed with
    directory = socket_directory(prefix, max(len(name), CONTROL_NAME_LENGTH))
    try:
        assert directory.parent == Path("/tmp")
        _bind(directory / name)
    finally:
        (directory / name).unlink(missing_ok=True)
        directory.rmdir()


async def test_unix_server_serves_with_a_deep_tmpdir(deep_tmpdir: Path) -> None:
    async def echo(request: bytes) -> bytes:
        return request.upper()

    async with open_unix_server("cdist-trio-test.", echo) as path:
        stream = await trio.open_unix_socket(path)
        async with stream:
            await stream.send_all(b"ping")
            await stream.send_eof()
            assert await stream.receive_some() == b"PING"
