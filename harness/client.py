"""OpenSSH client helpers for tests against harness targets: a ControlMaster with mux
clients that cannot fall back silently, and sessions held open on demand.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .sshd import poll_until
from .targets import SshTarget


@contextlib.contextmanager
def control_master(target: SshTarget, socket: Path) -> Iterator[list[str]]:
    """Run an OpenSSH ControlMaster to `target`; yield the args of a mux client.

    Mux clients get a ProxyCommand that only fails, so a refused session cannot silently
    fall back to a new connection (FIELD-NOTES).
    """
    assert target.ssh_config is not None
    base = ["ssh", "-F", str(target.ssh_config), "-o", f"ControlPath={socket}"]
    master = subprocess.Popen(
        [*base, "-o", "ControlMaster=yes", "-N", target.name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    check = [*base, "-O", "check", target.name]
    try:
        poll_until(
            lambda: (
                master.poll() is None
                and subprocess.run(check, capture_output=True, check=False).returncode == 0
            ),
            timeout=30,
            what="the ControlMaster",
        )
        client = [
            *base,
            "-o",
            "ControlMaster=no",
            "-o",
            "ProxyCommand=sh -c 'echo NO-FALLBACK >&2; exit 1'",
            target.name,
        ]
        yield client
    finally:
        subprocess.run([*base, "-O", "exit", target.name], capture_output=True, check=False)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        if master.stderr is not None:
            master.stderr.close()


@contextlib.contextmanager
def waiting_session(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """An ssh client whose remote command blocks on stdin until the block ends."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                process.communicate("\n", timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def run_concurrently(
    commands: list[list[str]], *, timeout: float = 60.0
) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once, wait for all; results in order. Blocks."""
    processes = [
        subprocess.Popen(
            c, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    deadline = time.monotonic() + timeout
    results: list[subprocess.CompletedProcess[str]] = []
    try:
        for command, process in zip(commands, processes, strict=True):
            remaining = max(0.1, deadline - time.monotonic())
            stdout, stderr = process.communicate(timeout=remaining)
            results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results
