"""The host scope's relay: types' ``$__remote_exec``/``$__remote_copy`` calls reach the
target through the host's own Remote (pooled connections, sshd limits handled).

cdist exports ssh/scp command strings that shipped types call themselves (``__file``
uploads with ``$__remote_copy``).  Under ``-j`` those extra ssh processes are what
trips MaxSessions and MaxStartups; relayed, they are sessions like any other.
"""

from __future__ import annotations

import base64
import json
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from .errors import CdistError
from .transport.base import Remote
from .unixserver import open_unix_server

CLIENT = Path(__file__).with_name("relay_client.py")


def _split_target(word: str) -> str:
    """``host:dest`` or ``[v6]:dest`` → ``dest``."""
    if word.startswith("["):
        return word.split("]:", 1)[1]
    return word.split(":", 1)[1]


async def _answer(remote: Remote, request: dict[str, object]) -> dict[str, object]:
    op = request.get("op")
    args = [str(a) for a in request.get("args", [])]  # type: ignore[attr-defined]
    cwd = Path(str(request.get("cwd", ".")))
    if op == "exec" and len(args) >= 2:
        stdin = request.get("stdin")
        data = base64.b64decode(str(stdin)) if stdin else None
        result = await remote.run(" ".join(args[1:]), stdin=data, check=False)
        return {
            "rc": result.returncode,
            "stdout": base64.b64encode(result.stdout).decode(),
            "stderr": base64.b64encode(result.stderr).decode(),
        }
    if op == "copy" and len(args) >= 2:
        sources = [cwd / a for a in args[:-1] if not a.startswith("-")]
        await remote.put(sources, _split_target(args[-1]))
        return {"rc": 0}
    return {"rc": 2, "error": f"relay: bad request {op!r} {args!r}"}


async def _handle(remote: Remote, request: bytes) -> bytes:
    try:
        answer = await _answer(remote, json.loads(request))
    except CdistError as exc:
        answer = {"rc": 255, "error": str(exc)}
    except (ValueError, OSError) as exc:
        answer = {"rc": 255, "error": f"relay: {exc}"}
    return json.dumps(answer).encode() + b"\n"


@asynccontextmanager
async def open_relay(remote: Remote) -> AsyncIterator[tuple[str, str]]:
    """Serve ``remote`` on a private unix socket; yield the exec and copy commands."""
    async with open_unix_server("cdist-trio-relay.", partial(_handle, remote)) as path:
        client = f"{shlex.quote(sys.executable)} -I {shlex.quote(str(CLIENT))} {shlex.quote(path)}"
        yield f"{client} exec", f"{client} copy"
