"""The `local` transport: "remote" commands run on this machine, for tests and demos.

Commands run under ``/bin/sh -c``; `put` copies with symlinks followed.  Targets are
confined by the caller (temp remote dirs, object ids under temp paths).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from ..errors import CommandError
from ._process import run_argv
from .base import Completed, Remote, RemoteStatistics, checked, export_prefix


def script_path(name: str) -> Path:
    """Path of one of our helper scripts (``local-exec``, ``local-copy``)."""
    return Path(str(resources.files("cdist_trio.transport") / "scripts" / name))


class LocalRemote(Remote):
    """A target that is this machine."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._sessions = 0
        self._bytes = 0

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed:
        self._sessions += 1
        full = export_prefix(env) + command
        result = await run_argv(["/bin/sh", "-c", full], stdin=stdin, display=command)
        return checked(result, check)

    async def put(self, sources: Sequence[Path], destination: str) -> None:
        if not sources:
            return
        self._sessions += 1
        self._bytes += sum(p.stat().st_size for p in sources if p.is_file())
        argv = ["cp", "-L", "--", *(str(s) for s in sources), destination]
        result = await run_argv(argv)
        if result.returncode != 0:
            raise CommandError(
                f"{' '.join(map(shlex.quote, argv))}: "
                f"{result.stderr.decode(errors='replace').strip()}",
                command=" ".join(argv),
                exit_status=result.returncode,
                stderr=result.stderr,
            )

    def statistics(self) -> RemoteStatistics:
        return RemoteStatistics(sessions_opened=self._sessions, bytes_sent=self._bytes)

    def exported_commands(self) -> tuple[str, str]:
        return str(script_path("local-exec")), str(script_path("local-copy"))
