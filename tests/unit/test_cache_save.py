"""Saving the cache: two runs saving the same host's cache at once take turns."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import trio

from cdist_trio.cache import save_cache

ENTRIES = 40
SAVES = 100


def _workdir(base: Path, tag: str) -> Path:
    """A small $__global: files, directories with files, a symlink."""
    workdir = base / "data"
    for i in range(ENTRIES):
        if i % 3 == 0:
            (workdir / f"d{i}" / "sub").mkdir(parents=True)
            (workdir / f"d{i}" / "sub" / "f").write_text(tag)
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / f"f{i}").write_text(tag)
    (workdir / "link").symlink_to("f1")
    return workdir


def _save_repeatedly(scratch: str, cache_root: str, tag: str) -> None:
    for n in range(SAVES):
        workdir = _workdir(Path(scratch) / f"{tag}-{n}", tag)
        trio.run(save_cache, workdir, Path(cache_root), "host-hash", "host")


def test_concurrent_saves_of_one_host_never_fail(tmp_path: Path) -> None:
    """Without the lock, one process's rmtree of an old entry met the other's new one
    (``Directory not empty``, ``No such file or directory``) within a few saves."""
    cache_root = tmp_path / "cache"
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_save_repeatedly, args=(str(tmp_path), str(cache_root), tag))
        for tag in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    saved = cache_root / "host-hash"
    # one run's tree, whole: every entry from the same save
    tags = {p.read_text() for p in saved.rglob("*") if p.is_file() and p.name != "target_host"}
    assert len(tags) == 1
    assert (saved / "target_host").read_text() == "host\n"
    assert len(list(saved.iterdir())) == ENTRIES + 2
