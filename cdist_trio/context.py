"""The small frozen context one host run passes to its stages (no ambient globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .model.cdist_type import TypeRegistry
from .model.objects import ObjectStore
from .settings import Settings
from .shellpool import ShellPool
from .transport import local_process_limit
from .transport.base import Remote
from .workdir import WorkDir


@dataclass(frozen=True)
class Target:
    """Who we configure: the host string and what cdist derives from it (spec §5.1)."""

    host: str
    hostname: str
    fqdn: str
    tags: str = ""


@dataclass(frozen=True, eq=False)
class HostContext:
    """Everything the stages of one host run share; built once by the host scope."""

    target: Target
    settings: Settings
    workdir: WorkDir
    remote: Remote
    types: TypeRegistry
    store: ObjectStore
    log: logging.LoggerAdapter[logging.Logger]
    job_limiter: trio.CapacityLimiter
    remote_base: str
    log_level: int
    log_level_name: str
    emulator_socket: str | None = None
    """Where the engine serves this host's type calls (the emulator's fast path)."""
    remote_commands: tuple[str, str] | None = None
    """``__remote_exec``/``__remote_copy`` for types, when not the transport's own."""
    local_limiter: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(local_process_limit())
    )
    """Run-wide bound on local scripts at once (`TransportResources.local_processes`)."""
    local_shells: ShellPool | None = None
    """Run-wide shells that source local ``/bin/sh`` scripts (`process.run_local_script`)."""
    pooled: dict[tuple[str, bool], bool | None] = field(default_factory=dict)
    """Per local script: None if it needs its own process, else whether a pooled shell
    sources it with ``set -e`` (`process.run_local_script`)."""
    type_locks: dict[str, trio.Lock] = field(default_factory=dict)
    env_cache: dict[str, dict[str, str]] = field(default_factory=dict)
    """Stage environments' fixed parts, built once per host (`env`)."""
    argv_cache: dict[tuple[str, bool], list[str]] = field(default_factory=dict)
    """How each local script is started, decided once per host (`process.script_argv`)."""
    transferred_types: dict[str, trio.Event] = field(default_factory=dict)
    sourceable: dict[str, bool] = field(default_factory=dict)
    """Per local explorer path: whether batches source it (`batch.may_source`)."""

    @property
    def batching(self) -> bool:
        """Many remote steps per session, except for cdist's custom exec/copy commands,
        which keep one call per step."""
        return self.settings.transport != "command"

    @property
    def remote_explorer_dir(self) -> str:
        return f"{self.remote_base}/conf/explorer"

    def remote_type_explorer_dir(self, type_name: str) -> str:
        return f"{self.remote_base}/conf/type/{type_name}/explorer"

    def remote_object_dir(self, relative_path: str) -> str:
        return f"{self.remote_base}/object/{relative_path}"

    def type_lock(self, type_name: str) -> trio.Lock:
        return self.type_locks.setdefault(type_name, trio.Lock())

    @property
    def streams_dir(self) -> Path:
        return self.workdir.path
