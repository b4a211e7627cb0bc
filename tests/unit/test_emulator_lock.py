"""The per-object lock file of cdist-spec §6.3 step 2."""

from __future__ import annotations

import threading
from pathlib import Path

from cdist_trio.emulator.lock import lock_path, object_lock

MARKER = ".cdist-l0ck_abc"


def test_emulator_lock_path_replaces_slashes(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "__file", "etc/ssh/x", MARKER)
    assert path == tmp_path / f".__fileetc_ssh_x_{MARKER}.lock"
    assert lock_path(tmp_path, "__single", "", MARKER) == tmp_path / f".__single_{MARKER}.lock"


def test_emulator_lock_path_hashes_overlong_names(tmp_path: Path) -> None:
    first = lock_path(tmp_path, "__file", "d/" * 200, MARKER)
    second = lock_path(tmp_path, "__file", "e/" * 200, MARKER)
    assert first != second
    assert len(first.name) < 255
    assert first.name.endswith(f"_{MARKER}.lock")


def test_emulator_lock_serialises_and_removes_file(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "object", "__file", "x", MARKER)
    events: list[str] = []
    acquired = threading.Event()

    def second_holder() -> None:
        with object_lock(path):
            events.append("second")
            acquired.set()

    with object_lock(path):
        assert path.exists()
        waiter = threading.Thread(target=second_holder)
        waiter.start()
        assert not acquired.wait(timeout=0.2)
        events.append("first")
    assert acquired.wait(timeout=10)
    waiter.join(timeout=10)
    assert events == ["first", "second"]
    assert not path.exists()


def test_in_process_lock_serialises_threads_without_a_file(tmp_path: Path) -> None:
    from cdist_trio.emulator import lock

    path = lock_path(tmp_path / "object", "__file", "x", MARKER)
    events: list[str] = []
    acquired = threading.Event()

    def second_holder() -> None:
        with lock.in_process_lock(path):
            events.append("second")
            acquired.set()

    with lock.in_process_lock(path):
        waiter = threading.Thread(target=second_holder)
        waiter.start()
        assert not acquired.wait(timeout=0.2)
        # another object's definition does not wait for this one
        with lock.in_process_lock(path.with_name("other.lock")):
            events.append("other")
        events.append("first")
    assert acquired.wait(timeout=10)
    waiter.join(timeout=10)
    assert events == ["other", "first", "second"]
    assert not path.parent.exists()  # no lock file, not even its directory
    assert lock._held == {}  # nothing kept once nobody holds or waits
