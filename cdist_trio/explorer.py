"""Global and type explorers: transfer them to the target and run them there (spec §5.5, §5.11).

Type explorers are transferred once per type per host, even when many objects of the
type are prepared at the same time: the first one transfers, the others wait for it.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from . import env as stage_env
from .batch import Step, StepResult, may_source, run_batch
from .context import HostContext
from .errors import CommandError, ErrorReport, GlobalExplorerError, ObjectExplorerError, Stream
from .model.objects import CdistObject
from .model.smallfiles import write_bytes
from .tasks import gather_first_error


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
            raise _global_explorer_error(ctx, name, script, result.returncode)
        write_bytes(ctx.workdir.explorer_out / name, result.stdout)

    await gather_first_error(names, run_one)


def _global_explorer_error(
    ctx: HostContext, name: str, script: str, status: int
) -> GlobalExplorerError:
    report = ErrorReport(
        f"global explorer '{name}'",
        {"name": name, "path": str(ctx.workdir.conf / "explorer" / name)},
        [_remote_stderr(ctx)],
    )
    return GlobalExplorerError(
        f"{script}: global explorer {name} exited with status {status}", report
    )


def _sourced(ctx: HostContext, local: Path, remote: str) -> str | None:
    """``remote`` when batches may source the explorer at ``local`` (decided once)."""
    key = str(local)
    allowed = ctx.sourceable.get(key)
    if allowed is None:
        text = local.read_text(errors="replace")
        allowed = ctx.sourceable[key] = may_source(ctx.settings.remote_shell, text)
    return remote if allowed else None


def _global_explorer_command(ctx: HostContext, name: str) -> str:
    return f"{ctx.settings.remote_shell} -e {shlex.quote(ctx.remote_explorer_dir)}/{name}"


async def setup_and_run_global_explorers(ctx: HostContext, setup: str) -> None:
    """Remote base setup, the transfer of every global explorer and all their runs, in
    one session; outputs and errors exactly as with one call per explorer."""
    ctx.log.log(15, "Running global explorers")
    names = ctx.workdir.global_explorers()
    explorer_dir = ctx.workdir.conf / "explorer"
    files = [(explorer_dir / n, f"conf/explorer/{n}", 0o700) for n in names]
    env = stage_env.global_explorer_env(ctx)
    remote_dir = ctx.remote_explorer_dir
    steps = [
        Step(
            n,
            _global_explorer_command(ctx, n),
            env,
            _sourced(ctx, explorer_dir / n, f"{remote_dir}/{n}"),
        )
        for n in names
    ]
    result = await run_batch(
        ctx.remote, ctx.remote_base, files, steps, stop_on_failure=False, prelude=setup, log=ctx.log
    )
    for name in names:
        _explorer_stderr(ctx, result.results[name].stderr)
    for name in names:
        step = result.results[name]
        if step.returncode != 0:
            raise _global_explorer_error(
                ctx, name, _global_explorer_command(ctx, name), step.returncode
            )
        write_bytes(ctx.workdir.explorer_out / name, step.stdout)


def _type_explorer_command(ctx: HostContext, obj: CdistObject, name: str) -> str:
    explorer_dir = ctx.remote_type_explorer_dir(obj.cdist_type.name)
    return f"{ctx.settings.remote_shell} -e {shlex.quote(explorer_dir)}/{name}"


def _type_explorer_error(
    ctx: HostContext, obj: CdistObject, name: str, status: int | None
) -> ObjectExplorerError:
    cdist_type = obj.cdist_type
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
    return ObjectExplorerError(
        f"{_type_explorer_command(ctx, obj, name)}: explorer {name} of {obj.name} "
        f"exited with status {status}",
        report,
    )


def _store_explorer_output(obj: CdistObject, name: str, output: bytes) -> None:
    if output and not output.endswith(b"\n"):
        output += b"\n"
    write_bytes(obj.explorer_path / name, output)


@dataclass
class ExplorerSteps:
    """What a batch needs to run the type explorers of some objects: the files (type
    explorers not sent yet, every object's parameters) and one step per explorer."""

    objects: list[CdistObject]
    files: list[tuple[Path | str, str, int]]
    steps: list[Step]
    sending: dict[str, trio.Event]
    """The types whose explorers this batch carries, and their `transferred_types`
    events, set when the batch ends."""
    transferred_types: dict[str, trio.Event]

    def finish(self, *, sent: bool) -> None:
        """Release waiters; if the batch did not run, the types are not on the target."""
        for name, event in self.sending.items():
            if not sent:
                del self.transferred_types[name]
            event.set()


def explorer_key(obj: CdistObject, explorer: str) -> str:
    """The batch step (and result) key of one type explorer run of ``obj``."""
    return f"{obj.name}\0{explorer}"


def type_explorer_steps(
    ctx: HostContext, objects: Sequence[CdistObject], *, wait_for: list[trio.Event] | None
) -> ExplorerSteps | None:
    """The files and steps for the type explorers of ``objects`` (those with explorers).

    A type that another batch is sending right now is waited for (its event lands in
    ``wait_for``); with ``wait_for=None`` such objects are left out instead.
    """
    chosen: list[CdistObject] = []
    files: list[tuple[Path | str, str, int]] = []
    sending: dict[str, trio.Event] = {}
    for obj in objects:
        cdist_type = obj.cdist_type
        if not cdist_type.explorers:
            continue
        event = ctx.transferred_types.get(cdist_type.name)
        if event is None:
            sending[cdist_type.name] = ctx.transferred_types[cdist_type.name] = trio.Event()
            ctx.log.log(15, "Running type explorers for <CdistType %s>", cdist_type.name)
            files.extend(
                (cdist_type.explorer_dir / n, f"conf/type/{cdist_type.name}/explorer/{n}", 0o700)
                for n in cdist_type.explorers
            )
        elif not event.is_set() and cdist_type.name not in sending:
            if wait_for is None:
                continue
            if event not in wait_for:
                wait_for.append(event)
        chosen.append(obj)
    if not chosen:
        return None
    steps: list[Step] = []
    for obj in chosen:
        parameters = obj.file("parameter")
        files.extend(
            (f"{parameters}/{name}", f"object/{obj.relative_path}/parameter/{name}", 0o600)
            for name in _entries(parameters)
        )
        env = stage_env.type_explorer_env(ctx, obj)
        cdist_type = obj.cdist_type
        remote_dir = ctx.remote_type_explorer_dir(cdist_type.name)
        steps.extend(
            Step(
                explorer_key(obj, n),
                _type_explorer_command(ctx, obj, n),
                env,
                _sourced(ctx, cdist_type.explorer_dir / n, f"{remote_dir}/{n}"),
            )
            for n in cdist_type.explorers
        )
    return ExplorerSteps(chosen, files, steps, sending, ctx.transferred_types)


def store_type_explorer_results(
    ctx: HostContext, objects: Sequence[CdistObject], results: Mapping[str, StepResult]
) -> None:
    """Write what the explorers of ``objects`` printed, as cdist would; the first
    failing explorer is the object's error."""
    objects = [o for o in objects if o.cdist_type.explorers]
    for obj in objects:
        for name in obj.cdist_type.explorers:
            _explorer_stderr(ctx, results[explorer_key(obj, name)].stderr)
    for obj in objects:
        obj.explorer_path.mkdir(parents=True, exist_ok=True)
        for name in obj.cdist_type.explorers:
            step_result = results[explorer_key(obj, name)]
            if step_result.returncode != 0:
                raise _type_explorer_error(ctx, obj, name, step_result.returncode)
            _store_explorer_output(obj, name, step_result.stdout)


async def run_type_explorers_batch(ctx: HostContext, objects: Sequence[CdistObject]) -> None:
    """Type explorers of every object ready at the same time, in one session: the
    explorers of types not sent yet, every object's parameters, then every run."""
    waits: list[trio.Event] = []
    parts = type_explorer_steps(ctx, objects, wait_for=waits)
    if parts is None:
        return
    sent = False
    try:
        for event in waits:
            await event.wait()
        result = await run_batch(
            ctx.remote,
            ctx.remote_base,
            parts.files,
            parts.steps,
            stop_on_failure=False,
            log=ctx.log,
        )
        sent = True
    finally:
        parts.finish(sent=sent)
    store_type_explorer_results(ctx, parts.objects, result.results)


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
    obj.explorer_path.mkdir(parents=True, exist_ok=True)
    for name in cdist_type.explorers:
        script = _type_explorer_command(ctx, obj, name)
        try:
            result = await ctx.remote.run(script, env=env, check=True)
        except CommandError as exc:
            _explorer_stderr(ctx, exc.stderr)
            raise _type_explorer_error(ctx, obj, name, exc.exit_status) from exc
        _explorer_stderr(ctx, result.stderr)
        _store_explorer_output(obj, name, result.stdout)


def _entries(directory: str) -> list[str]:
    """The names in ``directory``, sorted; none when it does not exist."""
    try:
        return sorted(entry.name for entry in os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
