"""Transports: how the engine reaches a target host (DESIGN.md §3).

`TransportResources` holds what a whole run shares (the handshake limiter, the asyncio
thread of the asyncssh transport); `open_remote` picks the implementation for one host
and owns its lifetime.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from ..log import TRACE
from .base import Completed, Remote, RemoteStatistics, export_prefix
from .command import CommandRemote
from .local import LocalRemote
from .pool import SessionPool
from .sshconfig import ConfigCuts
from .traced import TracedRemote

# Each SSH transport's modules are imported by its first host: a run needs one of them
# (openssh and the mux client ~8 ms, asyncio for asyncssh's thread ~6 ms).
if TYPE_CHECKING:
    from ..shellpool import ShellPool
    from .aioloop import AsyncioThread
    from .handshake_files import HandshakeFiles

DEFAULT_CONNECT_LIMIT = 10


def local_process_limit() -> int:
    """How many local scripts (manifests, gencode, code-local) run at once in one run:
    enough to keep every core busy while some wait, few enough that 20 hosts at
    ``-j 4`` do not start 80 shells on 2 cores."""
    return max(8, 4 * (os.cpu_count() or 1))


class TransportResources:
    """Run-wide state: ``connect_limiter``, ``local_processes`` and, on demand, the
    asyncio thread, and what the asyncssh transport reads once for every host: the
    ssh_config (`ssh_config_cuts`), the keys and known_hosts (`handshake_files`)."""

    def __init__(
        self,
        connect_limit: int = DEFAULT_CONNECT_LIMIT,
        *,
        local_shells: ShellPool | None = None,
    ) -> None:
        self.connect_limiter = trio.CapacityLimiter(connect_limit)
        self.local_processes = trio.CapacityLimiter(local_process_limit())
        self.local_shells = local_shells
        """Shells that source local scripts (`shellpool`), owned by the run."""
        self._aio: AsyncioThread | None = None
        self.handshake_files: HandshakeFiles | None = None
        """The asyncssh transport's `HandshakeFiles`, made by its first host (the module
        imports asyncssh, so not before)."""
        self._cuts: dict[Path, ConfigCuts] = {}
        self._cuts_lock = trio.Lock()
        self._cuts_directory: Path | None = None

    async def ssh_config_cuts(self, path: Path) -> ConfigCuts:
        """``path`` read once for the whole run (in a thread: a big file takes a while),
        its per-host copies in a temporary directory that `close` removes."""
        async with self._cuts_lock:
            cuts = self._cuts.get(path)
            if cuts is None:
                if self._cuts_directory is None:
                    self._cuts_directory = Path(tempfile.mkdtemp(prefix="cdist-trio-ssh_config."))
                directory = Path(tempfile.mkdtemp(dir=self._cuts_directory))  # one per file
                cuts = await trio.to_thread.run_sync(ConfigCuts, path, directory)
                self._cuts[path] = cuts
            return cuts

    def asyncio_thread(self) -> AsyncioThread:
        if self._aio is None:
            from .aioloop import AsyncioThread

            self._aio = AsyncioThread()
        return self._aio

    def close(self) -> None:
        if self._aio is not None:
            self._aio.close()
            self._aio = None
        if self._cuts_directory is not None:
            shutil.rmtree(self._cuts_directory, ignore_errors=True)
            self._cuts_directory = None
            self._cuts.clear()


@asynccontextmanager
async def open_remote(
    host: str,
    *,
    transport: str,
    resources: TransportResources,
    remote_exec: str | None = None,
    remote_copy: str | None = None,
    ssh_config: Path | None = None,
    address_family: int | None = None,
    max_sessions: int = 10,
    max_connections: int = 2,
    extra_env: Mapping[str, str] | None = None,
    log: logging.LoggerAdapter[logging.Logger] | None = None,
) -> AsyncIterator[Remote]:
    """Open the transport named ``transport`` to ``host``; close it on exit.  With
    ``log`` enabled for TRACE, every command and copy is logged (`TracedRemote`)."""
    if transport == "local":
        yield _traced(LocalRemote(host), log)
    elif transport == "command":
        from .openssh import base_options

        words = " ".join(base_options(ssh_config, address_family))
        yield _traced(
            CommandRemote(
                host,
                remote_exec or f"ssh {words}",
                remote_copy or f"scp -q {words}",
                extra_env=extra_env or {},
            ),
            log,
        )
    elif transport == "openssh":
        from .openssh import open_openssh_remote

        async with open_openssh_remote(
            host,
            connect_limiter=resources.connect_limiter,
            pool=SessionPool(max_sessions, max_connections),
            ssh_config=ssh_config,
            address_family=address_family,
            log=log,
        ) as remote:
            yield _traced(remote, log)
    elif transport == "asyncssh":
        from .asyncssh import open_asyncssh_remote, ssh_destination
        from .handshake_files import HandshakeFiles

        if resources.handshake_files is None:
            resources.handshake_files = HandshakeFiles()
        config = ssh_config if ssh_config is not None else _default_ssh_config()
        cuts = await resources.ssh_config_cuts(config) if config is not None else None
        async with open_asyncssh_remote(
            host,
            aio=resources.asyncio_thread(),
            connect_limiter=resources.connect_limiter,
            pool=SessionPool(max_sessions, max_connections),
            ssh_config=ssh_config,
            config_for_host=cuts.path_for(ssh_destination(host)) if cuts is not None else None,
            files=resources.handshake_files,
            address_family=address_family,
            log=log,
        ) as remote:
            yield _traced(remote, log)
    else:
        raise ValueError(f"unknown transport {transport!r}")


def _traced(remote: Remote, log: logging.LoggerAdapter[logging.Logger] | None) -> Remote:
    return TracedRemote(remote, log) if log is not None and log.isEnabledFor(TRACE) else remote


def _default_ssh_config() -> Path | None:
    """The file asyncssh reads when given none: ``~/.ssh/config``, if readable."""
    path = Path("~", ".ssh", "config").expanduser()
    return path if os.access(path, os.R_OK) else None


__all__ = [
    "Completed",
    "Remote",
    "RemoteStatistics",
    "TransportResources",
    "export_prefix",
    "open_remote",
]
