"""A private request/answer server on a unix socket, owned by the host scope.

Clients send one request and shut down their write side; the handler's answer is sent
back and the connection closed.  Used by the relay (types' ssh/scp calls) and by the
emulator's fast path (type calls).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import trio

MAX_REQUEST = 256 << 20
SOCKET_PATH_MAX = 103
"""Bytes of a unix socket's path (``sun_path``: 108 on Linux, 104 on the BSDs, with its
terminating NUL)."""
_SHORT_BASES = ("/tmp", "/var/tmp")


def socket_directory(prefix: str, name_length: int = 1) -> Path:
    """A new private directory for unix sockets named with up to ``name_length`` bytes.

    In the temporary directory (``TMPDIR``) when such paths fit, else in ``/tmp``: a
    deep ``TMPDIR`` (CI workspaces, per-user directories) cannot hold a socket, and every
    host failed with "AF_UNIX path too long".
    """
    base = tempfile.gettempdir()
    if _socket_path_length(base, prefix, name_length) > SOCKET_PATH_MAX:
        for short in _SHORT_BASES:
            if os.access(short, os.W_OK | os.X_OK):
                base = short
                break
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def _socket_path_length(base: str, prefix: str, name_length: int) -> int:
    """``<base>/<prefix><8 random characters>/<name>``, in bytes."""
    return len(os.fsencode(os.path.join(base, prefix))) + 8 + 1 + name_length


Handler = Callable[[bytes], Awaitable[bytes]]


async def _serve_one(handler: Handler, stream: trio.SocketStream) -> None:
    async with stream:
        request = bytearray()
        async for chunk in stream:
            request += chunk
            if len(request) > MAX_REQUEST:
                return
        answer = await handler(bytes(request))
        with suppress(trio.BrokenResourceError):
            await stream.send_all(answer)


@asynccontextmanager
async def open_unix_server(prefix: str, handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a new socket in a private temp dir; yield the socket path.

    The path stays short (sockets are limited to about 100 bytes); the directory is
    removed on exit, and every connection in flight is cancelled.
    """
    directory = socket_directory(prefix)
    path = directory / "s"
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await listener.bind(str(path))
        listener.listen(128)
        serve = trio.SocketListener(listener)

        async def accept_loop() -> None:
            async with trio.open_nursery() as handlers:
                while True:
                    handlers.start_soon(_serve_one, handler, await serve.accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_loop)
            try:
                yield str(path)
            finally:
                nursery.cancel_scope.cancel()
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        directory.rmdir()
