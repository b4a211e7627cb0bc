"""Local ``/bin/sh`` scripts run by long-lived shells instead of one process each.

Every object runs one or two gencode scripts, and nearly all of them are
``#!/bin/sh -e`` scripts.  Starting each from the engine costs a fork and exec from a
large Python process, a worker-thread hop in Trio and a fresh dash with its dynamic
linking: about 1 ms of CPU per script on this machine, against 0.2 ms when a shell that
is already running forks a subshell and sources the script there.

A `ShellPool` keeps idle shells (dash only: its start-up rules are what the export list
below reproduces).  One call writes one command to an idle shell::

    ( export NAME='value' ...; set -e; . '/path/script' ) </dev/null >>OUT 2>>ERR
    printf '\\n%s %s\\n' <marker> "$?"

and reads the shell's stdout up to the marker line, 128 random bits per shell.  What
the script can observe is what an exec'd ``/bin/sh -e script`` sees, as long as it does
not look at ``$0``, ``$$``, ``$-`` and the like (`batch.may_source`, the same rule as
for sourced remote steps): its environment (dash exports ``IFS``, ``OPTIND``, ``PPID``
and ``PWD`` with its own values when they are in the environment, and drops names that
are not identifiers, so a call does the same), the umask, no arguments, stdin from
``/dev/null``, its exit status.  A subshell never changes the shell it runs in, so no
call leaks into the next.

Cancellation kills the shell's whole process group (the script and what it started)
and the shell is not reused.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import trio

from .batch import BATCH_SHELL, may_source

#: Names dash exports with its own value when they are in its environment.
_SHELL_OWNED = frozenset({"IFS", "OPTIND", "PPID", "PWD"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Where stdout of a call goes: captured (returned), appended to a file, or dropped.
CAPTURE = "capture"
DEVNULL = "devnull"


def pool_shell_available() -> bool:
    """Whether ``/bin/sh`` is dash, the shell whose start-up this module reproduces."""
    return os.path.basename(os.path.realpath(BATCH_SHELL)) == "dash"


def is_pool_shell(program: str) -> bool:
    """Whether ``program`` is the pooled shells' own shell (``/bin/sh``, dash)."""
    return os.path.realpath(program) == os.path.realpath(BATCH_SHELL)


def sourced_errexit(script: Path, *, local_shell: str, executable: bool) -> bool | None:
    """None if ``script`` needs a process of its own: something other than ``/bin/sh``
    (``-e`` or no flag) would run it, or it could tell being sourced in a subshell.
    Otherwise whether it runs with ``set -e``."""
    try:
        text = script.read_text(errors="replace")
    except OSError:
        return None
    if executable:
        first, newline, _ = text.partition("\n")
        if not newline or first.rstrip() not in ("#!/bin/sh -e", "#!/bin/sh"):
            return None
        errexit = first.rstrip() == "#!/bin/sh -e"
    elif local_shell.split() == [BATCH_SHELL]:
        errexit = True  # run as `<local_shell> -e script`
    else:
        return None
    return errexit if may_source(BATCH_SHELL, text) else None


def call_text(
    script: Path | Sequence[str],
    env: Mapping[str, str],
    *,
    errexit: bool,
    stdout: str | Path,
    stderr: Path | str | None,
    marker: str,
) -> str:
    """The command one call writes to its shell (see the module docstring): ``script``
    sourced, or, given as an argument vector, exec'd."""
    exports = [word for word in map(_export_word, env.items()) if word]
    parts = []
    if exports:
        parts.append("export " + " ".join(exports))
    if errexit:
        parts.append("set -e")
    if isinstance(script, Path):
        parts.append(f". {shlex.quote(str(script))}")
    else:
        parts.append("exec " + " ".join(map(shlex.quote, script)))
    redirects = ["</dev/null"]
    if stdout == DEVNULL:
        redirects.append(">/dev/null")
    elif stdout != CAPTURE:
        redirects.append(f">>{shlex.quote(str(stdout))}")
    if stderr == DEVNULL:
        redirects.append("2>/dev/null")
    elif stderr is not None:
        redirects.append(f"2>>{shlex.quote(str(stderr))}")
    return f"( {'; '.join(parts)} ) {' '.join(redirects)}\nprintf '\\n%s %s\\n' {marker} \"$?\"\n"


