"""Target hosts from the command line and from hosts files (cdist-spec §2.3).

One host per line, ``#`` starts a comment anywhere, blank lines are skipped, ``-`` reads
standard input.  Bad host strings are reported with their file and line number.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from cdist_trio.errors import HostsFileError, UserError
from cdist_trio.log import get_logger

__all__ = ["HostSpec", "check_host", "read_hosts"]

_log = get_logger("hosts")

STDIN = "-"


@dataclass(frozen=True)
class HostSpec:
    """One target host.  ``name`` is the host string exactly as given (``__target_host``)."""

    name: str


def check_host(name: str) -> str | None:
    """Why ``name`` cannot be a target host (whitespace or control characters inside,
    a leading ``-``, empty), or None when it can."""
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-' (it would be read as an ssh option)"
    for char in name:
        if char.isspace():
            return f"it contains whitespace ({char!r})"
        if unicodedata.category(char) in ("Cc", "Cf"):
            return f"it contains the control character {char!r}"
    return None


def _lines(source: str, stdin: TextIO) -> list[str]:
    try:
        if source == STDIN:
            return stdin.read().splitlines()
        with open(source, encoding="utf-8") as file:
            return file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HostsFileError(f"Error reading hosts from '{source}': {reason}") from None


def _file_hosts(source: str, stdin: TextIO) -> Iterable[tuple[str, str]]:
    """(host, where) pairs of one hosts file, ``where`` naming its file and line."""
    for number, line in enumerate(_lines(source, stdin), start=1):
        host = line.split("#", 1)[0].strip()
        if not host:
            continue
        problem = check_host(host)
        if problem:
            raise HostsFileError(
                f"Error reading hosts from '{source}': line {number}: {host!r} is not a "
                f"valid host because {problem}; write one host per line ('#' starts a comment)"
            )
        yield host, f"'{source}' line {number}"


def read_hosts(cli_hosts: Sequence[str], files: Sequence[str], stdin: TextIO) -> list[HostSpec]:
    """The target hosts in order: ``cli_hosts`` first, then each file's hosts.

    Command-line hosts are used literally (not stripped), but must pass check_host.  A
    host given twice is configured once (the first occurrence counts) and a warning is
    logged, because two concurrent runs on one host would race each other.
    Raises HostsFileError for unreadable files or bad lines, UserError when no host is left.
    """
    found: list[tuple[str, str]] = []
    for host in cli_hosts:
        problem = check_host(host)
        if problem:
            raise UserError(
                f"Target host {host!r} on the command line is not a valid host because {problem}"
            )
        found.append((host, "the command line"))
    for source in files:
        found.extend(_file_hosts(source, stdin))
    hosts: dict[str, str] = {}
    for host, where in found:
        if host in hosts:
            _log.warning(
                "Host %s given more than once (%s, again in %s): configuring it once",
                host,
                hosts[host],
                where,
            )
            continue
        hosts[host] = where
    if not hosts:
        if files:
            names = ", ".join(f"'{source}'" for source in files)
            raise UserError(f"Target host(s) missing: no host in {names}")
        raise UserError("Target host(s) missing")
    return [HostSpec(host) for host in hosts]
