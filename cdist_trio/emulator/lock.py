"""The per-object lock that serialises concurrent definitions of one object (§6.3 step 2).

An exclusive flock on ``$G/object/.<type><object_id>_<marker>.lock`` ("/" → "_").
"""

from __future__ import annotations

import fcntl
import os
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
