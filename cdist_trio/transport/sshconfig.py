"""An ssh_config read once per run and cut down, per host, to the lines that can apply.

asyncssh reads and tokenizes the whole ssh_config for every connection it opens, so a
run over the hosts of a generated config (one ``Host`` block each) costs time that grows
with the square of the fleet: 57 to 72 ms per connection for a 1,000-host file here,
a minute of CPU for the run.  `ConfigCuts` reads the file once and gives asyncssh, per
host, a copy with only the lines before the first ``Host``, and the ``Host`` blocks whose
patterns might match that host: asyncssh applies a block only when its ``Host`` line
matches (it still checks every block it is given), so what it ends up with is the same.

The cut is conservative.  A block stays when any pattern on its ``Host`` line, negated
ones included, matches the host name ignoring case.  A file that the cut could not
reproduce exactly is given whole: one with ``Match`` (conditions beyond the host name),
``Include`` (more files, relative to the original), ``CanonicalizeHostname`` (the blocks
are read again for the canonical name), or a line that does not tokenize (asyncssh then
reports it, as it would have).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

#: Keywords after which the cut could change what asyncssh makes of the file.
_UNCUTTABLE = frozenset({"match", "include", "canonicalizehostname"})

#: A wildcard pattern: ``*`` and ``?``; anything else in a host pattern is literal.
_WILDCARD = re.compile(r"[*?]")


@dataclass
class _Block:
    patterns: tuple[str, ...]
    """Lowercase patterns of its ``Host`` line, without their ``!``."""
    lines: list[str]


def _keyword_and_args(line: str) -> tuple[str, list[str]]:
    """The option name (lowercase) and its arguments, ``Key value`` or ``Key=value``.
    Raises ValueError for a line that does not tokenize."""
    words = shlex.split(line)
    if not words:
        raise ValueError(line)
    first, rest = words[0], words[1:]
    if "=" in first:
        first, _, value = first.partition("=")
        rest = [value, *rest] if value else rest
    elif rest and rest[0].startswith("="):
        value = rest[0][1:]
        rest = [value, *rest[1:]] if value else rest[1:]
    return first.lower(), rest


def _host_patterns(args: list[str]) -> tuple[str, ...]:
    patterns = []
    for arg in args:
        for pattern in re.split(r"[,=]", arg):
            pattern = pattern.lstrip("!").lower()
            if pattern:
                patterns.append(pattern)
    return tuple(patterns)


def _literal(pattern: str) -> str:
    """``pattern`` for `fnmatchcase` with only ``*`` and ``?`` special."""
    return re.sub(r"([\[\]])", r"[\1]", pattern)


class ConfigCuts:
    """One ssh_config file, and the cut copies made of it in ``directory``."""

    def __init__(self, path: Path, directory: Path) -> None:
        self.path = path
        self.directory = directory
        self._head: tuple[str, ...] = ()
        self._blocks: list[_Block] = []
        self._by_name: dict[str, list[int]] = {}
        self._wild: list[int] = []
        self._cuts: dict[tuple[int, ...], Path] = {}
        self.cuttable = self._read()

    def _read(self) -> bool:
        try:
            # as asyncssh reads it: the locale's encoding, strictly, universal newlines
            text = self.path.read_text()
        except (OSError, ValueError):
            return False  # asyncssh says what is wrong with it
        head: list[str] = []
        current: list[str] = head
        lines = text.split("\n")  # only "\n" ends a line, as in asyncssh's reading
        if lines[-1] == "":
            lines.pop()
        for line in lines:
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                try:
                    keyword, args = _keyword_and_args(stripped)
                except ValueError:
                    return False
                if keyword in _UNCUTTABLE:
                    return False
                if keyword == "host":
                    patterns = _host_patterns(args)
                    if not patterns:
                        return False
                    current = []
                    self._add_block(_Block(patterns, current))
            current.append(line + "\n")
        self._head = tuple(head)
        return True

    def _add_block(self, block: _Block) -> None:
        """Index ``block`` (its lines are added as the file is read on)."""
        index = len(self._blocks)
        self._blocks.append(block)
        if any(_WILDCARD.search(p) for p in block.patterns):
            self._wild.append(index)
        else:
            for pattern in set(block.patterns):
                self._by_name.setdefault(pattern, []).append(index)

    def path_for(self, host: str) -> Path:
        """A file that gives ``host`` what the whole file would (the file itself when
        it cannot be cut)."""
        if not self.cuttable:
            return self.path
        name = host.lower()
        chosen = set(self._by_name.get(name, ()))
        for index in self._wild:
            if any(fnmatchcase(name, _literal(p)) for p in self._blocks[index].patterns):
                chosen.add(index)
        key = tuple(sorted(chosen))
        cut = self._cuts.get(key)
        if cut is None:
            cut = self.directory / f"ssh_config.{len(self._cuts)}"
            parts = [*self._head]
            for index in key:
                parts.extend(self._blocks[index].lines)
            cut.write_text("".join(parts))
            self._cuts[key] = cut
        return cut
