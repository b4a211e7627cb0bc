"""Just enough tar for the batch round trips, written and read without `tarfile`.

The engine builds one archive per batch (parameters, explorers, stdin of every object)
and reads one back (every step's output); with `tarfile` that was about a third of the
engine's CPU per object.  Writing: GNU format as GNU tar and BusyBox tar read it
(``L`` records for names longer than 100 bytes), owner root, mtime 0.  Reading: regular
files only, ``L`` long names; anything unusual (pax headers, sparse files) goes to
`tarfile`, which reads every format.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable

BLOCK = 512


class _Unusual(Exception):
    """A record this reader leaves to `tarfile`."""


_END = b"\0" * (2 * BLOCK)


def _header(name: bytes, size: int, mode: int, kind: bytes) -> bytes:
    fields = b"".join(
        (
            name.ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"0000000\0",  # uid
            b"0000000\0",  # gid
            b"%011o\0" % size,
            b"00000000000\0",  # mtime
            b"        ",  # checksum, counted as spaces
            kind,
            b"\0" * 100,  # link name
            b"ustar  \0",  # GNU magic and version
            b"root".ljust(32, b"\0"),
            b"root".ljust(32, b"\0"),
        )
    ).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(fields)
    return fields[:148] + checksum + fields[156:]


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _member(parts: list[bytes], name: str, data: bytes, mode: int, kind: bytes) -> None:
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100:
        long_name = raw + b"\0"
        parts += [
            _header(b"././@LongLink", len(long_name), 0o644, b"L"),
            long_name,
            _padding(len(long_name)),
        ]
        raw = raw[:100]
    parts.append(_header(raw, len(data), mode, kind))
    if data:
        parts += [data, _padding(len(data))]


def write_tar(files: Iterable[tuple[str, bytes, int]], directories: Iterable[str] = ()) -> bytes:
    """An archive of ``directories`` (mode 0700) and then ``(name, data, mode)`` files."""
    parts: list[bytes] = []
    for directory in directories:
        _member(parts, directory + "/", b"", 0o700, b"5")
    for name, data, mode in files:
        _member(parts, name, data, mode, b"0")
    parts.append(_END)
    return b"".join(parts)


def _octal(field: bytes) -> int:
    digits = field.split(b"\0", 1)[0].strip()
    if field[:1] in (b"\x80", b"\xff"):  # base-256 sizes: leave them to tarfile
        raise _Unusual("binary number")
    return int(digits, 8) if digits else 0


def read_files(archive: bytes) -> dict[str, bytes]:
    """Every regular file of ``archive`` by name (a leading ``./`` removed).

    Raises `tarfile.TarError` when the data is not a tar archive."""
    if not archive:
        raise tarfile.ReadError("empty file")
    try:
        return _read_simple(archive)
    except _Unusual:
        return _read_with_tarfile(archive)
    except ValueError as exc:
        raise tarfile.ReadError(f"not a complete tar archive: {exc}") from None


def _read_simple(archive: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    offset = 0
    long_name: bytes | None = None
    view = memoryview(archive)
    while offset + BLOCK <= len(archive):
        header = archive[offset : offset + BLOCK]
        if header == b"\0" * BLOCK:
            return files
        stored = _octal(header[148:156])
        if stored != sum(header[:148]) + 256 + sum(header[156:]):
            raise ValueError("bad checksum")
        size = _octal(header[124:136])
        kind = header[156:157]
        start = offset + BLOCK
        end = start + size
        if end > len(archive):
            raise ValueError("truncated archive")
        offset = end + (-size % BLOCK)
        if kind == b"L":
            long_name = bytes(view[start:end]).rstrip(b"\0")
            continue
        name = long_name if long_name is not None else _ustar_name(header)
        long_name = None
        if kind in (b"0", b"\0", b"7"):
            files[name.decode("utf-8", "surrogateescape").removeprefix("./")] = bytes(
                view[start:end]
            )
        elif kind not in (b"5", b"1", b"2"):
            raise _Unusual(kind)
    raise ValueError("no end-of-archive blocks")


def _ustar_name(header: bytes) -> bytes:
    name = header[:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar" and header[262:263] == b"\0":  # POSIX: name prefix
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            return prefix + b"/" + name
    return name


def _read_with_tarfile(archive: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[member.name.removeprefix("./")] = extracted.read()
    return files
