"""``cdist-trio info``: the global explorers and types of the merged conf dirs, with their
parameters, for discovery (cdist-spec §18). Reads conf dirs only; never touches a host.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigError, InvalidTypeError
from .model.cdist_type import CdistType
from .settings import load_settings
from .workdir import conf_dir_order

__all__ = ["ConfEntry", "format_info", "main", "merged_entries"]


@dataclass(frozen=True)
class ConfEntry:
    """A global explorer or a type that won the merge, and the conf dir it came from."""

    name: str
    path: Path
    conf_dir: Path


def merged_entries(conf_dirs: Sequence[Path], subdir: str) -> dict[str, ConfEntry]:
    """Entries of ``<conf dir>/<subdir>`` merged as a run merges them (cdist-spec §5.3):
    later conf dirs win per top-level entry; hidden entries are ignored."""
    merged: dict[str, ConfEntry] = {}
    for conf_dir in conf_dirs:
        directory = conf_dir / subdir
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if not name.startswith("."):
                merged[name] = ConfEntry(name, directory / name, conf_dir)
    return merged


def _pattern_matcher(pattern: str | None) -> Any:
    """cdist's rule: a pattern without glob characters matches as ``*pattern*``."""
    if not pattern:
        return lambda name: True
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def _type_lines(cdist_type: CdistType) -> list[str]:
    lines: list[str] = []
    markers = [
        marker
        for marker, present in (
            ("singleton", cdist_type.singleton),
            ("nonparallel", cdist_type.nonparallel),
            ("install", cdist_type.install),
            ("deprecated", cdist_type.deprecated is not None),
        )
        if present
    ]
    if markers:
        lines.append(f"markers: {', '.join(markers)}")
    for kind in ("required", "required_multiple", "optional", "optional_multiple", "boolean"):
        names: tuple[str, ...] = getattr(cdist_type, kind)
        if names:
            described = []
            for name in names:
                default = cdist_type.defaults.get(name)
                if default is not None:
                    name = f"{name} (default: {default.strip()!r})"
                if name in cdist_type.deprecated_parameters:
                    name = f"{name} (deprecated)"
                described.append(name)
            lines.append(f"{kind.replace('_', ' ')}: {', '.join(described)}")
    if cdist_type.explorers:
        lines.append(f"explorers: {', '.join(cdist_type.explorers)}")
    return lines


def format_info(conf_dirs: Sequence[Path], pattern: str | None = None) -> str:
    """The listing: global explorers, then types with their parameters, sorted by name."""
    matches = _pattern_matcher(pattern)
    out: list[str] = ["conf dirs (later ones win):"]
    out += [f"  {conf_dir}" for conf_dir in conf_dirs]
    explorers = merged_entries(conf_dirs, "explorer")
    out.append("")
    out.append("global explorers:")
    for name in sorted(explorers):
        entry = explorers[name]
        if matches(name) and entry.path.is_file():
            out.append(f"  {name:<24} {entry.path}")
    types = merged_entries(conf_dirs, "type")
    out.append("")
    out.append("types:")
    for name in sorted(types):
        entry = types[name]
        if not matches(name) or not entry.path.is_dir():
            continue
        try:
            cdist_type = CdistType.load(entry.path.parent, name)
        except (InvalidTypeError, OSError, UnicodeDecodeError) as exc:
            out.append(f"  {name:<24} {entry.path}")
            out.append(f"      cannot read it: {exc}")
            continue
        out.append(f"  {name:<24} {entry.path}")
        out += [f"      {line}" for line in _type_lines(cdist_type)]
    return "\n".join(out) + "\n"


def main(args: Mapping[str, Any], *, stdout: TextIO | None = None) -> int:
    """The ``info`` command, given docopt's parsed arguments: ``-c DIR`` (repeatable),
    ``-g FILE`` and an optional ``<pattern>``. Conf dirs come from the same sources as
    for ``config`` (ours, ``~/.cdist``, cdist.cfg's conf_dir, CDIST_PATH, then ``-c``)."""
    conf_dirs = tuple(Path(d) for d in args.get("--conf-dir") or ())
    for conf_dir in conf_dirs:
        if not conf_dir.is_dir():
            raise ConfigError(
                f"-c/--conf-dir: '{conf_dir}' is not a directory; "
                "give an existing conf dir (with type/, explorer/, ...)"
            )
    config_file = args.get("--config-file")
    home = os.environ.get("HOME") or None
    settings = load_settings(
        {"conf_dirs": conf_dirs} if conf_dirs else {},
        os.environ,
        home=Path(home) if home else None,
        config_file=Path(config_file) if isinstance(config_file, str) else None,
    )
    pattern = args.get("<pattern>")
    text = format_info(
        conf_dir_order(settings.conf_dirs, home), pattern if isinstance(pattern, str) else None
    )
    (stdout or sys.stdout).write(text)
    return 0