@functools.lru_cache(maxsize=8192)
def _export_word(item: tuple[str, str]) -> str:
    """``NAME='value'`` for ``export`` (most pairs repeat in every call of a run)."""
    name, value = item
    if name in _SHELL_OWNED:
        return name
    return f"{name}={shlex.quote(value)}" if _NAME.fullmatch(name) else ""


class _Shell:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.marker = secrets.token_hex(16)
        self._buffer = bytearray()

    async def call(self, text: str) -> tuple[int, bytes]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        await self.process.stdin.send_all(text.encode())
        tag = f"\n{self.marker} ".encode()
        buffer = self._buffer
        searched = 0
        while True:
            index = buffer.find(tag, searched)
            if index >= 0:
                end = buffer.find(b"\n", index + len(tag))
                if end >= 0:
                    break
            else:
                searched = max(0, len(buffer) - len(tag))
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise ShellGone(f"the local shell (pid {self.process.pid}) exited mid-call")
            buffer += chunk
        output = bytes(buffer[:index])
        status = int(buffer[index + len(tag) : end])
        del buffer[: end + 1]
        return status, output

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class ShellGone(Exception):
    """A pooled shell ended before it reported a call's status."""


class ShellPool:
    """Idle local shells, shared by every host of a run.

    The caller bounds how many calls run at once (`HostContext.local_limiter`); the pool
    starts a shell whenever none is idle, so it never holds more shells than that bound.
    """

    def __init__(self, *, umask: int, base_env: Mapping[str, str] | None = None) -> None:
        """``umask``: every local script's (`process.LOCAL_UMASK`)."""
        self._umask = umask
        environ = os.environ if base_env is None else base_env
        # dash keeps an inherited PWD that names the working directory (a path through
        # a symlink): the same one an exec'd script would inherit.
        self._env = {"PWD": environ["PWD"]} if "PWD" in environ else {}
        self._idle: list[_Shell] = []
        self._all: set[_Shell] = set()
        self._closed = False

    async def run(
        self,
        script: Path | Sequence[str],
        env: Mapping[str, str],
        *,
        errexit: bool,
        stdout: str | Path = CAPTURE,
        stderr: Path | str | None = None,
    ) -> tuple[int, bytes]:
        """Source ``script`` in a subshell of an idle shell; its exit status and, with
        ``stdout=CAPTURE``, its stdout.  ``stderr``: a file to append to, `DEVNULL`, or
        None for the engine's own stderr.  Cancelling kills the script's process group.

        ``script`` given as an argument vector is exec'd by the subshell instead, with
        ``env`` as dash passes it on (names that are not identifiers dropped): a program
        started without the engine itself forking.
        """
        if self._closed:
            raise trio.ClosedResourceError("the shell pool is closed")
        shell = self._idle.pop() if self._idle else await self._start()
        text = call_text(
            script, env, errexit=errexit, stdout=stdout, stderr=stderr, marker=shell.marker
        )
        reusable = False
        try:
            result = await shell.call(text)
            reusable = True
            return result
        except ShellGone:  # reported like a script killed by a signal
            return 255, b""
        finally:
            if reusable and not self._closed:
                self._idle.append(shell)
            else:
                self._all.discard(shell)
                shell.kill()
                with trio.CancelScope(shield=True):
                    await shell.process.wait()

    async def prestart(self, count: int) -> None:
        """Have ``count`` shells ready.  Called as a run begins, while its hosts connect:
        the engine spawns while it is idle, and few hosts wait for a shell later.

        Only a head start: a shell that cannot be started (too many open files) ends
        it, and the call that needs a shell then fails its host with the reason."""
        while len(self._all) < count and not self._closed:
            try:
                shell = await self._start()
            except OSError:
                return
            self._idle.append(shell)

    async def _start(self) -> _Shell:
        process = await trio.lowlevel.open_process(
            [BATCH_SHELL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._env,
            start_new_session=True,
            umask=self._umask,
        )
        shell = _Shell(process)
        self._all.add(shell)
        return shell

    async def aclose(self) -> None:
        """End every shell (idle ones read EOF; busy ones, if any, are killed)."""
        self._closed = True
        shells, self._all, self._idle = list(self._all), set(), []
        with trio.CancelScope(shield=True):
            for shell in shells:
                if shell.process.stdin is not None:
                    await shell.process.stdin.aclose()
            with trio.move_on_after(2):
                for shell in shells:
                    await shell.process.wait()
            for shell in shells:
                if shell.process.returncode is None:
                    shell.kill()
                    await shell.process.wait()
