"""The conformance suite against the `local` and `command` transports on this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cdist_trio.transport import Remote, TransportResources, open_remote
from cdist_trio.transport.local import script_path
from tests.conformance import *  # noqa: F403


@pytest.fixture(params=["local", "command"])
async def remote(request: pytest.FixtureRequest) -> AsyncIterator[Remote]:
    async with open_remote(
        "localhost",
        transport=request.param,
        resources=TransportResources(),
        remote_exec=str(script_path("local-exec")),
        remote_copy=str(script_path("local-copy")),
    ) as opened:
        yield opened


@pytest.fixture
def remote_tmp(tmp_path: Path) -> str:
    target = tmp_path / "target"
    target.mkdir()
    return str(target)
