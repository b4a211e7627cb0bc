"""Small structured-concurrency helpers shared by the host's stages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import trio

T = TypeVar("T")


async def gather_first_error(items: Iterable[T], job: Callable[[T], Awaitable[object]]) -> None:
    """Run ``job(item)`` for every item concurrently; on the first error cancel the rest
    and raise that error itself (never an exception group)."""
    failure: list[Exception] = []

    async def guarded(item: T) -> None:
        try:
            await job(item)
        except Exception as exc:
            if not failure:
                failure.append(exc)
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(guarded, item)
    if failure:
        raise failure[0]
