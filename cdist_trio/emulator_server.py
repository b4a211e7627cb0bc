"""Serve type calls of one host's manifests inside the engine (the emulator's fast path).

Each call still comes from a process (``emulator/client.py`` on a bare interpreter), but
the emulator itself runs here, in a worker thread, instead of a fresh Python loading it
every time.  Behaviour is the emulator's own: same code, same files, same messages.
"""

from __future__ import annotations

import io
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from .emulator.entry import main as emulate
from .model.cdist_type import TypeRegistry
from .unixserver import open_unix_server

CLIENT = Path(__file__).parent / "emulator" / "client.py"


class NoStdin(io.BytesIO):
    """Stands in for a terminal stdin: the emulator then captures nothing."""

    def isatty(self) -> bool:
        return True


def emulate_captured(
    argv: list[str],
    environ: dict[str, str],
    stdin: io.BytesIO,
    types: TypeRegistry | None = None,
) -> tuple[int, str, str]:
    """One type call (``argv[0]`` is the type) in this process: exit status, stdout and
    stderr as the emulator process would leave them; a bug in the emulator becomes
    status 1 with an ERROR line instead of taking the host down."""
    out, err = io.StringIO(), io.StringIO()
    try:
        status = emulate(argv[0], argv[1:], environ, stdin, out, err, types, in_engine=True)
    except Exception as exc:
        err.write(f"ERROR: cdist: emulator failed: {exc!r}\n")
        status = 1
    return status, out.getvalue(), err.getvalue()


def _parse(request: bytes) -> tuple[str, list[str], dict[str, str], io.BytesIO]:
    fields = request.split(b"\0")
    if fields[0] != b"v1":
        raise ValueError("unknown request version")
    type_name = fields[1].decode()
    nargs = int(fields[2])
    args = [f.decode(errors="surrogateescape") for f in fields[3 : 3 + nargs]]
    position = 3 + nargs
    nenv = int(fields[position])
    environ: dict[str, str] = {}
    for item in fields[position + 1 : position + 1 + nenv]:
        key, _, value = item.decode(errors="surrogateescape").partition("=")
        environ[key] = value
    position += 1 + nenv
    has_stdin = fields[position] == b"1"
    # stdin is everything after the separator that follows the flag.
    header_length = sum(len(f) + 1 for f in fields[: position + 1])
    body = request[header_length:]
    return type_name, args, environ, (io.BytesIO(body) if has_stdin else NoStdin())


def _call(request: bytes) -> bytes:
    type_name, args, environ, stdin = _parse(request)
    status, out, err = emulate_captured([type_name, *args], environ, stdin)
    data_out, data_err = out.encode(), err.encode()
    return b"%d\0%d\0" % (status, len(data_out)) + data_out + data_err


async def _handle(request: bytes) -> bytes:
    try:
        return await trio.to_thread.run_sync(_call, request)
    except Exception as exc:  # a malformed request must not take the host down
        return b"1\x000\x00" + f"ERROR: cdist: emulator failed: {exc!r}\n".encode()


@asynccontextmanager
async def open_emulator_server() -> AsyncIterator[str]:
    """Serve type calls on a private unix socket; yield its path for the launchers."""
    async with open_unix_server("cdist-trio-emu.", _handle) as path:
        yield path


def launcher_text(type_name: str) -> str:
    """``$G/bin/<type>``: the fast path when the engine serves calls, else the emulator."""
    python = shlex.quote(sys.executable)
    name = shlex.quote(type_name)
    client = shlex.quote(str(CLIENT))
    return (
        "#!/bin/sh\n"
        'if [ -n "${__cdist_trio_emulator:-}" ]; then\n'
        f'    exec {python} -I -S {client} "$__cdist_trio_emulator" {python} {name} "$@"\n'
        "fi\n"
        f'exec {python} -I -m cdist_trio.emulator {name} "$@"\n'
    )
