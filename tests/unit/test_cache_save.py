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


def test_waiting_for_another_runs_lock_can_be_cancelled(tmp_path: Path) -> None:
    """A run that hangs holding the lock (a stalled network home) must not keep Ctrl-C
    or a deadline from ending this one; once the lock is free the save goes through."""
    import fcntl
    import os

    from trio.testing import MockClock

    cache_root = tmp_path / "cache"
    destination = cache_root / "host-hash"
    destination.mkdir(parents=True)
    (destination / "old").write_text("the other run's")
    holder = os.open(destination, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    workdir = _workdir(tmp_path / "ours", "ours")

    async def save_within(seconds: float) -> bool:
        with trio.move_on_after(seconds) as scope:
            await save_cache(workdir, cache_root, "host-hash", "host")
        return scope.cancelled_caught

    try:
        assert trio.run(save_within, 3600, clock=MockClock(autojump_threshold=0))
        assert [p.name for p in destination.iterdir()] == ["old"]  # untouched
        assert workdir.is_dir()
    finally:
        os.close(holder)
    assert not trio.run(save_within, 3600, clock=MockClock(autojump_threshold=0))
    assert (destination / "target_host").read_text() == "host\n"
    assert not workdir.exists()
