"""Type calls of ``/bin/sh`` manifests served without a process per call (the emulator's
fastest path).

A manifest that a POSIX shell runs anyway (``#!/bin/sh`` or not executable) is started
as ``sh [flags] -c '<prelude> . "$0"' <manifest>``.  The prelude defines one shell
function per type; a call then talks to the engine through three FIFOs with shell
builtins only (``read``, ``printf``, redirections):

* ``token``: a one-byte mutex.  A caller reads one byte to own the channel and writes it
  back when done, so background jobs and pipelines of one manifest never mix requests.
* ``req``: NUL-separated fields (argv and environment strings cannot hold NUL).
* ``resp``: one line per request.

The emulator itself runs here (`emulator.entry.main`), so files, messages and exit codes
are the emulator's own.  What a process would have seen is reproduced: the arguments,
the variables the emulator reads *as exported* (a plain ``require=x`` line does not reach
a process, so it does not reach us either), stdin (none on a terminal, empty from
``/dev/null``; a pipe, such as a here-document or the output of a pipeline's left side,
is read by the engine through ``/proc/<pid>/fd/9`` while the call waits; when a
pipeline's writer is not done yet, which may be a type call itself, the engine keeps
what it read and the caller copies the rest with one ``cat`` outside the channel, so a
pipeline of type calls cannot deadlock; anything else is copied by one ``cat`` before
the channel is taken), stdout, stderr and the exit status.  When
the channel is gone, or for a type whose name is not a shell identifier, the PATH
launcher is used.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from .emulator.environment import REQUIRED_VARIABLES
from .emulator_server import NoStdin, emulate_captured
from .model.cdist_type import TypeRegistry

#: Every variable the emulator reads; requests carry each as (set and exported, value).
EMULATOR_VARIABLES = (
    *REQUIRED_VARIABLES,
    "__object_name",
    "require",
    "CDIST_ORDER_DEPENDENCY",
    "CDIST_OVERRIDE",
    "__cdist_log_level",
    "__cdist_colored_log",
)

#: Shells whose ``-c`` we can prepend the prelude to (they all have functions, ``.``,
#: ``read -r``, ``printf '\\0'`` and ``export -p``).
POSIX_SHELLS = frozenset({"sh", "dash", "bash", "ash", "busybox"})
_SHEBANG_FLAGS = re.compile(r"-[aefhmnuvxC]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shell_argv(script: Path, *, local_shell: str, executable: bool) -> list[str] | None:
    """The shell command line (without ``-c`` text) that runs ``script`` as before,
    or None when something other than a POSIX shell would run it."""
    if not executable:
        words = local_shell.split()
        if not words or os.path.basename(words[0]) not in POSIX_SHELLS or len(words) > 1:
            return None
        return [words[0], "-e"]
    try:
        with script.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!") or not first.endswith(b"\n"):
        return None
    words = first[2:].decode(errors="replace").split(None, 1)
    if not words or os.path.basename(words[0]) not in POSIX_SHELLS - {"busybox"}:
        return None
    if not os.path.isabs(words[0]):
        return None
    argument = words[1].strip() if len(words) > 1 else ""
    if argument and not _SHEBANG_FLAGS.fullmatch(argument):
        return None
    return [words[0], *([argument] if argument else [])]


def prelude(
    channel: Path,
    launchers: Path,
    types: Iterable[str],
    exported: Sequence[str],
    engine_pid: int | None = None,
) -> str:
    """Shell text defining the type functions for one channel.

    ``exported`` are the names of `EMULATOR_VARIABLES` the manifest's environment holds;
    they stay exported whatever the manifest assigns.  The others count only when the
    manifest exported them, which ``export -p`` tells (sent only when one is set).

    ``engine_pid`` (this process by default) holds the channel's FIFOs open.  A call
    first checks that it still runs (``kill -0``, a builtin): opening a FIFO that nobody
    holds any more would block the manifest for ever, so after the engine was killed
    (SIGKILL, the OOM killer) its manifests would never end; they take the launcher,
    which fails with the reason, instead.
    """
    lines = [
        f"__cdist_trio_ch={shlex.quote(str(channel))}",
        f"__cdist_trio_bin={shlex.quote(str(launchers))}",
        f"__cdist_trio_pid={os.getpid() if engine_pid is None else engine_pid}",
        _HELPERS,
    ]
    unknown = [name for name in EMULATOR_VARIABLES if name not in exported]
    # The request and the wait for its answer: one function, so a call whose stdin the
    # engine reads has it on fd 9 before the engine can see the request.
    lines.append("__cdist_trio_req() {")
    lines.append("    {")
    lines.append('        printf \'%s\\0\' v2 "$__cdist_trio_in" "$__cdist_trio_n" "$#" "$@"')
    for name in EMULATOR_VARIABLES:
        flag = 2 if name in unknown else 1
        lines.append(
            f'        if [ -n "${{{name}+1}}" ]; then printf \'{flag}\\0%s\\0\' "${name}"; '
            "else printf '0\\0\\0'; fi"
        )
    if unknown:
        # A set variable the manifest's environment did not export counts only if the
        # manifest exported it (or set it for this call): the engine reads ``export -p``,
        # written into the request by the builtin itself (no command substitution, so
        # no fork).
        setness = "".join(f"${{{name}+1}}" for name in unknown)
        lines.append(
            f"        if [ -n \"{setness}\" ]; then printf 'EXP\\0'; export -p; "
            "printf '\\0'; else printf 'END\\0'; fi"
        )
    else:
        lines.append("        printf 'END\\0'")
    lines.append('    } > "$__cdist_trio_ch/req" &&')
    lines.append("        IFS=' ' read -r __cdist_trio_s __cdist_trio_o __cdist_trio_r \\")
    lines.append('            < "$__cdist_trio_ch/resp"')
    lines.append("}")
    lines.append("__cdist_trio_call() {")
    lines.append(_CALL_START)
    lines.append(_CALL_END)
    lines.append("}")
    for name in sorted(types):
        if _IDENTIFIER.fullmatch(name):
            lines.append(f'{name}() {{ __cdist_trio_call {name} "$@"; }}')
    lines.append('case $0 in */*) . "$0" ;; *) . "./$0" ;; esac')
    return "\n".join(lines) + "\n"


_HELPERS = r"""__cdist_trio_print() {
    while IFS= read -r __cdist_trio_l; do printf '%s\n' "$__cdist_trio_l"; done < "$1"
    if [ -n "$__cdist_trio_l" ]; then printf '%s' "$__cdist_trio_l"; fi
}
__cdist_trio_take() {
    kill -0 "$__cdist_trio_pid" 2>/dev/null &&
        { IFS= read -r __cdist_trio_x < "$__cdist_trio_ch/token"; } 2>/dev/null
}
__cdist_trio_give() {
    kill -0 "$__cdist_trio_pid" 2>/dev/null &&
        { printf '\n' > "$__cdist_trio_ch/token"; } 2>/dev/null || :
}
__cdist_trio_ask() {
    { printf '%s\0' "$@" > "$__cdist_trio_ch/req"; } 2>/dev/null &&
        IFS=' ' read -r __cdist_trio_s __cdist_trio_o __cdist_trio_r < "$__cdist_trio_ch/resp"
}"""

_CALL_START = r"""    case $- in *x*) set +x; __cdist_trio_xt=1 ;; *) __cdist_trio_xt= ;; esac
    __cdist_trio_n=
    if [ -t 0 ]; then
        __cdist_trio_in=0
    elif [ /dev/stdin -ef /dev/null ]; then
        __cdist_trio_in=1
    elif [ -p /dev/stdin ] &&
        { IFS=' ' read -r __cdist_trio_p __cdist_trio_x < /proc/self/stat; } 2>/dev/null; then
        __cdist_trio_in=4
        if [ "$__cdist_trio_p" = "$$" ]; then __cdist_trio_in=3; fi
        __cdist_trio_n=$__cdist_trio_p
    elif __cdist_trio_s= && __cdist_trio_take && { __cdist_trio_ask seq || :; } &&
        __cdist_trio_give && [ -n "$__cdist_trio_s" ] && __cdist_trio_n=$__cdist_trio_s &&
        cat > "$__cdist_trio_ch/in.$__cdist_trio_n" 2>/dev/null; then
        __cdist_trio_in=2
    else
        __cdist_trio_in=0
    fi
    if ! __cdist_trio_take; then
        if [ -n "$__cdist_trio_xt" ]; then set -x; fi
        __cdist_trio_t=$1
        shift
        "$__cdist_trio_bin/$__cdist_trio_t" "$@"
        return
    fi"""

_CALL_END = r"""    __cdist_trio_ok=
    case $__cdist_trio_in in
        3|4) { __cdist_trio_req "$@" && __cdist_trio_ok=1; } 9<&0 ;;
        *) if __cdist_trio_req "$@"; then __cdist_trio_ok=1; fi ;;
    esac
    if [ -n "$__cdist_trio_ok" ] && [ "$__cdist_trio_s" = P ]; then
        # The pipe's writer was still at work: the engine keeps what it read, and the
        # rest is copied outside the channel, which the writer may need.
        __cdist_trio_give
        __cdist_trio_ok= __cdist_trio_s=
        __cdist_trio_in=5
        if __cdist_trio_take && { __cdist_trio_ask seq || :; } && __cdist_trio_give &&
            [ -n "$__cdist_trio_s" ]; then
            cat > "$__cdist_trio_ch/in.$__cdist_trio_s" 2>/dev/null || :
        fi
        __cdist_trio_n=$__cdist_trio_s.$__cdist_trio_p
        if __cdist_trio_take && __cdist_trio_req "$@"; then __cdist_trio_ok=1; fi
    fi
    if [ -n "$__cdist_trio_ok" ]; then
        if [ "$__cdist_trio_o" = 1 ]; then __cdist_trio_print "$__cdist_trio_ch/out" || :; fi
        if [ "$__cdist_trio_r" = 1 ]; then __cdist_trio_print "$__cdist_trio_ch/err" >&2 || :; fi
        __cdist_trio_give
    else
        printf '%s\n' "ERROR: cdist-trio: the engine stopped answering type calls" >&2
        __cdist_trio_s=1
    fi
    if [ -n "$__cdist_trio_xt" ]; then set -x; fi
    return "$__cdist_trio_s"
