"""`cdist_trio.model.smallfiles` reads and writes what `pathlib.Path` does, with fewer
system calls: the same text, newlines, encoding errors, modes and exceptions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cdist_trio.model import smallfiles

CONTENTS = [
    b"",
    b"present\n",
    b"no newline",
    b"windows\r\nline\r\nends\r\n",
    b"old mac\rline\r",
    b"mixed\r\n\r\n\n\r",
    "caf\u00e9 \u2603 \U0001f600\n".encode(),
    b"x" * 65535 + b"\r" + b"\n" + b"y" * 70000,  # \r\n split across two reads
    b"\x00binary\xff\xfe" * 10000,
]


@pytest.mark.parametrize("content", CONTENTS, ids=range(len(CONTENTS)))
def test_reads_what_pathlib_reads(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert smallfiles.read_bytes(path) == path.read_bytes() == content
    try:
        expected = path.read_text()
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            smallfiles.read_text(path)
    else:
        assert smallfiles.read_text(path) == expected
        assert smallfiles.read_text(str(path)) == expected


def test_writes_what_pathlib_writes(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        ours, theirs = tmp_path / "ours", tmp_path / "theirs"
        for path in (ours, theirs):
            path.write_text("a much longer previous content\n")
        smallfiles.write_text(ours, "caf\u00e9\n")
        theirs.write_text("caf\u00e9\n")
        assert ours.read_bytes() == theirs.read_bytes() == "caf\u00e9\n".encode()
        fresh_ours, fresh_theirs = tmp_path / "fresh-ours", tmp_path / "fresh-theirs"
        smallfiles.write_bytes(fresh_ours, b"\x00\xff")
        fresh_theirs.write_bytes(b"\x00\xff")
        assert stat.S_IMODE(fresh_ours.stat().st_mode) == 0o640
        assert fresh_ours.stat().st_mode == fresh_theirs.stat().st_mode
        big = os.urandom(3 << 20)
        smallfiles.write_bytes(ours, big)
        assert ours.read_bytes() == big
    finally:
        os.umask(old_umask)


def test_raises_what_pathlib_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        smallfiles.read_text(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        smallfiles.read_bytes(tmp_path)
    with pytest.raises(FileNotFoundError):
        smallfiles.write_text(tmp_path / "no" / "such" / "dir", "x")
    with pytest.raises(UnicodeEncodeError):
        smallfiles.write_text(tmp_path / "surrogate", "\udcff")
