"""cdist's line-list files (``require``, ``typeorder``, ``source``...): read and append.

Appends are one ``write`` on an ``O_APPEND`` descriptor, safe across concurrent processes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from .smallfiles import read_text


def split_lines(text: str) -> list[str]:
    """Lines of a list file: ``"a\\nb\\n"`` → ``["a", "b"]``, ``""`` → ``[]``."""
    if not text:
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def read_lines(path: Path | str) -> list[str]:
    """The lines of ``path``; ``[]`` when it does not exist."""
    try:
        return split_lines(read_text(path))
    except FileNotFoundError:
        return []


def append_lines(path: Path | str, lines: Iterable[str]) -> None:
    """Append ``lines`` with a single write, so concurrent writers never interleave."""
    data = "".join(f"{line}\n" for line in lines).encode()
    if not data:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append_unique(path: Path | str, line: str) -> None:
    """Append ``line`` unless present; an flock on the file makes check-and-append atomic."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        if line not in split_lines(b"".join(chunks).decode()):
            os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)
