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


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (0o644, "Permission denied; make it executable for this user (chmod +x)"),
        (None, "No such file or directory"),
    ],
)
async def test_a_program_that_cannot_start_is_named_with_the_fix(
    tmp_path: Path, mode: int | None, reason: str
) -> None:
    from cdist_trio.errors import ConnectError
    from cdist_trio.transport._process import run_argv

    program = tmp_path / "remote-exec"
    if mode is not None:
        program.write_text("#!/bin/sh\n")
        program.chmod(mode)
    with pytest.raises(ConnectError) as failure:
        await run_argv([str(program), "host", "true"])
    assert str(failure.value) == f"cannot start {str(program)!r}: {reason}"
