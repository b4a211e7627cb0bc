"""The `command` transport: cdist's remote-exec / remote-copy calling convention (spec §9.1).

``<exec words> <host> <command>`` and ``<copy words> <src>... <host>:<dest>``, one process
per step, with the user's commands or cdist's default ``ssh``/``scp`` ones (spec §9.2).
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import CommandError, ConnectError
from ._process import run_argv
from .base import Completed, Remote, RemoteStatistics, export_prefix


def copy_target(host: str, destination: str) -> str:
    """``host:dest``, with an IPv6 literal wrapped in brackets as scp wants it."""
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{destination}"
    except ValueError:
        pass
    return f"{host}:{destination}"


def remote_word(command: str, env: Mapping[str, str] | None) -> str:
    """One argument word that runs ``command`` under the target's /bin/sh with ``env``.

    The remote login shell parses it, so the inner script is single-quoted as a whole;
    every value inside is quoted too (cdist does neither, spec §9.3).
    """
    return "/bin/sh -c " + shlex.quote(export_prefix(env) + command)


class CommandRemote(Remote):
    """A target reached through whitespace-split exec and copy command strings."""

    def __init__(
        self, host: str, remote_exec: str, remote_copy: str, *, extra_env: Mapping[str, str]
    ) -> None:
        self.host = host
        self._exec = remote_exec.split()
        self._copy = remote_copy.split()
        self._exec_string = remote_exec
        self._copy_string = remote_copy
        self._env = dict(extra_env)
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
        argv = [*self._exec, self.host, remote_word(command, env)]
        self._sessions += 1
        result = await run_argv(argv, stdin=stdin, env=self._env, display=command)
        if result.returncode == 255 and _looks_like_ssh_failure(result.stderr):
            raise ConnectError(_first_line(result.stderr) or f"{self._exec[0]} failed (255)")
        if check and result.returncode != 0:
            raise CommandError(
                f"{' '.join(argv)}: {argv!r}",
                command=command,
                exit_status=result.returncode,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        return result

    async def put(self, sources: Sequence[Path], destination: str) -> None:
        if not sources:
            return
        argv = [*self._copy, *(str(s) for s in sources), copy_target(self.host, destination)]
        self._sessions += 1
        self._bytes += sum(p.stat().st_size for p in sources if p.is_file())
        result = await run_argv(argv, env=self._env)
        if result.returncode != 0:
            if _looks_like_ssh_failure(result.stderr):
                raise ConnectError(_first_line(result.stderr))
            raise CommandError(
                f"{' '.join(argv)}: {argv!r}",
                command=" ".join(argv),
                exit_status=result.returncode,
                stderr=result.stderr,
            )

    def statistics(self) -> RemoteStatistics:
        return RemoteStatistics(sessions_opened=self._sessions, bytes_sent=self._bytes)

    def exported_commands(self) -> tuple[str, str]:
        return self._exec_string, self._copy_string


_SSH_FAILURES = (
    "kex_exchange_identification",
    "Connection refused",
    "Connection reset by peer",
    "Connection closed by",
    "Connection timed out",
    "Could not resolve hostname",
    "Permission denied (",
    "Host key verification failed",
    "No route to host",
)


def _looks_like_ssh_failure(stderr: bytes) -> bool:
    text = stderr.decode(errors="replace")
    return any(marker in text for marker in _SSH_FAILURES)


def _first_line(stderr: bytes) -> str:
    for line in stderr.decode(errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return ""
