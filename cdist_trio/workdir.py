"""The local working directory ``$__global`` of one host run, in cdist's layout (spec §5.2).

Creates the tree, merges the conf dirs by symlinking their entries (later dirs win per
top-level entry, spec §5.3) and puts one emulator launcher per type into ``bin/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .emulator_server import launcher_text
from .errors import CdistError

CONF_SUBDIRS = ("explorer", "files", "manifest", "type")
_MARKER_ALPHABET = string.ascii_lowercase + string.digits + "_"


def host_dir_name(host: str) -> str:
    """The MD5 hex digest of the host string as given (spec §1)."""
    return hashlib.md5(host.encode(), usedforsecurity=False).hexdigest()


def new_object_marker() -> str:
    return ".cdist-" + "".join(secrets.choice(_MARKER_ALPHABET) for _ in range(8))


def distribution_conf_dir() -> Path:
    """Our own conf dir, shipped in the package and merged first."""
    return Path(str(resources.files("cdist_trio") / "conf"))


def conf_dir_order(extra: Sequence[Path], home: str | None) -> list[Path]:
    """Conf dirs in merge order: ours, ``~/.cdist``, then the configured ones; no repeats."""
    dirs = [distribution_conf_dir()]
    if home:
        dirs.append(Path(home) / ".cdist")
    dirs.extend(Path(d) for d in extra)
    seen: dict[str, Path] = {}
    for d in dirs:
        seen.setdefault(str(d.absolute()), d.absolute())
    return list(seen.values())


@dataclass(frozen=True)
class WorkDir:
    """Paths of one host's ``$__global`` tree."""

    path: Path
    marker: str

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def conf(self) -> Path:
        return self.path / "conf"

    @property
    def type_base(self) -> Path:
        return self.conf / "type"

    @property
    def explorer_out(self) -> Path:
        return self.path / "explorer"

    @property
    def object_base(self) -> Path:
        return self.path / "object"

    @property
    def messages(self) -> Path:
        return self.path / "messages"

    def stream(self, kind: str, name: str) -> Path:
        """``$G/stdout/<name>`` or ``$G/stderr/<name>`` (init, remote, local)."""
        return self.path / kind / name

    def global_explorers(self) -> list[str]:
        directory = self.conf / "explorer"
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def create_workdir(
    path: Path, conf_dirs: Sequence[Path], log: logging.LoggerAdapter[logging.Logger]
) -> WorkDir:
    """Lay out ``$G`` at ``path``: directories, marker, merged conf, emulator launchers."""
    marker = new_object_marker()
    for sub in ("bin", "explorer", "object", "stdout", "stderr"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for sub in CONF_SUBDIRS:
        (path / "conf" / sub).mkdir(parents=True, exist_ok=True)
    (path / "messages").touch()
    (path / "object_marker").write_text(marker + "\n")
    workdir = WorkDir(path, marker)
    _merge_conf_dirs(workdir, conf_dirs)
    _check_types_and_write_launchers(workdir, log)
    return workdir


def _merge_conf_dirs(workdir: WorkDir, conf_dirs: Sequence[Path]) -> None:
    """Link every entry of the conf dirs' sub dirs into ``$G/conf``, later dirs winning
    per name: the merge is made on names first, so each link is made once."""
    merged: dict[str, dict[str, str]] = {sub: {} for sub in CONF_SUBDIRS}
    for conf_dir in conf_dirs:
        base = str(conf_dir.absolute())
        for sub in CONF_SUBDIRS:
            source_dir = os.path.join(base, sub)
            try:
                names = os.listdir(source_dir)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise CdistError(
                    f"Cannot read conf dir {source_dir}: {exc.strerror}; make it readable "
                    "or leave its conf dir out"
                ) from exc
            entries = merged[sub]
            for name in names:
                entries[name] = os.path.join(source_dir, name)
    conf = str(workdir.conf)
    for sub, entries in merged.items():
        for name in sorted(entries):
            source, link = entries[name], os.path.join(conf, sub, name)
            try:
                try:
                    os.symlink(source, link)
                except FileExistsError:  # a reused out dir (-o): replace
                    os.unlink(link)
                    os.symlink(source, link)
            except OSError as exc:
                raise CdistError(f"Linking {sub} {source} to {link} failed: {exc}") from exc


def _check_types_and_write_launchers(
    workdir: WorkDir, log: logging.LoggerAdapter[logging.Logger]
) -> None:
    """Drop type entries that are not directories (with cdist's warning) and give every
    type a launcher in ``bin/``: a small sh script instead of a symlink to our
    executable, which names the type and takes the engine's fast path when one serves
    the host."""
    type_base, bin_dir = str(workdir.type_base), str(workdir.bin)
    for name in sorted(os.listdir(type_base)):
        if name.startswith("."):
            continue
        entry = os.path.join(type_base, name)
        if not os.path.isdir(entry):
            log.warning(
                "Ignoring invalid type '%s' at '%s' defined at '%s'",
                name,
                entry,
                os.path.realpath(entry),
            )
            os.unlink(entry)
            continue
        launcher = os.open(
            os.path.join(bin_dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755
        )
        try:
            os.write(launcher, launcher_text(name).encode())
            os.fchmod(launcher, 0o755)  # whatever the umask
        finally:
            os.close(launcher)
