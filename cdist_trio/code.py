"""gencode-local/-remote and the execution of code-local and code-remote (spec §5.9)."""

from __future__ import annotations

import shlex
import sys

from . import env as stage_env
from .context import HostContext
from .errors import CommandError
from .manifest import object_error
from .messages import message_files
from .model.objects import CdistObject
from .process import run_script, script_argv


async def generate_code(ctx: HostContext, obj: CdistObject) -> bool:
    """Run both gencode scripts (local first, also in a dry run); True if any code."""
    for kind, script in (
        ("local", obj.cdist_type.gencode_local),
        ("remote", obj.cdist_type.gencode_remote),
    ):
        code = ""
        if script is not None:
            ctx.log.debug("Generating code for %s", obj.name)
            env = stage_env.gencode_env(ctx, obj)
            with message_files(ctx.workdir.messages, obj.name) as message_env:
                env.update(message_env)
                status, output = await run_script(
                    ctx,
                    script_argv(ctx, script),
                    env,
                    stdout=None,
                    stderr=obj.stderr_path / f"gencode-{kind}",
                    capture_stdout=True,
                )
            if status != 0:
                raise object_error(obj, f"{script}: gencode-{kind} exited with status {status}")
            code = output.decode(errors="replace")
        obj.write_code(f"code-{kind}", code)
    return bool(obj.code_local or obj.code_remote)


async def run_code(ctx: HostContext, obj: CdistObject) -> None:
    """code-local, then code-remote; never in a dry run."""
    if obj.code_local:
        path = obj.path / "code-local"
        status, _ = await run_script(
            ctx,
            script_argv(ctx, path, allow_direct=False),
            stage_env.code_local_env(ctx, obj),
            stdout=obj.stdout_path / "code-local",
            stderr=obj.stderr_path / "code-local",
        )
        if status != 0:
            raise object_error(obj, f"{path}: code-local exited with status {status}")
    if obj.code_remote:
        remote_dir = ctx.remote_object_dir(obj.relative_path)
        await ctx.remote.run(f"mkdir -p {shlex.quote(remote_dir)}")
        await ctx.remote.put([obj.path / "code-remote"], remote_dir + "/code-remote")
        command = f"{ctx.settings.remote_shell} -e {shlex.quote(remote_dir)}/code-remote"
        try:
            result = await ctx.remote.run(
                command, env=stage_env.code_remote_env(ctx, obj), check=True
            )
        except CommandError as exc:
            _save(ctx, obj, exc.stdout, exc.stderr)
            raise object_error(
                obj, f"{command}: code-remote exited with status {exc.exit_status}"
            ) from exc
        _save(ctx, obj, result.stdout, result.stderr)


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
