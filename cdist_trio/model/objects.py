"""cdist objects in their on-disk layout ``<object_base>/<type>/<id>/<marker>/`` (spec §1, §14).

`CdistObject` reads and writes one object's files; `ObjectStore` finds and names objects.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from ..errors import IllegalObjectIdError
from .cdist_type import CdistType, TypeRegistry
from .ids import split_object_name, validate_object_id
from .lines import append_lines, append_unique, read_lines, split_lines
from .smallfiles import read_text, write_text

ParameterValue = str | list[str]


class State(StrEnum):
    """Values of ``<objdir>/state``; UNDEFINED is the missing file."""

    UNDEFINED = ""
    PREPARED = "prepared"
    DONE = "done"


PREPARED = State.PREPARED
DONE = State.DONE

_CODE_FILES = ("code-local", "code-remote")


def _subpath(name: str) -> functools.cached_property[Path]:
    """``self.path / name``, computed once per object."""

    def get(self: CdistObject) -> Path:
        return self.path / name

    return functools.cached_property(get)


class CdistObject:
    """One object of a type; every accessor reads or writes its files on each call.

    Line-list files go through `lines`: concurrent emulator processes can append safely.
    """

    def __init__(
        self, cdist_type: CdistType, object_id: str, object_base: Path, marker: str
    ) -> None:
        self.cdist_type = cdist_type
        self.object_id = object_id
        self.object_base = object_base
        self.marker = marker
        self.name = f"{cdist_type.name}/{object_id}"
        self.relative_path = "/".join(part for part in (cdist_type.name, object_id, marker) if part)
        self.path = object_base / self.relative_path
        self.directory = os.fspath(self.path)
        """`path` as a string: the object's files are opened by name many times per run,
        and joining strings costs a fraction of joining `Path` objects."""

    # The paths of the object's files, made on first use: a run makes a few objects per
    # object (store lookups, the emulator), most of which need one or two of them.
    parameter_path = _subpath("parameter")
    explorer_path = _subpath("explorer")
    files_path = _subpath("files")
    stdout_path = _subpath("stdout")
    stderr_path = _subpath("stderr")
    state_path = _subpath("state")
    stdin_path = _subpath("stdin")
    typeorder_path = _subpath("typeorder")
    typeorder_dep_path = _subpath("typeorder_dep")
    code_local_path = _subpath("code-local")
    code_remote_path = _subpath("code-remote")

    def __repr__(self) -> str:
        return f"<CdistObject {self.name}>"

    def file(self, name: str) -> str:
        """The path of the object's file (or directory) ``name``, as a string."""
        return f"{self.directory}/{name}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CdistObject):
            return NotImplemented
        return self is other or (self.name == other.name and self.path == other.path)

    def __hash__(self) -> int:
        return hash(self.path)

    # --- existence -------------------------------------------------------------------

    def exists(self) -> bool:
        """True once the object directory has been created."""
        return os.path.isdir(self.directory)

    def create(self) -> None:
        """Create the object directory and its parameter/explorer/stdout/stderr dirs.

        Never `files/`: shipped types (`__file`, `__block`, ...) create it themselves with
        a plain `mkdir "$__object/files"` under `sh -e`, which fails if it exists.
        """
        try:
            _mkdir(self.directory)
        except FileNotFoundError:  # the first object of its type, or a nested id
            os.makedirs(self.directory, exist_ok=True)
        for name in ("parameter", "explorer", "stdout", "stderr"):
            _mkdir(f"{self.directory}/{name}")

    # --- parameters ------------------------------------------------------------------

    def parameters(self) -> dict[str, ParameterValue]:
        """Read the parameters back, normalised as the emulator compares them (§6.3).

        Booleans read as ``""``; multiple-kind parameters always as a list; any other
        file with more than one line as a list too (cdist's quirk, kept on purpose).
        """
        cdist_type = self.cdist_type
        multiple = cdist_type.multiple_parameters
        result: dict[str, ParameterValue] = {}
        directory = self.file("parameter")
        for name in _visible_files(directory):
            lines = split_lines(read_text(f"{directory}/{name}"))
            if name in cdist_type.boolean:
                result[name] = ""
            elif name in multiple or len(lines) > 1:
                result[name] = lines
            else:
                result[name] = lines[0] if lines else ""
        return result

    def write_parameters(
        self, params: Mapping[str, ParameterValue], *, fresh: bool = False
    ) -> None:
        """Replace the whole parameter set with ``params`` (§6.3 steps 6 and 7).

        A list is one line per element; a scalar gets a trailing newline unless it is
        empty or has one already, so a boolean (``""``) is an empty file.  ``fresh``: the
        object was just created (`create`), so its parameter directory exists, empty.
        """
        directory = self.file("parameter")
        if not fresh:
            self.parameter_path.mkdir(parents=True, exist_ok=True)
            for name in _visible_files(directory):
                if name not in params:
                    os.unlink(f"{directory}/{name}")
        for name, value in params.items():
            if isinstance(value, list):
                content = "".join(f"{item}\n" for item in value)
            elif value and not value.endswith("\n"):
                content = f"{value}\n"
            else:
                content = value
            write_text(f"{directory}/{name}", content)

    # --- line-list files ---------------------------------------------------------------

    @property
    def require(self) -> list[str]:
        """Names this object requires (``<objdir>/require``), duplicates kept."""
        return read_lines(self.file("require"))

    def add_require(self, names: Iterable[str]) -> None:
        append_lines(self.file("require"), names)

    @property
    def autorequire(self) -> list[str]:
        """Children whose code must run before this object's (``<objdir>/autorequire``)."""
        return read_lines(self.file("autorequire"))

    def add_autorequire(self, names: Iterable[str]) -> None:
        append_lines(self.file("autorequire"), names)

    @property
    def parents(self) -> list[str]:
        """Objects whose type manifest defined this one."""
        return read_lines(self.file("parents"))

    def add_parent(self, name: str) -> None:
        """Record ``name`` as a parent, once."""
        append_unique(self.file("parents"), name)

    @property
    def children(self) -> list[str]:
        """Objects this object's type manifest defined."""
        return read_lines(self.file("children"))

    def add_child(self, name: str) -> None:
        """Record ``name`` as a child, once."""
        append_unique(self.file("children"), name)

    @property
    def source(self) -> list[str]:
        """The manifests that defined this object, one line per definition."""
        return read_lines(self.file("source"))

    def add_source(self, manifest: str) -> None:
        append_lines(self.file("source"), [manifest])

    @property
    def typeorder(self) -> list[str]:
        """Objects defined by this object's type manifest, in definition order."""
        return read_lines(self.file("typeorder"))

    def add_typeorder(self, name: str) -> None:
        append_lines(self.file("typeorder"), [name])

    # --- state and code ------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``""`` (undefined), ``"prepared"`` or ``"done"``; see `State`."""
        try:
            return read_text(self.file("state")).strip()
        except FileNotFoundError:
            return State.UNDEFINED

    @state.setter
    def state(self, value: str) -> None:
        if State(value):
            write_text(self.file("state"), f"{value}\n")
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file("state"))

    @property
    def code_local(self) -> str:
        """The generated local code, trailing newlines stripped; ``""`` when none."""
        return _read_code(self.file("code-local"))

    @property
    def code_remote(self) -> str:
        """The generated remote code, trailing newlines stripped; ``""`` when none."""
        return _read_code(self.file("code-remote"))

    def write_code(self, kind: str, code: str) -> None:
        """Store gencode output as ``code-local``/``code-remote`` (§5.9 step 2).

        ``kind`` is the file name or its short form ``local``/``remote``.  Empty output
        removes any old file; otherwise a trailing newline is ensured (mode 0600).
        """
        file_name = kind if kind.startswith("code-") else f"code-{kind}"
        if file_name not in _CODE_FILES:
            raise ValueError(f"invalid code kind: {kind!r}")
        path = self.file(file_name)
        if not code:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        if not code.endswith("\n"):
            code += "\n"
        write_text(path, code, 0o600)


