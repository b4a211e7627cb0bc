"""`cdist_trio.tarstream` against real tar: what it writes GNU tar, BusyBox tar and
`tarfile` unpack exactly; what GNU tar and BusyBox tar write it reads exactly."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from cdist_trio.tarstream import read_files, write_tar

LONG = "object/__file/" + "/".join(["a-rather-long-directory-name"] * 5) + "/parameter/mode"
FILES = [
    ("explorer/os", b"#!/bin/sh\necho debian\n", 0o700),
    ("object/__x/id/.cdist-m/parameter/value", b"", 0o600),
    ("object/__x/id/.cdist-m/stdin", bytes(range(256)) * 5, 0o600),
    (LONG, b"0644\n", 0o600),
    ("caf\u00e9/\udcff-surrogate", b"x", 0o644),
]
TARS = [
    pytest.param(
        ["tar"], id="gnu", marks=pytest.mark.skipif(not shutil.which("tar"), reason="no tar")
    ),
    pytest.param(
        ["busybox", "tar"],
        id="busybox",
        marks=pytest.mark.skipif(not shutil.which("busybox"), reason="no busybox"),
    ),
]


def _archive() -> bytes:
    return write_tar(FILES, ["explorer", "object", "object/__x"])


def test_tarfile_reads_what_we_write() -> None:
    with tarfile.open(fileobj=io.BytesIO(_archive()), mode="r:") as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        for name, data, mode in FILES:
            member = members[name]
            assert member.isfile()
            assert member.mode == mode
            assert member.uid == 0
            extracted = tar.extractfile(member)
            assert extracted is not None
            assert extracted.read() == data
        assert members["object/__x"].isdir()


@pytest.mark.parametrize("tar", TARS)
def test_real_tar_unpacks_what_we_write(tmp_path: Path, tar: list[str]) -> None:
    files = [f for f in FILES if "\udcff" not in f[0]]  # busybox and LANG differ there
    subprocess.run(
        [*tar, "-x", "-o", "-f", "-", "-C", str(tmp_path)], input=write_tar(files), check=True
    )
    for name, data, mode in files:
        path = tmp_path / name
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("tar", TARS)
def test_we_read_what_real_tar_writes(tmp_path: Path, tar: list[str]) -> None:
    source = tmp_path / "t"
    for name, data, _ in FILES:
        if "\udcff" in name:
            continue
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    archive = subprocess.run(
        [*tar, "-c", "-f", "-", "-C", str(source), "."], capture_output=True, check=True
    ).stdout
    expected = {n: d for n, d, _ in FILES if "\udcff" not in n}
    assert read_files(archive) == expected


def test_round_trip_and_broken_input() -> None:
    assert read_files(_archive()) == {name: data for name, data, _ in FILES}
    with pytest.raises(tarfile.TarError):
        read_files(b"")
    with pytest.raises(tarfile.TarError):
        read_files(b"this is not a tar archive at all" * 40)
    with pytest.raises(tarfile.TarError):
        read_files(_archive()[:700])  # cut inside a member
