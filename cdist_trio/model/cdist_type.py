"""A cdist type, read once from its directory (cdist-spec §11), and a registry of them.

`CdistType` is an immutable snapshot: parameter lists, defaults, markers and scripts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..errors import InvalidTypeError

_PARAMETER_KINDS = ("required", "required_multiple", "optional", "optional_multiple", "boolean")


@dataclass(frozen=True)
class CdistType:
    """One type directory ``<type_base>/<name>``, as found when it was loaded.

    ``path`` is the (possibly symlinked) path inside ``$G/conf/type``; ``real_path``
    resolves it.  Hashing and equality leave the mappings out of the hash only.
    """

    name: str
    path: Path
    required: tuple[str, ...]
    required_multiple: tuple[str, ...]
    optional: tuple[str, ...]
    optional_multiple: tuple[str, ...]
    boolean: tuple[str, ...]
    defaults: Mapping[str, str] = field(hash=False)
    deprecated_parameters: Mapping[str, str] = field(hash=False)
    singleton: bool
    install: bool
    nonparallel: bool
    deprecated: str | None
    explorers: tuple[str, ...]
    manifest: Path | None
    gencode_local: Path | None
    gencode_remote: Path | None

    @classmethod
    def load(cls, type_base: Path, name: str) -> CdistType:
        """Read the type ``name`` below ``type_base``.

        Raises `InvalidTypeError` unless ``<type_base>/<name>`` is a directory (a type
        needs nothing else, cdist-spec §11.1).
        """
        path = type_base / name
        if not name or name.startswith(".") or "/" in name or not path.is_dir():
            raise InvalidTypeError(name, str(path), os.path.realpath(path))
        parameter_dir = path / "parameter"
        lists = {kind: _read_name_list(parameter_dir / kind) for kind in _PARAMETER_KINDS}
        return cls(
            name=name,
            path=path,
            required=lists["required"],
            required_multiple=lists["required_multiple"],
            optional=lists["optional"],
            optional_multiple=lists["optional_multiple"],
            boolean=lists["boolean"],
            defaults=_read_file_map(parameter_dir / "default"),
            deprecated_parameters=_read_file_map(parameter_dir / "deprecated"),
            singleton=(path / "singleton").is_file(),
            install=(path / "install").is_file(),
            nonparallel=(path / "nonparallel").is_file(),
            deprecated=_read_optional(path / "deprecated"),
            explorers=tuple(_visible_entries(path / "explorer", files=True)),
            manifest=_script(path / "manifest"),
            gencode_local=_script(path / "gencode-local"),
            gencode_remote=_script(path / "gencode-remote"),
        )

    @property
    def explorer_dir(self) -> Path:
        """The type's ``explorer/`` directory (it may not exist)."""
        return self.path / "explorer"

    @property
    def real_path(self) -> Path:
        """The type directory with every symlink resolved (its conf dir of origin)."""
        return self.path.resolve()

    @property
    def multiple_parameters(self) -> frozenset[str]:
        """Names of the parameters that hold a list (required_ and optional_multiple)."""
        return frozenset(self.required_multiple + self.optional_multiple)

    def __repr__(self) -> str:
        return f"<CdistType {self.name}>"


class TypeRegistry:
    """The types below one type base (``$G/conf/type``), each loaded at most once."""

    def __init__(self, type_base: Path) -> None:
        self.type_base = type_base
        self._types: dict[str, CdistType] = {}

    def get(self, name: str) -> CdistType:
        """Return the type ``name``, loading it on first use; `InvalidTypeError` if none."""
        cdist_type = self._types.get(name)
        if cdist_type is None:
            cdist_type = CdistType.load(self.type_base, name)
            self._types[name] = cdist_type
        return cdist_type

    def names(self) -> list[str]:
        """Sorted names of the type directories (hidden entries ignored)."""
        return _visible_entries(self.type_base, files=False)


def _read_name_list(path: Path) -> tuple[str, ...]:
    """Read a parameter list file: stripped lines, blanks ignored, regular files only."""
    if not path.is_file():
        return ()
    text = path.read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _read_file_map(directory: Path) -> Mapping[str, str]:
    """Map each visible regular file of ``directory`` to its raw content."""
    contents = {
        entry: (directory / entry).read_text() for entry in _visible_entries(directory, files=True)
    }
    return MappingProxyType(contents)


def _read_optional(path: Path) -> str | None:
    """The content of a marker file, or None when there is none."""
    return path.read_text() if path.is_file() else None


def _script(path: Path) -> Path | None:
    return path if path.is_file() else None


def _visible_entries(directory: Path, *, files: bool) -> list[str]:
    """Sorted non-hidden entries of ``directory`` that are files (or dirs); [] if absent."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        entry.name
        for entry in entries
        if not entry.name.startswith(".") and (entry.is_file() if files else entry.is_dir())
    )
