"""The benchmark workloads: initial manifests of ``__directory`` and ``__file`` objects.

Every workload touches only ``/srv/cdist-bench`` on its targets, so a reset moves
``/srv/cdist-bench`` and the remote work directory out of the way (``reset_command``).  The
same manifest runs under cdist 7.0.0 and cdist-trio: it uses only parameters both
``__file``/``__directory`` accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BENCH_ROOT = "/srv/cdist-bench"
TRASH = "/var/tmp/cdist-bench-trash"
#: A tmpfs in every target that holds the tools' remote work directory (``-r``), unless
#: ``--remote-dir-on-disk``.  Every run of either tool starts with ``rm -rf`` of the
#: previous run's remote directory (cdist-spec §5.4).  On this machine's disk (ext4
#: without a journal, where the containers' overlay layers live) each inode allocation
#: skips the inodes deleted in the last minutes, reading each one's table block, so the
#: files the run then unpacks there cost a scan of everything the wipe freed: W3 runs got
#: slower one after the other (perf: the targets' ``tar`` in ``recently_deleted``).
#: Journaled ext4, XFS and tmpfs have no such scan; the tmpfs stands in for them.
REMOTE_TMPFS = "/run/cdist-bench"
REMOTE_OUT_TMPFS = f"{REMOTE_TMPFS}/out"
REMOTE_OUT_DISK = "/var/lib/cdist"  # both tools' default


def reset_command(remote_out: str) -> str:
    """What a reset runs on each target before a workload.

    It renames what a run created into a fresh directory under ``TRASH`` instead of
    deleting it: an ``rm -rf`` of the previous run's files on disk right before a run made
    that run's file creation, on the target and locally, cost about a quarter of all CPU
    of W2 (the same ``recently_deleted`` scan), whichever tool ran next.  A remote
    directory on the tmpfs is simply removed.  The targets are removed at the end of the
    session, the trash with them.
    """
    moved = [BENCH_ROOT]
    removed = ""
    if remote_out.startswith(f"{REMOTE_TMPFS}/"):
        removed = f" && rm -rf {remote_out}"
    else:
        moved.append(remote_out)
    return (
        f"mkdir -p {TRASH} && t=$(mktemp -d {TRASH}/XXXXXX) && "
        f"for p in {' '.join(moved)}; do if [ -e $p ]; then mv $p $t/; fi; done{removed}"
    )


@dataclass(frozen=True)
class Workload:
    """One row group of the report: how many hosts, objects and what fan-out."""

    key: str
    title: str
    hosts: int
    objects: int
    parallel: int
    jobs: int
    reset_before: bool = True
    """False for the "nothing to change" run, which follows its twin on the same state."""

    def manifest_text(self) -> str:
        return manifest_text(self.objects)


def manifest_text(objects: int) -> str:
    """Half ``__directory`` (with ``--parents``), half ``__file`` with content from stdin,
    each file inside its own directory (so every file requires one directory)."""
    if objects < 2 or objects % 2:
        raise ValueError("a workload has an even number of objects, at least 2")
    lines = ["#!/bin/sh -e", "# cdist-trio benchmark workload, generated"]
    for index in range(objects // 2):
        directory = f"{BENCH_ROOT}/d{index:04d}"
        lines.append(f"__directory {directory} --parents --mode 0755")
        lines.append(
            f"echo 'benchmark content {index}' | "
            f'require="__directory{directory}" '
            f"__file {directory}/file --source - --mode 0644"
        )
    return "\n".join(lines) + "\n"


def write_manifest(directory: Path, objects: int) -> Path:
    path = directory / f"manifest-{objects}"
    path.write_text(manifest_text(objects))
    path.chmod(0o755)
    return path


def standard_workloads(*, w4_objects: int = 500) -> list[Workload]:
    """W1–W4 of issue 7; ``w4_objects`` is smaller in quick mode."""
    return [
        Workload("W1", "1 host x 20 objects, -j 4", 1, 20, 1, 4),
        Workload("W2", "20 hosts x 20 objects, -p 20 -j 4", 20, 20, 20, 4),
        Workload("W3", "W2 again, nothing to change", 20, 20, 20, 4, reset_before=False),
        Workload("W4", f"1 host x {w4_objects} objects, -j 16", 1, w4_objects, 1, 16),
    ]
