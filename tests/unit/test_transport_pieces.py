"""Large single files go to the target in pieces: memory stays at one piece."""

from __future__ import annotations

import os
import stat
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import trio

from cdist_trio.transport import pooled
from cdist_trio.transport._process import run_argv
from cdist_trio.transport.base import Completed
from cdist_trio.transport.pooled import PooledRemote
from cdist_trio.transport.sessions import PooledSessions


class LocalPooled(PooledRemote):
    """`PooledRemote` with each session a local ``/bin/sh -c``: its `put` as the SSH
    transports run it, without SSH."""

    def __init__(self) -> None:
        no_pool = SimpleNamespace(
            connections_opened=0,
            sessions_opened=0,
            handshakes_retried=0,
            pool=SimpleNamespace(refusals=0),
        )
        super().__init__("localhost", cast(PooledSessions[Any], no_pool))
        self.commands: list[str] = []

    def exported_commands(self) -> tuple[str, str]:
        return "false", "false"

    async def _exec(self, command: str, stdin: bytes | None) -> Completed:
        self.commands.append(command)
        return await run_argv(["/bin/sh", "-c", command], stdin=stdin, display=command)


def _source(tmp_path: Path, size: int, mode: int) -> Path:
    source = tmp_path / "artifact.bin"
    with source.open("wb") as stream:
        for _ in range(size // 2**20):
            stream.write(os.urandom(2**20))
        stream.write(os.urandom(size % 2**20))
    source.chmod(mode)
    return source


async def test_large_file_goes_in_pieces_with_bounded_memory(tmp_path: Path) -> None:
    size = 3 * pooled.PIECES_FROM  # 48 MiB: 12 pieces
    source = _source(tmp_path, size, 0o640)
    target = tmp_path / "remote" / "dir" / "artifact.bin"
    remote = LocalPooled()
    tracemalloc.start()
    try:
        await remote.put([source], str(target))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["artifact.bin"]
    assert peak < 3 * pooled.PIECE  # the whole file was 12 pieces
    assert len(remote.commands) == size // pooled.PIECE + 2  # pieces, an empty one, the move
    assert remote.statistics().bytes_sent == size


async def test_large_file_into_a_directory_keeps_its_name(tmp_path: Path) -> None:
    source = _source(tmp_path, pooled.PIECES_FROM + 1, 0o600)
    (tmp_path / "remote").mkdir()
    await LocalPooled().put([source], f"{tmp_path / 'remote'}/")
    target = tmp_path / "remote" / "artifact.bin"
    assert target.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_cancelled_upload_leaves_no_partial_file(tmp_path: Path) -> None:
    source = _source(tmp_path, 2 * pooled.PIECES_FROM, 0o644)
    target = tmp_path / "remote" / "artifact.bin"
    remote = LocalPooled()
    real_exec = remote._exec

    async def cancel_at_third(command: str, stdin: bytes | None) -> Completed:
        if len(remote.commands) == 2 and "cat >> " in command:  # the third piece
            scope.cancel()
            await trio.sleep_forever()
        return await real_exec(command, stdin)

    remote._exec = cancel_at_third  # type: ignore[method-assign]
    with trio.CancelScope() as scope:
        await remote.put([source], str(target))
    assert scope.cancelled_caught
    assert list(target.parent.iterdir()) == []  # the partial file was removed
    assert f"rm -f {target}.cdist-trio-" in remote.commands[-1]


@pytest.mark.parametrize("size", [pooled.PIECES_FROM, 1000])
async def test_smaller_files_still_go_as_one_tar(tmp_path: Path, size: int) -> None:
    source = _source(tmp_path, size, 0o644)
    remote = LocalPooled()
    await remote.put([source], str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    assert len(remote.commands) == 1
    assert "tar -x" in remote.commands[0]
