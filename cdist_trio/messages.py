"""cdist's messaging between scripts: ``__messages_in`` / ``__messages_out`` (spec §13)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_numbers = itertools.count()
# Message-out files of finished scripts, emptied, by scratch directory: creating and
# deleting two files per script was the engine's main filesystem cost (ext4 scans for
# recently deleted inodes on every create).
_free_out: dict[Path, list[str]] = {}


def _scratch(messages: Path) -> Path:
    """Next to ``$G`` (``messages`` is ``$G/messages``), never inside it."""
    return messages.parent.parent / "message-files"


def _create(directory: Path, name: str) -> str:
    """``directory/name`` as a new empty file (the directory is made on first use)."""
    path = os.path.join(directory, name)
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return path
        except FileNotFoundError:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    raise FileNotFoundError(path)


def _snapshot(messages: Path, scratch: Path) -> str:
    """A copy of the messages so far, shared by every script that starts while they
    are unchanged: the file only grows, so its size names its content."""
    data = messages.read_bytes()
    path = os.path.join(scratch, f"in.{len(data)}")
    if not os.path.exists(path):
        partial = _create(scratch, f"partial.{next(_numbers)}")
        with open(partial, "wb") as target:
            target.write(data)
        os.replace(partial, path)
    return path


def remove_message_files(messages: Path) -> None:
    """Forget and delete one host run's message files (at the end of the run)."""
    scratch = _scratch(messages)
    _free_out.pop(scratch, None)
    shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def message_files(messages: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Give a script a copy of the messages so far and collect what it writes.

    Yields the two environment variables.  Afterwards, also on failure, every line the
    script wrote is appended to ``messages`` as ``<prefix>:<line>`` in one write.
    """
    scratch = _scratch(messages)
    path_in = _snapshot(messages, scratch)
    free = _free_out.setdefault(scratch, [])
    path_out = free.pop() if free else _create(scratch, f"out.{next(_numbers)}")
    try:
        yield {"__messages_in": path_in, "__messages_out": path_out}
    finally:
        try:
            with open(path_out, "r+", errors="replace") as written:
                lines = written.read().splitlines()
                written.truncate(0)
            free.append(path_out)
        except FileNotFoundError:  # the script removed it: it wrote nothing we can read
            lines = []
        if lines:
            with messages.open("a") as sink:
                sink.write("".join(f"{prefix}:{line}\n" for line in lines))
