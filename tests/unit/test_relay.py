"""The relay: a type's own `$__remote_exec` / `$__remote_copy` calls reach the target
through the host's Remote, with cdist's calling convention."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import trio

from cdist_trio.relay import open_relay
from cdist_trio.transport.local import LocalRemote


async def _sh(command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            ["/bin/sh", "-c", command],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_relay_exec_runs_through_the_remote(tmp_path: Path) -> None:
    remote = LocalRemote("target")
    async with open_relay(remote) as (remote_exec, _):
        result = await _sh(f"{remote_exec} target 'tr a-z A-Z; exit 3'", stdin=b"hello\n")
    assert result.returncode == 3
    assert result.stdout == b"HELLO\n"
    assert remote.statistics().sessions_opened == 1


async def test_relay_copy_puts_files_with_cdist_arguments(tmp_path: Path) -> None:
    source = tmp_path / "src file"
    source.write_text("content\n")
    destination = tmp_path / "dest" / "motd"
    destination.parent.mkdir()
    remote = LocalRemote("target")
    async with open_relay(remote) as (_, remote_copy):
        quoted = shlex.quote(f"target:{destination}")
        result = await _sh(f"{remote_copy} {shlex.quote(str(source))} {quoted}")
    assert result.returncode == 0, result.stderr
    assert destination.read_text() == "content\n"


async def test_relay_reports_failures_as_exit_status(tmp_path: Path) -> None:
    remote = LocalRemote("target")
    async with open_relay(remote) as (_, remote_copy):
        result = await _sh(f"{remote_copy} {tmp_path}/missing 'target:{tmp_path}/x'")
    assert result.returncode != 0
    assert result.stderr
