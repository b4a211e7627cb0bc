"""The one conformance suite every `Remote` implementation passes (DESIGN.md §3).

Test modules import these tests and provide two fixtures: ``remote`` (an open Remote)
and ``remote_tmp`` (a scratch directory path on the target).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from cdist_trio.errors import CommandError
from cdist_trio.transport import Remote


async def poll(check: Callable[[], Awaitable[bool]], *, interval: float = 0.02) -> None:
    """Wait until ``check()`` holds: a real condition on a target we cannot subscribe to.

    The caller bounds the wait with ``trio.fail_after``.
    """
    # A target's process table has no events to wait on: poll it, bounded by the caller.
    while not await check():  # noqa: ASYNC110
        await trio.sleep(interval)


__all__ = [
    "test_remote_cancel_kills_the_command",
    "test_remote_concurrent_commands",
    "test_remote_env_values_are_quoted",
    "test_remote_exit_status",
    "test_remote_large_output",
    "test_remote_put_into_directory",
    "test_remote_put_large_file",
    "test_remote_put_single_file",
    "test_remote_run_captures_streams",
    "test_remote_stdin",
]


async def test_remote_run_captures_streams(remote: Remote) -> None:
    with trio.fail_after(30):
        result = await remote.run("echo out; echo err >&2")
    assert result.returncode == 0
    assert result.stdout == b"out\n"
    assert b"err\n" in result.stderr


async def test_remote_exit_status(remote: Remote) -> None:
    with trio.fail_after(30):
        result = await remote.run("echo partial; exit 3", check=False)
        assert result.returncode == 3
        assert result.stdout == b"partial\n"
        with pytest.raises(CommandError) as caught:
            await remote.run("echo bad >&2; exit 255")
    assert caught.value.exit_status == 255
    assert b"bad" in caught.value.stderr


async def test_remote_stdin(remote: Remote) -> None:
    with trio.fail_after(30):
        result = await remote.run("tr a-z A-Z", stdin=b"hello\n")
    assert result.stdout == b"HELLO\n"


@pytest.mark.parametrize(
    "value",
    ["plain", "two words", "it's", 'say "hi"', "$HOME `id` $(id)", "line1\nline2", ""],
)
async def test_remote_env_values_are_quoted(remote: Remote, value: str) -> None:
    with trio.fail_after(30):
        result = await remote.run('printf %s "$__value"', env={"__value": value})
    assert result.stdout.decode() == value


async def test_remote_large_output(remote: Remote) -> None:
    with trio.fail_after(60):
        line = "0123456789abcdef" * 3
        result = await remote.run(f"i=0; while [ $i -lt 20000 ]; do echo {line}; i=$((i+1)); done")
    assert len(result.stdout) == 20000 * 49


async def test_remote_put_into_directory(remote: Remote, remote_tmp: str, tmp_path: Path) -> None:
    sources = []
    for name in ("a", "b c", "d"):
        path = tmp_path / name
        path.write_text(f"content of {name}\n")
        sources.append(path)
    link = tmp_path / "link"
    link.symlink_to(sources[0])
    with trio.fail_after(30):
        await remote.run(f"mkdir -p '{remote_tmp}/dir'")
        await remote.put([*sources, link], f"{remote_tmp}/dir/")
        result = await remote.run(
            f"cd '{remote_tmp}/dir' && for f in *; do printf '%s=' \"$f\"; cat \"$f\"; done"
        )
    assert result.stdout.decode() == (
        "a=content of a\nb c=content of b c\nd=content of d\nlink=content of a\n"
    )


async def test_remote_put_single_file(remote: Remote, remote_tmp: str, tmp_path: Path) -> None:
    source = tmp_path / "code"
    source.write_bytes(b"echo ran\n")
    with trio.fail_after(30):
        await remote.put([source], f"{remote_tmp}/code-remote")
        result = await remote.run(f"/bin/sh -e '{remote_tmp}/code-remote'")
    assert result.stdout == b"ran\n"


async def test_remote_concurrent_commands(remote: Remote) -> None:
    results: dict[int, bytes] = {}

    async def one(i: int) -> None:
        results[i] = (await remote.run(f"echo {i}")).stdout

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(one, i)
    assert results == {i: f"{i}\n".encode() for i in range(12)}


async def test_remote_cancel_kills_the_command(remote: Remote, remote_tmp: str) -> None:
    pidfile = f"{remote_tmp}/sleeper.pid"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(remote.run, f"echo $$ > '{pidfile}'; exec sleep 600")

            async def started() -> bool:
                return (await remote.run(f"test -s '{pidfile}'", check=False)).returncode == 0

            await poll(started)
            nursery.cancel_scope.cancel()
        pid = (await remote.run(f"cat '{pidfile}'")).stdout.decode().strip()

        async def gone() -> bool:
            return (await remote.run(f"kill -0 {pid}", check=False)).returncode != 0

        await poll(gone)
    assert pid.isdigit()
    assert os.getpid() != int(pid)


async def test_remote_put_large_file(
    remote: Remote, remote_tmp: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file larger than the SSH transports send at once (scaled down here: pieces of
    64 KiB from 256 KiB) arrives byte-exact with its mode, and nothing else is left."""
    from cdist_trio.transport import pooled

    monkeypatch.setattr(pooled, "PIECES_FROM", 256 * 1024)
    monkeypatch.setattr(pooled, "PIECE", 64 * 1024)
    source = tmp_path / "artifact"
    source.write_bytes(os.urandom(1_000_000))
    source.chmod(0o640)
    with trio.fail_after(60):
        await remote.run(f"mkdir -p '{remote_tmp}/big'")
        await remote.put([source], f"{remote_tmp}/big/artifact")
        listing = await remote.run(f"cd '{remote_tmp}/big' && ls -A && stat -c %a artifact")
        content = await remote.run(f"cat '{remote_tmp}/big/artifact'")
    assert listing.stdout == b"artifact\n640\n"
    assert content.stdout == source.read_bytes()
