"""Global and type explorers: transfer them to the target and run them there (spec §5.5, §5.11).

Type explorers are transferred once per type per host, even when many objects of the
type are prepared at the same time: the first one transfers, the others wait for it.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import trio

from . import env as stage_env
from .context import HostContext
from .errors import CommandError, ErrorReport, GlobalExplorerError, ObjectExplorerError, Stream
from .model.objects import CdistObject


def _append(path: Path, data: bytes) -> None:
    if data:
        with path.open("ab") as sink:
            sink.write(data)


def _explorer_stderr(ctx: HostContext, data: bytes) -> None:
    """Explorer stderr joins ``$G/stderr/remote``; with -S it goes to our stderr, with
    -q nowhere (spec §12.2)."""
    if ctx.settings.quiet or not data:
        return
    if ctx.settings.save_output_streams:
        _append(ctx.workdir.stream("stderr", "remote"), data)
    else:
        sys.stderr.flush()
        sys.stderr.buffer.write(data)
        sys.stderr.buffer.flush()


def _remote_stderr(ctx: HostContext) -> Stream:
    path = ctx.workdir.stream("stderr", "remote")
    text = path.read_text(errors="replace") if path.exists() else ""
    return Stream("remote:stderr", text)


async def transfer_dir(ctx: HostContext, files: list[Path], destination: str) -> None:
    """mkdir the destination, copy the files into it, make them executable (0700)."""
    if not files:
        return
    quoted = shlex.quote(destination)
    await ctx.remote.run(f"mkdir -p {quoted}")
    await ctx.remote.put(files, destination + "/")
    await ctx.remote.run(f"chmod 0700 {quoted}/*")


async def run_global_explorers(ctx: HostContext) -> None:
    """Transfer every global explorer in one copy, then run them under the job limiter."""
    ctx.log.log(15, "Running global explorers")
    names = ctx.workdir.global_explorers()
    explorer_dir = ctx.workdir.conf / "explorer"
    await transfer_dir(ctx, [explorer_dir / n for n in names], ctx.remote_explorer_dir)
    env = stage_env.global_explorer_env(ctx)

    async def run_one(name: str) -> None:
        async with ctx.job_limiter:
            script = f"{ctx.settings.remote_shell} -e {shlex.quote(ctx.remote_explorer_dir)}/{name}"
            result = await ctx.remote.run(script, env=env, check=False)
        _explorer_stderr(ctx, result.stderr)
        if result.returncode != 0:
            report = ErrorReport(
                f"global explorer '{name}'",
                {"name": name, "path": str(explorer_dir / name)},
                [_remote_stderr(ctx)],
            )
            raise GlobalExplorerError(
                f"{script}: global explorer {name} exited with status {result.returncode}",
                report,
            )
        (ctx.workdir.explorer_out / name).write_bytes(result.stdout)

    await _gather(ctx, list(names), run_one)


async def _gather(ctx: HostContext, items: list[str], job: object) -> None:
    """Run ``job(item)`` for every item concurrently; the first error wins, others stop."""
    failure: list[BaseException] = []

    async def guarded(item: str) -> None:
        try:
            await job(item)  # type: ignore[operator]
        except Exception as exc:
            if not failure:
                failure.append(exc)
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(guarded, item)
    if failure:
        raise failure[0]


async def transfer_type_explorers(ctx: HostContext, obj: CdistObject) -> None:
    """Copy the type's explorers once per host; concurrent callers wait for the first."""
    cdist_type = obj.cdist_type
    if not cdist_type.explorers:
        return
    event = ctx.transferred_types.get(cdist_type.name)
    if event is not None:
        await event.wait()
        return
    event = ctx.transferred_types[cdist_type.name] = trio.Event()
    try:
        files = [cdist_type.explorer_dir / n for n in cdist_type.explorers]
        await transfer_dir(ctx, files, ctx.remote_type_explorer_dir(cdist_type.name))
    except BaseException:
        del ctx.transferred_types[cdist_type.name]
        raise
    finally:
        event.set()


async def transfer_parameters(ctx: HostContext, obj: CdistObject) -> None:
    files = sorted(p for p in obj.parameter_path.iterdir()) if obj.parameter_path.is_dir() else []
    if not files:
        return
    destination = ctx.remote_object_dir(obj.relative_path) + "/parameter"
    await ctx.remote.run(f"mkdir -p {shlex.quote(destination)}")
    await ctx.remote.put(files, destination + "/")


async def run_type_explorers(ctx: HostContext, obj: CdistObject) -> None:
    """Transfer the type's explorers and the object's parameters, run each explorer."""
    cdist_type = obj.cdist_type
    if not cdist_type.explorers:
        return
    ctx.log.log(15, "Running type explorers for <CdistType %s>", cdist_type.name)
    await transfer_type_explorers(ctx, obj)
    await transfer_parameters(ctx, obj)
    env = stage_env.type_explorer_env(ctx, obj)
    explorer_dir = ctx.remote_type_explorer_dir(cdist_type.name)
    obj.explorer_path.mkdir(parents=True, exist_ok=True)
    for name in cdist_type.explorers:
        script = f"{ctx.settings.remote_shell} -e {shlex.quote(explorer_dir)}/{name}"
        try:
            result = await ctx.remote.run(script, env=env, check=True)
        except CommandError as exc:
            _explorer_stderr(ctx, exc.stderr)
            report = ErrorReport(
                f"explorer '{name}' of object '{obj.name}'",
                {
                    "object name": obj.name,
                    "object path": str(obj.path),
                    "object source": " ".join(obj.source),
                    "object type": str(cdist_type.real_path),
                    "explorer name": name,
                    "explorer path": str(cdist_type.explorer_dir / name),
                },
                [_remote_stderr(ctx)],
            )
            raise ObjectExplorerError(
                f"{script}: explorer {name} of {obj.name} exited with status {exc.exit_status}",
                report,
            ) from exc
        _explorer_stderr(ctx, result.stderr)
        output = result.stdout
        if output and not output.endswith(b"\n"):
            output += b"\n"
        (obj.explorer_path / name).write_bytes(output)
