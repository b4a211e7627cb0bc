"""gencode-local/-remote and the execution of code-local and code-remote (spec §5.9)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import trio

from . import env as stage_env
from .batch import Step, StepResult, may_source, run_batch
from .context import HostContext
from .errors import CommandError
from .explorer import ExplorerSteps
from .gencode_twins import twin_for
from .manifest import object_error
from .messages import add_messages, message_files
from .model.objects import CdistObject
from .process import ran_in_engine, run_local_script


async def generate_code(ctx: HostContext, obj: CdistObject) -> bool:
    """Run both gencode scripts (local first, also in a dry run); True if any code."""
    generated = False
    for kind, script in (
        ("local", obj.cdist_type.gencode_local),
        ("remote", obj.cdist_type.gencode_remote),
    ):
        code = ""
        if script is not None:
            ctx.log.debug("Generating code for %s", obj.name)
            env = stage_env.gencode_env(ctx, obj)
            stderr = obj.stderr_path / f"gencode-{kind}"
            twin = twin_for(script)
            started = trio.current_time()
            done = None if twin is None else twin(env)
            if done is not None:  # no message files: the twin hands its messages back
                status, (output, messages) = 0, done
                add_messages(ctx.workdir.messages, obj.name, messages)
                ran_in_engine(ctx, script, stderr, env, started)
            else:
                with message_files(ctx.workdir.messages, obj.name) as message_env:
                    env.update(message_env)
                    status, output = await run_local_script(
                        ctx, script, env, stdout=None, stderr=stderr, capture_stdout=True
                    )
            if status != 0:
                raise object_error(obj, f"{script}: gencode-{kind} exited with status {status}")
            code = output.decode(errors="replace")
        obj.write_code(f"code-{kind}", code)
        # as `obj.code_local` would read it back (universal newlines, trailing ones off)
        generated = generated or bool(code.replace("\r", "\n").rstrip("\n"))
    return generated


async def run_code(ctx: HostContext, obj: CdistObject) -> None:
    """code-local, then code-remote, one call per step; never in a dry run."""
    await run_code_local(ctx, obj)
    if not obj.code_remote:
        return
    remote_dir = ctx.remote_object_dir(obj.relative_path)
    await ctx.remote.run(f"mkdir -p {shlex.quote(remote_dir)}")
    await ctx.remote.put([obj.path / "code-remote"], remote_dir + "/code-remote")
    command = _code_remote_command(ctx, obj)
    try:
        result = await ctx.remote.run(command, env=stage_env.code_remote_env(ctx, obj))
    except CommandError as exc:
        _save(ctx, obj, exc.stdout, exc.stderr)
        raise object_error(
            obj, f"{command}: code-remote exited with status {exc.exit_status}"
        ) from exc
    _save(ctx, obj, result.stdout, result.stderr)


async def run_code_local(ctx: HostContext, obj: CdistObject) -> None:
    if not obj.code_local:
        return
    path = obj.path / "code-local"
    status, _ = await run_local_script(
        ctx,
        path,
        stage_env.code_local_env(ctx, obj),
        stdout=obj.stdout_path / "code-local",
        stderr=obj.stderr_path / "code-local",
        allow_direct=False,
    )
    if status != 0:
        raise object_error(obj, f"{path}: code-local exited with status {status}")


def _code_remote_command(ctx: HostContext, obj: CdistObject) -> str:
    remote_dir = ctx.remote_object_dir(obj.relative_path)
    return f"{ctx.settings.remote_shell} -e {shlex.quote(remote_dir)}/code-remote"


async def run_code_remote_batch(
    ctx: HostContext, objects: Sequence[CdistObject], then: ExplorerSteps | None = None
) -> Mapping[str, StepResult]:
    """code-remote of independent objects, in order, in one session; it stops at the
    first failure, which is reported for that object as with one call per object.

    ``then``: type explorers to run in the same session once every code-remote has
    succeeded (objects that wait for these); their results are returned.
    """
    codes = {o.name: o.code_remote for o in objects}
    objects = [o for o in objects if codes[o.name]]
    if not objects:
        if then is not None:
            then.finish(sent=False)
        return {}
    files: list[tuple[Path | str, str, int]] = [
        (o.file("code-remote"), f"object/{o.relative_path}/code-remote", 0o600) for o in objects
    ]
    shell = ctx.settings.remote_shell
    steps = [
        Step(
            o.name,
            _code_remote_command(ctx, o),
            stage_env.code_remote_env(ctx, o),
            f"{ctx.remote_object_dir(o.relative_path)}/code-remote"
            if may_source(shell, codes[o.name])
            else None,
            stop=True,
        )
        for o in objects
    ]
    if then is not None:
        files.extend(then.files)
        steps.extend(then.steps)
    sent = False
    try:
        result = await run_batch(
            ctx.remote, ctx.remote_base, files, steps, stop_on_failure=False, log=ctx.log
        )
        sent = True
    finally:
        if then is not None:
            then.finish(sent=sent)
    for obj in objects:
        step = result.results.get(obj.name)
        if step is None:
            break
        _save(ctx, obj, step.stdout, step.stderr)
        if step.returncode != 0:
            raise object_error(
                obj,
                f"{_code_remote_command(ctx, obj)}: code-remote exited with status "
                f"{step.returncode}",
            )
    if then is None:
        return {}
    return {s.key: result.results[s.key] for s in then.steps if s.key in result.results}


def _save(ctx: HostContext, obj: CdistObject, stdout: bytes, stderr: bytes) -> None:
    if ctx.settings.quiet:
        return
    if not ctx.settings.save_output_streams:
        # -S: cdist's remote-exec child inherits our streams; ours shows what it printed.
        for stream, data in ((sys.stdout, stdout), (sys.stderr, stderr)):
            if data:
                stream.flush()
                stream.buffer.write(data)
                stream.buffer.flush()
        return
    for kind, data in (("stdout", stdout), ("stderr", stderr)):
        path = obj.path / kind / "code-remote"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as sink:
            sink.write(data)
