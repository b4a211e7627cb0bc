"""The initial manifest and type manifests: local scripts that define objects (spec §5.6, §5.8)."""

from __future__ import annotations

import os
from pathlib import Path

from . import env as stage_env
from .context import HostContext
from .emulator_shell import manifest_command, open_shell_channel, shell_argv
from .errors import ErrorReport, InitialManifestError, ObjectError, Stream
from .messages import message_files
from .model.objects import CdistObject
from .process import run_script, run_shell, script_argv


def _streams(ctx: HostContext, paths: list[tuple[str, Path]]) -> list[Stream]:
    return [
        Stream(label, path.read_text(errors="replace")) for label, path in paths if path.is_file()
    ]


def resolve_initial_manifest(ctx: HostContext) -> Path:
    """The initial manifest's path, or InitialManifestError naming what is missing."""
    given = ctx.settings.initial_manifest
    path = given if given is not None else ctx.workdir.conf / "manifest" / "init"
    if not path.is_file():
        message = "Initial manifest missing"
        if given is not None:
            message += f": {given}"
            if given.is_symlink():
                message += f" -> {os.path.realpath(given)}"
        raise InitialManifestError(
            repr(message), ErrorReport("initial manifest", {"path": str(path)})
        )
    return path


async def _run_manifest(
    ctx: HostContext, path: Path, env: dict[str, str], stdout: Path, stderr: Path
) -> int:
    """Run a manifest; a POSIX shell one gets its type calls served in-shell."""
    executable = os.access(path, os.X_OK)
    base = None
    if ctx.emulator_socket is not None:
        base = shell_argv(path, local_shell=ctx.settings.local_shell, executable=executable)
    if base is None:
        status, _ = await run_script(ctx, script_argv(ctx, path), env, stdout=stdout, stderr=stderr)
        return status
    ctx.log.debug("running %s with %s, type calls served in-shell", path, " ".join(base))
    dollar0 = os.path.realpath(path) if executable else str(path)
    types = [entry.name for entry in os.scandir(ctx.workdir.bin)]
    async with open_shell_channel(ctx.types) as channel:
        argv = manifest_command(base, channel, ctx.workdir.bin, types, env, dollar0)
        shown = f"{' '.join(base)} {path} (type calls served in-shell)"
        return await run_shell(ctx, argv, env, stdout=stdout, stderr=stderr, display=shown)


async def run_initial_manifest(ctx: HostContext) -> None:
    path = resolve_initial_manifest(ctx)
    ctx.log.log(15, "Running initial manifest %s", path)
    out, err = ctx.workdir.stream("stdout", "init"), ctx.workdir.stream("stderr", "init")
    env = stage_env.initial_manifest_env(ctx, path)
    with message_files(ctx.workdir.messages, "initialmanifest") as message_env:
        env.update(message_env)
        status = await _run_manifest(ctx, path, env, out, err)
    if status != 0:
        report = ErrorReport(
            "initial manifest",
            {"path": str(path)},
            _streams(ctx, [("init:stdout", out), ("init:stderr", err)]),
        )
        raise InitialManifestError(f"{path}: initial manifest exited with status {status}", report)


def object_error(obj: CdistObject, message: str) -> ObjectError:
    """cdist's object error block with every captured stream of the object."""
    streams: list[Stream] = []
    for kind in ("stdout", "stderr"):
        directory = obj.path / kind
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                streams.append(Stream(f"{path.name}:{kind}", path.read_text(errors="replace")))
    report = ErrorReport(
        f"object '{obj.name}'",
        {
            "name": obj.name,
            "path": str(obj.path),
            "source": " ".join(obj.source),
            "type": str(obj.cdist_type.real_path),
        },
        streams,
    )
    return ObjectError(message, report)


async def run_type_manifest(ctx: HostContext, obj: CdistObject) -> None:
    manifest = obj.cdist_type.manifest
    if manifest is None:
        return
    ctx.log.log(15, "Running type manifest %s for object %s", manifest, obj.name)
    env = stage_env.type_manifest_env(ctx, obj, manifest)
    with message_files(ctx.workdir.messages, obj.name) as message_env:
        env.update(message_env)
        status = await _run_manifest(
            ctx, manifest, env, obj.stdout_path / "manifest", obj.stderr_path / "manifest"
        )
    if status != 0:
        raise object_error(obj, f"{manifest}: type manifest exited with status {status}")
