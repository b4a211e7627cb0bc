"""Output nobody reads any more (``| head`` done, ``| less`` quit): no traceback, and a
config run goes on to the end instead of stopping with hosts half-configured.

Each command runs with a stream whose reading end is closed before it starts, so its
first write fails with EPIPE (Python ignores SIGPIPE): no timing involved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.scenario_support import CONF

HOSTS = ["h1", "h2", "h3"]
NOTICE = "cdist-trio: standard output was closed: its log lines are dropped; the run goes on\n"


def closed_pipe() -> int:
    """The writing end of a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def run(argv: list[str], *, stdout: int | None = None, stderr: int | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    try:
        return subprocess.run(
            [sys.executable, "-m", "cdist_trio", *argv],
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        for fd in (stdout, stderr):
            if fd is not None:
                os.close(fd)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    values = {k: v for k, v in os.environ.items() if not k.startswith(("CDIST_", "__"))}
    return {**values, "HOME": str(home), "NO_COLOR": "1"}


def config_argv(tmp_path: Path, manifest: str, *options: str) -> list[str]:
    path = tmp_path / "manifest"
    path.write_text(manifest)
    return [
        "config", "--transport", "local", "-r", str(tmp_path / "remote" / "%N"),
        "-c", str(CONF), "-i", str(path), "-p", *options, "--", *HOSTS,
    ]  # fmt: skip


def steps_done(tmp_path: Path) -> dict[str, str]:
    return {
        host: (tmp_path / f"log-{host}").read_text()
        for host in HOSTS
        if (tmp_path / f"log-{host}").exists()
    }


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["config", "--help"], ["info"], ["info", "--help"]]
)
def test_closed_stdout_output_commands_exit_1_without_traceback(
    argv: list[str], env: dict[str, str]
) -> None:
    done = run(argv, stdout=closed_pipe(), env=env)
    assert done.returncode == 1
    assert done.stderr == b""


@pytest.mark.parametrize("display", ["--no-progress", "--progress"])
def test_closed_stdout_config_run_goes_on_and_says_so_once(
    display: str, tmp_path: Path, env: dict[str, str]
) -> None:
    manifest = (
        f"__step one --log {tmp_path}/log-$__target_host\n"
        f"require=__step/one __step two --log {tmp_path}/log-$__target_host\n"
    )
    done = run(config_argv(tmp_path, manifest, "-vv", display), stdout=closed_pipe(), env=env)
    assert done.returncode == 0, done.stderr.decode()
    # Every host ran to its end: both objects' local and remote code, in order.
    expected = "local __step/one\nremote __step/one\nlocal __step/two\nremote __step/two\n"
    assert steps_done(tmp_path) == dict.fromkeys(HOSTS, expected)
    assert done.stderr.decode() == NOTICE


def test_closed_stderr_failed_host_reported_by_exit_status(
    tmp_path: Path, env: dict[str, str]
) -> None:
    manifest = (
        f"__step one --log {tmp_path}/log-$__target_host\n"
        'if [ "$__target_host" = h2 ]; then echo broken >&2; exit 1; fi\n'
    )
    done = run(config_argv(tmp_path, manifest, "--no-progress"), stderr=closed_pipe(), env=env)
    assert done.returncode == 1
    assert sorted(steps_done(tmp_path)) == ["h1", "h3"]
    assert b"Traceback" not in done.stdout
    assert b"Logging error" not in done.stdout
