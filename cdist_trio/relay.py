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
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import trio

from .errors import CdistError
from .transport.base import Remote

CLIENT = Path(__file__).with_name("relay_client.py")
MAX_REQUEST = 64 << 20


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


async def _serve_one(remote: Remote, stream: trio.SocketStream) -> None:
    async with stream:
        data = bytearray()
        async for chunk in stream:
            data += chunk
            if len(data) > MAX_REQUEST:
                return
        try:
            answer = await _answer(remote, json.loads(data))
        except CdistError as exc:
            answer = {"rc": 255, "error": str(exc)}
        except (ValueError, OSError) as exc:
            answer = {"rc": 255, "error": f"relay: {exc}"}
        with suppress(trio.BrokenResourceError):
            await stream.send_all(json.dumps(answer).encode() + b"\n")


@asynccontextmanager
async def open_relay(remote: Remote) -> AsyncIterator[tuple[str, str]]:
    """Serve ``remote`` on a private unix socket; yield the exec and copy commands."""
    directory = tempfile.mkdtemp(prefix="cdist-trio-relay.")
    path = str(Path(directory) / "s")
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await listener.bind(path)
        listener.listen(128)
        serve = trio.SocketListener(listener)

        async def accept_loop() -> None:
            async with trio.open_nursery() as handlers:
                while True:
                    stream = await serve.accept()
                    handlers.start_soon(_serve_one, remote, stream)

        client = f"{shlex.quote(sys.executable)} -I {shlex.quote(str(CLIENT))} {shlex.quote(path)}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_loop)
            try:
                yield f"{client} exec", f"{client} copy"
            finally:
                nursery.cancel_scope.cancel()
    finally:
        listener.close()
        Path(path).unlink(missing_ok=True)
        Path(directory).rmdir()
