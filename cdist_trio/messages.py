"""cdist's messaging between scripts: ``__messages_in`` / ``__messages_out`` (spec §13)."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

_numbers = itertools.count()
_directory: str | None = None


def _scratch() -> str:
    """This process's private directory for message files (made once, removed at exit):
    a counter there costs less than `tempfile.mkstemp` per script."""
    global _directory
    if _directory is None or not os.path.isdir(_directory):
        _directory = tempfile.mkdtemp(prefix="cdist-trio-messages.")
        atexit.register(shutil.rmtree, _directory, True)
    return _directory


def _create(suffix: str) -> tuple[int, str]:
    directory = _scratch()
    while True:
        path = os.path.join(directory, f"{next(_numbers)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:
            continue


@contextmanager
def message_files(messages: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Give a script a copy of the messages so far and collect what it writes.

    Yields the two environment variables.  Afterwards, also on failure, every line the
    script wrote is appended to ``messages`` as ``<prefix>:<line>`` in one write.
    """
    fd_in, path_in = _create(".cdist_message_in")
    fd_out, path_out = _create(".cdist_message_out")
    os.close(fd_out)
    try:
        with os.fdopen(fd_in, "wb") as target:
            target.write(messages.read_bytes())
        yield {"__messages_in": path_in, "__messages_out": path_out}
    finally:
        try:
            with open(path_out, errors="replace") as written:
                lines = written.read().splitlines()
            if lines:
                with messages.open("a") as sink:
                    sink.write("".join(f"{prefix}:{line}\n" for line in lines))
        finally:
            for path in (path_in, path_out):
                with suppress(FileNotFoundError):
                    os.unlink(path)
