"""cdist's messaging between scripts: ``__messages_in`` / ``__messages_out`` (spec §13)."""

from __future__ import annotations

import itertools
import locale
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .model.lines import append_lines

_numbers = itertools.count()


@dataclass
class _Snapshot:
    path: str
    size: int
    users: int = 0


class _Scratch:
    """One host run's message files.  Creating a file costs an inode allocation (on ext4
    without a journal, after deletes, a scan of the deleted inodes), so files are kept
    and reused instead of created and deleted per script."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.free_out: list[str] = []
        """Message-out files of finished scripts, emptied."""
        self.snapshots: dict[int, _Snapshot] = {}
        """Copies of the messages by size, while a script uses them or they are the latest."""
        self.latest: _Snapshot | None = None
        self.free_in: list[str] = []
        """Copies no script uses any more, of messages that have grown since."""
        self.content = b""
        """The messages as last read: they only grow, so only what was appended since is
        read again (a run with many objects would otherwise read them once per script)."""

    def snapshot(self, messages: Path) -> _Snapshot:
        """A copy of the messages so far, shared by every script that starts while they
        are unchanged: the file only grows, so its size names its content."""
        size = _size(messages)
        snapshot = self.snapshots.get(size)
        if snapshot is None:
            data = self._read(messages)
            size = len(data)
            path = os.path.join(self.directory, f"in.{size}")
            self._write(path, data)
            snapshot = self.snapshots[size] = _Snapshot(path, size)
            previous, self.latest = self.latest, snapshot
            if previous is not None and not previous.users:
                self._recycle(previous)
        elif not os.path.exists(snapshot.path):  # a script removed it
            self._write(snapshot.path, self._read(messages)[:size])
        snapshot.users += 1
        return snapshot

    def _read(self, messages: Path) -> bytes:
        """The whole messages file: what was read before plus what was appended since
        (read whole again if it shrank)."""
        with open(messages, "rb") as source:
            known = len(self.content)
            if os.fstat(source.fileno()).st_size >= known:
                source.seek(known)
                tail = source.read()
                if tail:
                    self.content += tail
            else:
                self.content = source.read()
        return self.content

    def _write(self, path: str, data: bytes) -> None:
        """``data`` into ``path``: a recycled file renamed, else a new one."""
        while self.free_in:
            try:
                os.replace(self.free_in.pop(), path)
            except FileNotFoundError:  # a script removed it
                continue
            with open(path, "r+b") as target:
                target.write(data)
                target.truncate()
            return
        with open(_create(self.directory, os.path.basename(path)), "wb") as target:
            target.write(data)

    def release(self, snapshot: _Snapshot) -> None:
        snapshot.users -= 1
        if not snapshot.users and snapshot is not self.latest:
            self._recycle(snapshot)

    def _recycle(self, snapshot: _Snapshot) -> None:
        del self.snapshots[snapshot.size]
        self.free_in.append(snapshot.path)


_scratches: dict[Path, _Scratch] = {}
"""Per host run, by its ``$G/messages`` path (the scratch directory is beside ``$G``)."""


def _size(messages: Path) -> int:
    return os.stat(messages).st_size


def _directory(messages: Path) -> Path:
    """Next to ``$G`` (``messages`` is ``$G/messages``), never inside it."""
    return messages.parent.parent / "message-files"


def _scratch(messages: Path) -> _Scratch:
    scratch = _scratches.get(messages)
    if scratch is None:
        scratch = _scratches[messages] = _Scratch(_directory(messages))
    return scratch


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


def remove_message_files(messages: Path) -> None:
    """Forget and delete one host run's message files (at the end of the run)."""
    _scratches.pop(messages, None)
    shutil.rmtree(_directory(messages), ignore_errors=True)


@contextmanager
def message_files(messages: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Give a script a copy of the messages so far and collect what it writes.

    Yields the two environment variables.  Afterwards, also on failure, every line the
    script wrote is appended to ``messages`` as ``<prefix>:<line>`` in one write.
    """
    scratch = _scratch(messages)
    snapshot = scratch.snapshot(messages)
    free = scratch.free_out
    path_out = free.pop() if free else _create(scratch.directory, f"out.{next(_numbers)}")
    try:
        yield {"__messages_in": snapshot.path, "__messages_out": path_out}
    finally:
        scratch.release(snapshot)
        try:
            if os.stat(path_out).st_size:  # most scripts write no message
                with open(path_out, "r+b") as written:
                    add_messages(messages, prefix, written.read())
                    written.truncate(0)
            free.append(path_out)
        except FileNotFoundError:  # the script removed it: it wrote nothing we can read
            pass


def add_messages(messages: Path, prefix: str, written: bytes) -> None:
    """Append each line a script wrote to its ``$__messages_out`` to ``messages`` as
    ``<prefix>:<line>``, in one write (text in the locale's encoding, any line break)."""
    lines = written.decode(locale.getpreferredencoding(False), errors="replace").splitlines()
    append_lines(messages, [f"{prefix}:{line}" for line in lines])
