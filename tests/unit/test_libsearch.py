"""`cdist_trio.transport.libsearch`: asyncssh's library lookups without gcc and ld."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from cdist_trio.transport import libsearch
from cdist_trio.transport.libsearch import find_library, quick_library_lookup

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux lookup")


@linux_only
def test_a_library_in_the_linker_cache_is_found_as_find_library_finds_it() -> None:
    assert find_library("c") == ctypes.util.find_library("c")
    assert find_library("c") is not None


@linux_only
def test_an_absent_library_is_not_searched_with_a_compiler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    real_popen = subprocess.Popen

    class Recording(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: list[str], *rest: object, **kwargs: object) -> None:
            started.append(Path(str(args[0])).name)
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    assert find_library("cdist-trio-no-such-library") is None
    assert started == ["ldconfig"]  # the cache only: no gcc, no ld


@linux_only
def test_a_library_on_ld_library_path_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libcdtnothere.so.3").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{tmp_path}")
    assert find_library("cdtnothere") == "libcdtnothere.so.3"


@linux_only
def test_a_library_in_a_default_directory_is_found_without_a_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libcdtdefault.so.1").write_bytes(b"")
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    assert find_library("cdtdefault") is None
    monkeypatch.setattr(libsearch, "STANDARD_DIRS", ("/nonexistent", str(tmp_path)))
    assert find_library("cdtdefault") == "libcdtdefault.so.1"


def test_the_lookup_is_swapped_only_inside_the_block() -> None:
    original = ctypes.util.find_library
    with quick_library_lookup():
        assert ctypes.util.find_library is find_library
    assert ctypes.util.find_library is original
    with pytest.raises(ZeroDivisionError), quick_library_lookup():
        1 / 0  # noqa: B018
    assert ctypes.util.find_library is original
