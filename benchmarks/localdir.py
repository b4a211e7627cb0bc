"""Where a benchmark keeps the tools' local files: a tmpfs when there is one with room.

Shared by `nox -s bench` (both tools' ``$TMPDIR`` and ``$HOME``) and `nox -s bench-scale`
(the engine's work directories and the hosts' caches).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where both tools' local files go ($TMPDIR: the work directory; $HOME: the cache),
#: unless ``--local-dir-on-disk``.  The local side has the disk problem the targets have
#: (see `REMOTE_TMPFS`): a run creates about 20 files per object and deletes some of them
#: again, and on this machine's ext4 without a journal each new inode then skips, reading
#: its table block, every inode deleted in the last minutes.  perf of W2 (cdist-trio,
#: asyncssh): the engine's kernel time was 1.4 s on the disk, three quarters of it in
#: ``recently_deleted``, and 0.36 s on a tmpfs.  A tmpfs stands in for a usual disk and
#: for Debian's default ``/tmp``.
LOCAL_TMPFS = Path("/dev/shm")


#: A run's local files take about 15 MB (cdist-trio, W2) and some times that for cdist;
#: a smaller tmpfs (a container's 64 MB /dev/shm) would fail runs, so the disk is used.
LOCAL_TMPFS_MIN_FREE = 512 * 2**20


def local_tmpfs(
    candidate: Path = LOCAL_TMPFS,
    mounts: Path = Path("/proc/mounts"),
    min_free: int = LOCAL_TMPFS_MIN_FREE,
    min_inodes: int = 0,
) -> Path | None:
    """`candidate` if it is a tmpfs mount point this process can write to with at least
    ``min_free`` bytes and ``min_inodes`` inodes free, else None.

    A tmpfs has as many inodes as half its memory has pages unless mounted otherwise:
    3.1 million for a /dev/shm on 24 GiB, and 10,000 hosts' caches take about 4 million
    (bench-scale's first 10,000-host run failed a third of its hosts with "No space left
    on device" while gigabytes were free)."""
    try:
        lines = mounts.read_text().splitlines()
        on_tmpfs = any(
            len(f) > 2 and f[1] == str(candidate) and f[2] == "tmpfs" for f in map(str.split, lines)
        )
        if not on_tmpfs or not os.access(candidate, os.W_OK | os.X_OK):
            return None
        stat = os.statvfs(candidate)
    except OSError:
        return None
    if stat.f_bavail * stat.f_frsize < min_free:
        return None
    # f_files is 0 where the inodes are not limited (mounted with nr_inodes=0)
    if stat.f_files and stat.f_favail < min_inodes:
        return None
    return candidate
