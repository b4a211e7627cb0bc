"""The `Remote` interface every transport keeps (DESIGN.md §3), and its small records.

A Remote runs shell command strings on one target host and copies files there.
Implementations map their foreign errors to the `CdistError` tree at this edge.
"""

from __future__ import annotations

import abc
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ..errors import CommandError


@dataclass(frozen=True)
class Completed:
    """The result of one remote command, shaped like `subprocess.CompletedProcess`."""

    command: str
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class RemoteStatistics:
    """Counters of one host's transport, for the report and for tests."""

    connections_opened: int = 0
    sessions_opened: int = 0
    sessions_refused: int = 0
    handshakes_retried: int = 0
    bytes_sent: int = 0


def export_prefix(env: Mapping[str, str] | None) -> str:
    """Render ``env`` as ``export K='V'; ...`` for a POSIX shell, every value quoted.

    cdist leaves values unquoted (spec §9.3); quoting is compatible with every
    well-formed value and safe against the rest.
    """
    if not env:
        return ""
    parts = []
    for key, value in env.items():
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ValueError(f"not a valid environment variable name: {key!r}")
        parts.append(f"export {key}={shlex.quote(value)};")
    return " ".join(parts) + " "


def checked(result: Completed, check: bool) -> Completed:
    """``result``, or `CommandError` when ``check`` is set and it exited non-zero."""
    if check and result.returncode != 0:
        raise CommandError(
            f"{result.command}: exit status {result.returncode}",
            command=result.command,
            exit_status=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result


class Remote(trio.abc.AsyncResource):
    """One target host, as the engine sees it.

    `run` executes ``command`` with the target's ``/bin/sh``; ``env`` values are exported
    shell-quoted before it.  With ``check`` a non-zero exit raises `CommandError`.
    `put` copies local files (symlinks followed) into the directory ``destination`` on
    the target, or to the file ``destination`` when a single source is given and
    ``destination`` does not end with ``/``.  Both are checkpoints; cancelling them
    stops the work on the target too.
    """

    host: str

    @abc.abstractmethod
    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed: ...

    @abc.abstractmethod
    async def put(self, sources: Sequence[Path], destination: str) -> None: ...

    def statistics(self) -> RemoteStatistics:
        return RemoteStatistics()

    @abc.abstractmethod
    def exported_commands(self) -> tuple[str, str]:
        """The ``__remote_exec`` / ``__remote_copy`` strings types may call (spec §5.1)."""

    async def aclose(self) -> None:
        return None
