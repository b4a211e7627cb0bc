"""The environment of every stage, one function per stage (the table of spec §10).

Local stages get our own environment plus these variables; remote stages get only the
variables returned here (the transport exports them shell-quoted).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from .context import HostContext
from .model.objects import CdistObject


def _target(ctx: HostContext) -> dict[str, str]:
    return {
        "__target_host": ctx.target.host,
        "__target_hostname": ctx.target.hostname,
        "__target_fqdn": ctx.target.fqdn,
    }


def _log(ctx: HostContext) -> dict[str, str]:
    env = {
        "__cdist_log_level": str(ctx.log_level),
        "__cdist_log_level_name": ctx.log_level_name,
    }
    return env


def _dry_run(ctx: HostContext) -> dict[str, str]:
    return {"__cdist_dry_run": "1"} if ctx.settings.dry_run else {}


def _local_base(ctx: HostContext) -> dict[str, str]:
    cached = ctx.env_cache.get("local")
    if cached is None:
        cached = ctx.env_cache["local"] = _build_local_base(ctx)
    return dict(cached)


def _build_local_base(ctx: HostContext) -> dict[str, str]:
    remote_exec, remote_copy = ctx.remote_commands or ctx.remote.exported_commands()
    # cdist-spec §12.1: DEBUG shows the remote exec/copy strings types are given
    ctx.log.debug("remote exec for types: %s", remote_exec)
    ctx.log.debug("remote copy for types: %s", remote_copy)
    env = dict(os.environ)
    env.update(
        {
            "__global": str(ctx.workdir.path),
            "__remote_exec": remote_exec,
            "__remote_copy": remote_copy,
        }
    )
    return env


def _manifest_common(ctx: HostContext, manifest: Path) -> dict[str, str]:
    env = _local_base(ctx)
    env["PATH"] = f"{ctx.workdir.bin}:{env.get('PATH', os.defpath)}"
    env.update(_target(ctx))
    env["__target_host_tags"] = ctx.target.tags
    env.update(
        {
            "__files": str(ctx.workdir.conf / "files"),
            "__manifest": str(ctx.workdir.conf / "manifest"),
            "__cdist_manifest": str(manifest),
            "__cdist_type_base_path": str(ctx.workdir.type_base),
            "__cdist_object_marker": ctx.workdir.marker,
            "__cdist_colored_log": "false",
        }
    )
    env.update(_log(ctx))
    env.update(_dry_run(ctx))
    # Inherited values must not leak into a fresh manifest's definitions.
    for name in ("__object", "__object_id", "__object_name", "__type", "require"):
        env.pop(name, None)
    if ctx.emulator_socket is not None:
        env["__cdist_trio_emulator"] = ctx.emulator_socket
    else:
        env.pop("__cdist_trio_emulator", None)
    return env


def initial_manifest_env(ctx: HostContext, manifest: Path) -> dict[str, str]:
    env = _manifest_common(ctx, manifest)
    env["__explorer"] = str(ctx.workdir.explorer_out)
    return env


def type_manifest_env(ctx: HostContext, obj: CdistObject, manifest: Path) -> dict[str, str]:
    env = _manifest_common(ctx, manifest)
    env.pop("__explorer", None)
    env.update(
        {
            "__object": str(obj.path),
            "__object_id": obj.object_id,
            "__object_name": obj.name,
            "__type": str(obj.cdist_type.path),
        }
    )
    return env


def global_explorer_env(ctx: HostContext) -> dict[str, str]:
    env = _target(ctx)
    env["__explorer"] = ctx.remote_explorer_dir
    env["__target_host_tags"] = ctx.target.tags
    env.update(_log(ctx))
    env.update(_dry_run(ctx))
    return env


def type_explorer_env(ctx: HostContext, obj: CdistObject) -> dict[str, str]:
    env = global_explorer_env(ctx)
    env.update(
        {
            "__object": ctx.remote_object_dir(obj.relative_path),
            "__object_id": obj.object_id,
            "__object_name": obj.name,
            "__object_fq": obj.relative_path,
            "__type_explorer": ctx.remote_type_explorer_dir(obj.cdist_type.name),
        }
    )
    return env


def _code_common(ctx: HostContext, obj: CdistObject) -> dict[str, str]:
    cached = ctx.env_cache.get("code")
    if cached is None:
        cached = ctx.env_cache["code"] = _build_code_base(ctx)
    env = dict(cached)
    env["__object"] = str(obj.path)
    env["__object_id"] = obj.object_id
    return env


def _build_code_base(ctx: HostContext) -> dict[str, str]:
    env = _local_base(ctx)
    for name in ("__object_name", "__type", "__messages_in", "__messages_out", "require"):
        env.pop(name, None)
    env.update(_target(ctx))
    env["__target_host_tags"] = ctx.target.tags
    env.update(
        {
            "__files": str(ctx.workdir.conf / "files"),
            "__cdist_object_marker": ctx.workdir.marker,
        }
    )
    env.update(_log(ctx))
    return env


#: gencode's size in bytes of ``$__object/stdin``, when the object has one (cdist-trio
#: only): what a type would otherwise run ``wc -c`` for, a process per object.
STDIN_SIZE = "__cdist_trio_stdin_size"


def gencode_env(ctx: HostContext, obj: CdistObject) -> dict[str, str]:
    env = _code_common(ctx, obj)
    env["__object_name"] = obj.name
    env["__type"] = str(obj.cdist_type.path)
    env.update(_dry_run(ctx))
    with contextlib.suppress(OSError):  # no stdin
        env[STDIN_SIZE] = str(os.stat(obj.file("stdin")).st_size)
    return env


def code_local_env(ctx: HostContext, obj: CdistObject) -> dict[str, str]:
    return _code_common(ctx, obj)


def code_remote_env(ctx: HostContext, obj: CdistObject) -> Mapping[str, str]:
    return {
        "__object": ctx.remote_object_dir(obj.relative_path),
        "__object_id": obj.object_id,
    }
