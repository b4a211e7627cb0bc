"""This machine's own failures (a disk full, too many open files, no permission) fail
the hosts they hit with the reason and the fix, and never end the run with a
traceback or take other hosts down."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from cdist_trio.errors import CdistError, LocalError, exception_leaves, local_failure
from tests.unit.scenario_support import CONF

HOSTS = [f"h{i}" for i in range(1, 21)]


def test_local_failure_names_stage_reason_path_and_fix() -> None:
    error = OSError(errno.ENOSPC, "No space left on device", "/tmp/cdist-trio.x/data")
    failure = local_failure(error, "initial manifest")
    assert isinstance(failure, LocalError)  # the report's error type
    assert str(failure) == (
        "initial manifest: local error: No space left on device: /tmp/cdist-trio.x/data; "
        "free space, or point TMPDIR (or -o DIR) at a file system with room"
    )


def test_local_failure_of_the_cache_points_at_home() -> None:
    error = OSError(errno.EROFS, "Read-only file system", "/home/op/.cdist")
    assert str(local_failure(error, "cache")) == (
        "cache: local error: Read-only file system: /home/op/.cdist; "
        "point HOME (the cache is ~/.cdist/cache) at a writable file system"
    )


def test_local_failure_without_a_known_fix_or_stage() -> None:
    failure = local_failure(OSError(errno.EIO, "Input/output error"))
    assert str(failure) == "local error: Input/output error"


def test_local_failure_inside_exception_groups() -> None:
    inner = OSError(errno.EMFILE, "Too many open files")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [inner]), CdistError("other")])
    assert next(iter(exception_leaves(group))) is inner
    assert str(local_failure(group, "objects")) == (
        "objects: local error: Too many open files; "
        "raise the open files limit (ulimit -n) or lower -p/-j"
    )


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        CdistError("already reported its own way"),
        BaseExceptionGroup("cancelled too", [OSError(errno.ENOSPC, "full"), KeyboardInterrupt()]),
    ],
)
def test_local_failure_leaves_everything_else_alone(error: BaseException) -> None:
    assert local_failure(error, "objects") is None


def test_local_failure_never_swallows_a_cancellation() -> None:
    """A host cancelled (its deadline, Ctrl-C) while a clean-up fails: the group holds
    the OSError and the cancellation, which must go on to its scope."""
    seen: list[BaseExceptionGroup[BaseException]] = []

    async def main() -> None:
        with trio.CancelScope() as host_scope:
            try:
                async with trio.open_nursery() as nursery:

                    async def cleanup_fails() -> None:
                        try:
                            await trio.sleep_forever()
                        finally:
                            raise OSError(errno.ENOSPC, "No space left on device")

                    nursery.start_soon(cleanup_fails)
                    nursery.start_soon(trio.sleep_forever)
                    await trio.testing.wait_all_tasks_blocked()
                    host_scope.cancel()
                    await trio.sleep_forever()
            except BaseExceptionGroup as group:
                seen.append(group)
                if local_failure(group, "objects") is None:
                    raise

    with pytest.raises(ExceptionGroup):  # the OSError, once the scope took its Cancelled
        trio.run(main)
    assert any(isinstance(leaf, trio.Cancelled) for leaf in exception_leaves(seen[0]))


def test_too_many_open_files_fails_hosts_with_the_fix_not_a_traceback(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest"
    manifest.write_text(f"__step one --log {tmp_path}/log-$__target_host\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDIST_", "__"))}

    def low_limit() -> None:  # soft and hard: nothing can raise it again
        resource.setrlimit(resource.RLIMIT_NOFILE, (50, 50))

    argv = [
        sys.executable, "-m", "cdist_trio", "config", "--transport", "local",
        "-r", str(tmp_path / "remote" / "%N"), "-c", str(CONF), "-i", str(manifest),
        "-p", "--report", str(tmp_path / "report.json"), "--", *HOSTS,
    ]  # fmt: skip
    done = subprocess.run(
        argv,
        env={**env, "HOME": str(home)},
        preexec_fn=low_limit,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    report = json.loads((tmp_path / "report.json").read_text())
    failed = [h for h in report["hosts"] if h["status"] == "failed"]
    assert failed
    assert {h["error"]["type"] for h in failed} <= {"LocalError", "ConnectError"}
    errors = [line for line in output.splitlines() if line.startswith("ERROR: h")]
    assert errors, output
    for line in errors:
        assert "Too many open files" in line, line
        assert line.endswith("raise the open files limit (ulimit -n) or lower -p/-j"), line


def test_local_failure_outside_any_host_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o under a regular file: the run's own directory cannot be made."""
    from cdist_trio import cli

    monkeypatch.setenv("HOME", str(tmp_path))
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    manifest = tmp_path / "manifest"
    manifest.write_text("")
    argv = ["config", "--transport", "local", "-o", str(not_a_dir / "out"), "-i", str(manifest)]
    assert cli.main([*argv, "h1"]) == 1
    assert capsys.readouterr().err == (
        f"ERROR: cdist: local error: Not a directory: {not_a_dir / 'out'}\n"
    )
