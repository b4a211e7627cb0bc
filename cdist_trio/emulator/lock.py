"""The per-object lock that serialises concurrent definitions of one object (§6.3 step 2).

An exclusive flock on ``$G/object/.<type><object_id>_<marker>.lock`` ("/" → "_").

Type calls the engine serves itself (every call of a run, unless a launcher finds no
engine to talk to) are serialised in memory instead, by `in_process_lock`: every such
definition happens in the engine's process, and a lock file created and deleted per call
was one inode allocation and one deletion per object (on ext4 without a journal each
allocation after deletes scans the deleted inodes).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NAME_MAX = 255


def lock_path(object_base: Path, type_name: str, object_id: str, marker: str) -> Path:
    """The lock file of one object; over-long names are hashed (cdist would fail there)."""
    name = f".{type_name}{object_id}_{marker}.lock".replace("/", "_")
    if len(name.encode()) > _NAME_MAX:
        import hashlib  # only for ids too long to be a file name

        name = f".{hashlib.sha256(name.encode()).hexdigest()}_{marker}.lock"
    return object_base / name


@contextmanager
def object_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, created on entry and removed on exit.

    Blocks until the lock is ours.  Because the holder unlinks the file, a waiter may
    wake up locking an unlinked inode; it then retries on the current file, so two
    processes never hold "the" lock at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


@contextmanager
def in_process_lock(path: Path) -> Iterator[None]:
    """The exclusion of `object_lock` among the threads of one process, without the
    file: one lock per ``path`` while anyone holds or waits for it."""
    with _held_guard:
        held = _held.get(path)
        if held is None:
            held = _held[path] = _Held()
        held.users += 1
    try:
        with held.lock:
            yield
    finally:
        with _held_guard:
            held.users -= 1
            if not held.users:
                del _held[path]
