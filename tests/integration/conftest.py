"""Fixtures for the integration suite beyond the harness plugin's own.

Containers come from the plugin's session-scoped fixtures (`fleet`, `sshd_target`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: ControlPath sockets must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ct-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
