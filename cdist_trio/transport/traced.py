"""``-vvvv`` (TRACE): one log record per remote command and copy, around any `Remote`.

What it logs is what ran and how it ended: the command line as the target's shell gets
it (with the names, not the values, of the variables exported before it), its exit
status, how many bytes it printed on each stream, and how long it took.  Not what it
printed: explorer output and code output may hold whatever a type handles (cdist-spec
§12.1 has TRACE log the output too; ``docs/output.md`` promises no parameter values or
file contents in the log at any verbosity, and that promise wins).  The objects'
capture files (``$__object/.cdist*/``) keep each step's output.

`open_remote` wraps a transport in `TracedRemote` only when its logger is enabled for
TRACE, so a run at a lower verbosity pays nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import trio

from ..errors import CommandError
from ..log import TRACE
from .base import Completed, Remote, RemoteStatistics, checked


class TracedRemote(Remote):
    """``inner``, with a TRACE record for each `run` and `put`."""

    def __init__(self, inner: Remote, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self.host = inner.host
        self._inner = inner
        self._log = log

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed:
        started = trio.current_time()
        names = f" (exported: {' '.join(env)})" if env else ""
        given = f", {len(stdin)} bytes on stdin" if stdin else ""
        try:
            result = await self._inner.run(command, stdin=stdin, env=env, check=False)
        except BaseException as exc:
            self._log.log(
                TRACE,
                "remote command%s%s: %s\n-> %s after %s",
                names,
                given,
                command,
                _describe(exc),
                _took(started),
            )
            raise
        self._log.log(
            TRACE,
            "remote command%s%s: %s\n-> exit status %d, %d bytes on stdout, %d on stderr, %s",
            names,
            given,
            command,
            result.returncode,
            len(result.stdout),
            len(result.stderr),
            _took(started),
        )
        return checked(result, check)

    async def put(self, sources: Sequence[Path], destination: str) -> None:
        started = trio.current_time()
        listed = " ".join(str(s) for s in sources)
        try:
            await self._inner.put(sources, destination)
        except BaseException as exc:
            self._log.log(
                TRACE,
                "remote copy %s -> %s: %s after %s",
                listed,
                destination,
                _describe(exc),
                _took(started),
            )
            raise
        self._log.log(TRACE, "remote copy %s -> %s: done, %s", listed, destination, _took(started))

    def statistics(self) -> RemoteStatistics:
        return self._inner.statistics()

    def exported_commands(self) -> tuple[str, str]:
        return self._inner.exported_commands()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _took(started: float) -> str:
    return f"{(trio.current_time() - started) * 1000:.1f} ms"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.Cancelled):
        return "cancelled"
    if isinstance(exc, CommandError):
        return f"failed (exit status {exc.exit_status})"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"failed: {type(exc).__name__}" + (f": {first}" if first else "")
