"""Local script execution for manifests, gencode and code-local (spec §5.6, §5.9).

Executable scripts run directly; others with ``<local_shell> -e``.  Streams go to
cdist's capture files (append), or are inherited with ``-S``, or dropped with ``-q``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import IO

import trio

from . import shellpool
from .context import HostContext
from .log import TRACE
from .transport._process import _kill_group

#: cdist runs with umask 077 (spec §5.2), and shipped types rely on it without saying so:
#: `__file` uploads an empty file it `touch`es in gencode-local, and the copy keeps that
#: file's mode, so a file created without --mode is 0600 on the target.
LOCAL_UMASK = 0o077


def script_argv(ctx: HostContext, script: Path, *, allow_direct: bool = True) -> list[str]:
    key = (str(script), allow_direct)
    argv = ctx.argv_cache.get(key)
    if argv is None:
        argv = ctx.argv_cache[key] = _script_argv(ctx, script, allow_direct=allow_direct)
    return list(argv)


def _script_argv(ctx: HostContext, script: Path, *, allow_direct: bool) -> list[str]:
    if allow_direct and os.access(script, os.X_OK):
        ctx.log.debug("%s is executable, running it", script)
        return [os.path.realpath(script)]
    ctx.log.debug("%s is NOT executable, running it with %s -e", script, ctx.settings.local_shell)
    return [*ctx.settings.local_shell.split(), "-e", str(script)]


async def run_local_script(
    ctx: HostContext,
    script: Path,
    env: Mapping[str, str],
    *,
    stdout: Path | None,
    stderr: Path | None,
    capture_stdout: bool = False,
    allow_direct: bool = True,
) -> tuple[int, bytes]:
    """Run a local script as `run_script` would; a ``/bin/sh`` script that could not
    tell the difference is sourced by a pooled shell instead of started as a process
    of its own (`shellpool`)."""
    pool = ctx.local_shells
    out = shellpool.CAPTURE if capture_stdout else _sink(ctx, stdout)
    errexit = _sourced_errexit(ctx, script, allow_direct)
    # An inherited stdout (-S) cannot be handed to a pooled shell.
    if pool is None or out is None or errexit is None:
        return await run_script(
            ctx,
            script_argv(ctx, script, allow_direct=allow_direct),
            env,
            stdout=stdout,
            stderr=stderr,
            capture_stdout=capture_stdout,
        )
    async with ctx.local_limiter:
        started = trio.current_time()
        result = await pool.run(script, env, errexit=errexit, stdout=out, stderr=_sink(ctx, stderr))
    _trace(ctx, f"{script} (sourced by a pooled shell)", result[0], started, env)
    return result


def ran_in_engine(
    ctx: HostContext, script: Path, stderr: Path, env: Mapping[str, str], started: float
) -> None:
    """What is left to do after a script's twin did its work (`gencode_twins`): the
    script's stderr capture file, empty, as its run would have left it; the TRACE line."""
    settings = ctx.settings
    if settings.save_output_streams and not settings.quiet:  # as `_sink` decides
        _touch(stderr)
    _trace(ctx, f"{script} (its twin, in the engine)", 0, started, env)


async def run_shell(
    ctx: HostContext,
    argv: list[str],
    env: Mapping[str, str],
    *,
    stdout: Path | None,
    stderr: Path | None,
    display: str | None = None,
) -> int:
    """Run ``argv``, a command line of the pooled shells' own shell (a manifest run by
    ``/bin/sh``), as `run_script` would; started by a pooled shell when there is one and
    stdout is not inherited, so the engine does not fork while hosts are at work.
    ``display`` names the command in the TRACE log instead of ``argv``."""
    pool = ctx.local_shells
    out = _sink(ctx, stdout)
    if pool is None or out is None or not shellpool.is_pool_shell(argv[0]):
        status, _ = await run_script(ctx, argv, env, stdout=stdout, stderr=stderr, display=display)
        return status
    async with ctx.local_limiter:
        started = trio.current_time()
        status, _ = await pool.run(argv, env, errexit=False, stdout=out, stderr=_sink(ctx, stderr))
    _trace(ctx, f"{display or shlex.join(argv)} (by a pooled shell)", status, started, env)
    return status


def _sink(ctx: HostContext, path: Path | None) -> Path | str | None:
    """Where a local script's stream goes (spec §12): `shellpool.DEVNULL` with ``-q``,
    None (inherited) with ``-S`` or no capture file, else the file to append to (its
    directory made)."""
    settings = ctx.settings
    if settings.quiet:
        return shellpool.DEVNULL
    if path is None or not settings.save_output_streams:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _touch(path: Path) -> None:
    """Create ``path`` if it is missing, as a redirection to it would; its directory
    only when there is none (it usually is there: one ``mkdir`` fewer per script)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    os.close(fd)


def _sourced_errexit(ctx: HostContext, script: Path, allow_direct: bool) -> bool | None:
    """`shellpool.sourced_errexit`, decided once per host and script."""
    key = (str(script), allow_direct)
    if key not in ctx.pooled:
        ctx.pooled[key] = shellpool.sourced_errexit(
            script,
            local_shell=ctx.settings.local_shell,
            executable=allow_direct and os.access(script, os.X_OK),
        )
    return ctx.pooled[key]


async def run_script(
    ctx: HostContext,
    argv: list[str],
    env: Mapping[str, str],
    *,
    stdout: Path | None,
    stderr: Path | None,
    capture_stdout: bool = False,
    display: str | None = None,
) -> tuple[int, bytes]:
    """Run ``argv`` locally; return its exit status and, if asked, its stdout."""
    with ExitStack() as stack:

        def sink(path: Path | None) -> IO[bytes] | int | None:
            target = _sink(ctx, path)
            if not isinstance(target, Path):
                return None if target is None else subprocess.DEVNULL
            return stack.enter_context(target.open("ab"))

        run = partial(
            trio.run_process,
            argv,
            stdin=subprocess.DEVNULL,
            stderr=sink(stderr),
            env=dict(env),
            check=False,
            start_new_session=True,
            umask=LOCAL_UMASK,
            deliver_cancel=_kill_group,
        )
        # trio takes stdout either captured or as a sink, never both in one call.
        async with ctx.local_limiter:
            started = trio.current_time()
            result = await (
                run(capture_stdout=True) if capture_stdout else run(stdout=sink(stdout))
            )
        _trace(ctx, display or shlex.join(argv), result.returncode, started, env)
        return result.returncode, result.stdout or b""


def _trace(
    ctx: HostContext, what: str, status: int, started: float, env: Mapping[str, str]
) -> None:
    """``-vvvv``: one record per local script or command that ran (what, for which
    object, how it ended; not its output: see `transport.traced`)."""
    if ctx.log.isEnabledFor(TRACE):
        took = (trio.current_time() - started) * 1000
        name = env.get("__object_name")
        what = f"{what} for {name}" if name else what
        ctx.log.log(TRACE, "local command: %s\n-> exit status %d, %.1f ms", what, status, took)
