"""Whole small files read and written with one ``open`` each, as `pathlib.Path` would.

A run reads and writes some 30 small files per object (parameters, requirement lists,
code, state, explorer output, the files of a batch).  ``Path.read_text`` builds a
buffered text stream for each: eight system calls (``fstat``, an ``isatty`` ioctl, two
``lseek``) and 9 µs here; ``os.open`` + ``os.read`` until the end + ``os.close`` is four
and 3 µs.  The results are the same as pathlib's: text in the locale's encoding, strict,
with universal newlines (``\\r\\n`` and ``\\r`` read as ``\\n``); a file written is
created with mode 0666 minus the umask and truncated; errors are the same ``OSError``
subclasses.
"""

from __future__ import annotations

import locale
import os
from pathlib import Path

_CHUNK = 1 << 16


def read_bytes(path: Path | str) -> bytes:
    """The whole content of ``path``, as ``Path.read_bytes``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_text(path: Path | str) -> str:
    """The whole content of ``path`` as text, as ``Path.read_text()``."""
    text = read_bytes(path).decode(locale.getpreferredencoding(False))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def write_bytes(path: Path | str, data: bytes, mode: int = 0o666) -> None:
    """Create or truncate ``path`` and write ``data``, as ``Path.write_bytes``; a file
    created gets ``mode`` minus the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_text(path: Path | str, text: str, mode: int = 0o666) -> None:
    """Create or truncate ``path`` and write ``text``, as ``Path.write_text``."""
    write_bytes(path, text.encode(locale.getpreferredencoding(False)), mode)
