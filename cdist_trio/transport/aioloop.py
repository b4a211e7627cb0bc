"""A private asyncio loop in one daemon thread, awaited from Trio (FIELD-NOTES).

asyncssh is asyncio-only and trio-asyncio is not a sound base, so asyncssh objects live
on this loop and are touched only there.  `AsyncioThread.call` runs a coroutine on it;
a Trio cancel cancels the asyncio task and waits (shielded, bounded) for it to finish.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

T = TypeVar("T")

CANCEL_GRACE = 5.0


class AsyncioThread:
    """One asyncio event loop running in its own thread until `close`."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cdist-trio-asyncio", daemon=True
        )
        self._thread.start()

    async def call(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``factory()`` on the loop and return its result; a checkpoint."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future = asyncio.run_coroutine_threadsafe(factory(), self._loop)
        future.add_done_callback(lambda _: token.run_sync_soon(done.set))
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CANCEL_GRACE):
                    await done.wait()
            raise
        return future.result()

    def close(self) -> None:
        """Stop the loop and join the thread (after cancelling what still runs on it)."""

        async def _shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