class ObjectStore:
    """The objects below ``object_base`` (``$G/object``) for one object marker."""

    def __init__(self, object_base: Path, marker: str, types: TypeRegistry) -> None:
        self.object_base = object_base
        self.marker = marker
        self.types = types

    def object(self, type_name: str, object_id: str) -> CdistObject:
        """The object (existing or not) of ``type_name`` with ``object_id`` as given.

        Raises `InvalidTypeError`, `IllegalObjectIdError` or `MissingObjectIdError`.
        """
        cdist_type = self.types.get(type_name)
        sanitised = validate_object_id(cdist_type, object_id, self.marker)
        return CdistObject(cdist_type, sanitised, self.object_base, self.marker)

    def from_name(self, name: str) -> CdistObject:
        """The object named ``<type>/<id>`` (a requirement name; ``__single`` is fine).

        A name containing ``//`` is refused, like the id rule of cdist-spec §7.
        """
        type_name, object_id = split_object_name(name)
        if "//" in name:
            raise IllegalObjectIdError(f"Illegal object id: object_id may not contain //: {name}")
        return self.object(type_name, object_id)

    def list_objects(self) -> list[CdistObject]:
        """Every object on disk: each directory holding a ``<marker>`` child, by name."""
        found: list[CdistObject] = []
        for type_name in _visible_dirs(self.object_base):
            cdist_type = self.types.get(type_name)
            type_dir = self.object_base / type_name
            if (type_dir / self.marker).is_dir():
                found.append(CdistObject(cdist_type, "", self.object_base, self.marker))
            for object_id in self._walk_ids(type_dir, ""):
                found.append(CdistObject(cdist_type, object_id, self.object_base, self.marker))
        found.sort(key=lambda obj: obj.name)
        return found

    def _walk_ids(self, directory: Path, prefix: str) -> Iterable[str]:
        """Object ids below ``directory``; nested ids are found inside other objects too."""
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name == self.marker or not entry.is_dir(follow_symlinks=False):
                continue
            object_id = f"{prefix}{entry.name}"
            child = Path(entry.path)
            if (child / self.marker).is_dir():
                yield object_id
            yield from self._walk_ids(child, f"{object_id}/")


def _mkdir(path: str) -> None:
    """``mkdir``, an existing directory accepted (``Path.mkdir(exist_ok=True)``)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def _visible_files(directory: Path | str) -> list[str]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())


def _visible_dirs(directory: Path) -> list[str]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(
        e.name for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    )


def _read_code(path: str) -> str:
    try:
        return read_text(path).rstrip("\n")
    except FileNotFoundError:
        return ""
