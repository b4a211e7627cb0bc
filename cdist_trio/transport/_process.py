"""Structured local child processes for the transports: argv in, `Completed` out.

Each child gets its own process group, so a cancelled command takes its whole tree
with it (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

import trio

from ..errors import ConnectError, local_fix
from .base import Completed

KILL_GRACE = 2.0


async def _kill_group(process: trio.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with trio.move_on_after(KILL_GRACE):
        await process.wait()
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return


async def run_argv(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    display: str | None = None,
) -> Completed:
    """Run ``argv`` to completion and capture both streams; never raises on exit status."""
    try:
        result = await trio.run_process(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            deliver_cancel=_kill_group,
        )
    except OSError as exc:
        # a program that cannot be started is to be made executable, not writable
        executable = exc.errno in (errno.EACCES, errno.EPERM)
        fix = "make it executable for this user (chmod +x)" if executable else local_fix(exc)
        reason = f"{exc.strerror or exc}" + (f"; {fix}" if fix else "")
        raise ConnectError(f"cannot start {argv[0]!r}: {reason}") from exc
    return Completed(
        command=display if display is not None else " ".join(argv),
        returncode=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
    )