"""


@dataclass(frozen=True)
class _Request:
    stdin_mode: str
    stdin_number: str
    argv: list[str]
    environ: dict[str, str]


class _Parser:
    """Splits the byte stream of ``req`` into requests (``seq`` or a call)."""

    def __init__(self) -> None:
        self._fields: list[bytes] = []
        self._partial = b""

    def feed(self, data: bytes) -> list[_Request | None]:
        """Requests completed by ``data``; None stands for a ``seq`` request."""
        *done, self._partial = (self._partial + data).split(b"\0")
        self._fields.extend(done)
        requests: list[_Request | None] = []
        while self._fields:
            if self._fields[0] == b"seq":
                del self._fields[0]
                requests.append(None)
                continue
            parsed = self._call()
            if parsed is None:
                break
            requests.append(parsed)
        return requests

    def _call(self) -> _Request | None:
        fields = self._fields
        if len(fields) < 4:
            return None
        if fields[0] != b"v2":
            raise ValueError(f"unknown request {fields[0][:20]!r}")
        nargs = int(fields[3])
        total = 4 + nargs + 2 * len(EMULATOR_VARIABLES) + 1
        if len(fields) < total or (fields[total - 1] == b"EXP" and len(fields) == total):
            return None
        if fields[total - 1] == b"EXP":
            total += 1
        text = [f.decode(errors="surrogateescape") for f in fields[:total]]
        del fields[:total]
        end = 4 + nargs + 2 * len(EMULATOR_VARIABLES)
        if text[end] not in ("END", "EXP"):
            raise ValueError("malformed request")
        exports = "\n" + text[end + 1] if text[end] == "EXP" else ""
        argv = text[4 : 4 + nargs]
        pairs = text[4 + nargs : end]
        environ = {
            name: pairs[2 * i + 1]
            for i, name in enumerate(EMULATOR_VARIABLES)
            if pairs[2 * i] == "1" or (pairs[2 * i] == "2" and _exported(name, exports))
        }
        return _Request(text[1], text[2], argv, environ)


def _exported(name: str, exports: str) -> bool:
    """Whether ``export -p`` output (after a newline) lists ``name`` (dash, bash)."""
    return f"\nexport {name}=" in exports or f"\ndeclare -x {name}=" in exports


def _answer(
    channel: Path, request: _Request, types: TypeRegistry | None, pending: dict[str, bytes]
) -> bytes:
    """Run one call; write its output files; return the ``resp`` line.

    ``pending``: what was read of pipeline callers' stdin whose writer was not done
    (by caller pid); such a caller is answered ``P`` and comes back with the rest.
    """
    stdin: io.BytesIO
    mode, number = request.stdin_mode, request.stdin_number
    if mode == "1":
        stdin = io.BytesIO(b"")
    elif mode == "2" and number.isdigit():
        stdin = io.BytesIO(_take_copy(channel, number))
    elif mode in ("3", "4") and number.isdigit():
        try:
            data, complete = _read_pipe(int(number), wait=mode == "3")
        except OSError as exc:
            error = f"ERROR: cdist-trio: cannot read the stdin of {request.argv[0]}: {exc}\n"
            (channel / "err").write_text(error)
            return b"1 0 1\n"
        if not complete:
            pending[number] = data
            return b"P 0 0\n"
        stdin = io.BytesIO(data)
    elif mode == "5":
        copied, _, pid = number.partition(".")
        rest = _take_copy(channel, copied) if copied.isdigit() else b""
        stdin = io.BytesIO(pending.pop(pid, b"") + rest)
    else:
        stdin = NoStdin()
    status, out, err = emulate_captured(request.argv, request.environ, stdin, types)
    flags = []
    for name, text in (("out", out), ("err", err)):
        if text:
            (channel / name).write_text(text, errors="surrogateescape")
        flags.append("1" if text else "0")
    return f"{status} {flags[0]} {flags[1]}\n".encode()


#: While a call waits for its answer, its stdin is on this descriptor as well (stdin
#: itself is the answer FIFO then: ``read`` reads only stdin).
_STDIN_COPY = 9


def _take_copy(channel: Path, number: str) -> bytes:
    """The stdin a caller copied with ``cat`` (removed once read)."""
    path = channel / f"in.{number}"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    finally:
        path.unlink(missing_ok=True)


def _read_pipe(pid: int, *, wait: bool) -> tuple[bytes, bool]:
    """What the pipe that is stdin of the waiting caller ``pid`` holds, and whether that
    is all of it (its writers are done).  ``wait``: read to the end (the manifest shell
    itself, whose stdin no type call writes); else only what is there now.  Opened
    without blocking: a pipe whose writer already closed would wait for a new one."""
    fd = os.open(f"/proc/{pid}/fd/{_STDIN_COPY}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.set_blocking(fd, wait)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return b"".join(chunks), False
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    finally:
        os.close(fd)


async def _serve(
    channel: Path,
    requests: trio.lowlevel.FdStream,
    answers: trio.lowlevel.FdStream,
    types: TypeRegistry | None,
) -> None:
    parser = _Parser()
    pending: dict[str, bytes] = {}
    number = 0
    while data := await requests.receive_some():
        for request in parser.feed(data):
            if request is None:
                number += 1
                await answers.send_all(f"{number} 0 0\n".encode())
            elif request.stdin_mode == "3":
                # Reads the manifest shell's own stdin to its end: may wait for a writer.
                answer = await trio.to_thread.run_sync(_answer, channel, request, types, pending)
                await answers.send_all(answer)
            else:
                # Everything else is a few files written and nothing waited for: on this
                # thread.  A worker thread per call cost more than the call (the hand-off
                # and the GIL going back and forth: 30 context switches per object).
                await answers.send_all(_answer(channel, request, types, pending))


def _fifo(path: Path) -> int:
    os.mkfifo(path, 0o600)
    # Read-write: opening never blocks and the engine's own end keeps callers from EOF.
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


@asynccontextmanager
async def open_shell_channel(types: TypeRegistry | None = None) -> AsyncIterator[Path]:
    """Serve one manifest run's type calls; yield the channel directory for `prelude`.

    On exit the FIFOs close, so a caller still waiting (a background job outliving its
    manifest) sees EOF and falls back to the PATH launcher.
    """
    channel = Path(tempfile.mkdtemp(prefix="cdist-trio-sh."))
    try:
        token = _fifo(channel / "token")
        try:
            os.write(token, b"\n")
            requests = trio.lowlevel.FdStream(_fifo(channel / "req"))
            answers = trio.lowlevel.FdStream(_fifo(channel / "resp"))
            async with requests, answers, trio.open_nursery() as nursery:
                nursery.start_soon(_serve, channel, requests, answers, types)
                try:
                    yield channel
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            os.close(token)
    finally:
        shutil.rmtree(channel, ignore_errors=True)


def manifest_command(
    base: list[str],
    channel: Path,
    launchers: Path,
    types: Iterable[str],
    env: Mapping[str, str],
    dollar0: str,
    engine_pid: int | None = None,
) -> list[str]:
    """``base + ['-c', prelude, $0]`` for a manifest run over ``channel``."""
    exported = [name for name in EMULATOR_VARIABLES if name in env]
    return [*base, "-c", prelude(channel, launchers, types, exported, engine_pid), dollar0]
