"""Shared helpers for the model and emulator unit tests: fixture types and a fake $G.

Types are written into tmp dirs by the tests themselves; nothing is copied from cdist.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import pytest

from cdist_trio.emulator import main
from cdist_trio.model import CdistObject, ObjectStore, TypeRegistry

MARKER = ".cdist-t3st_mrk"


def _write_list(path: Path, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{name}\n" for name in names))


def write_type(
    type_base: Path,
    name: str,
    *,
    required: Iterable[str] = (),
    required_multiple: Iterable[str] = (),
    optional: Iterable[str] = (),
    optional_multiple: Iterable[str] = (),
    boolean: Iterable[str] = (),
    defaults: Mapping[str, str] | None = None,
    deprecated_parameters: Mapping[str, str] | None = None,
    singleton: bool = False,
    install: bool = False,
    nonparallel: bool = False,
    deprecated: str | None = None,
    explorers: Mapping[str, str] | None = None,
    scripts: Mapping[str, str] | None = None,
) -> Path:
    """Create the type directory ``<type_base>/<name>`` from keyword arguments."""
    path = type_base / name
    path.mkdir(parents=True, exist_ok=True)
    parameter = path / "parameter"
    _write_list(parameter / "required", required)
    _write_list(parameter / "required_multiple", required_multiple)
    _write_list(parameter / "optional", optional)
    _write_list(parameter / "optional_multiple", optional_multiple)
    _write_list(parameter / "boolean", boolean)
    for sub, files in (("default", defaults), ("deprecated", deprecated_parameters)):
        for file_name, content in (files or {}).items():
            (parameter / sub).mkdir(parents=True, exist_ok=True)
            (parameter / sub / file_name).write_text(content)
    for marker, present in (("singleton", singleton), ("install", install)):
        if present:
            (path / marker).write_text("")
    if nonparallel:
        (path / "nonparallel").write_text("")
    if deprecated is not None:
        (path / "deprecated").write_text(deprecated)
    for file_name, content in (explorers or {}).items():
        (path / "explorer").mkdir(exist_ok=True)
        (path / "explorer" / file_name).write_text(content)
    for file_name, content in (scripts or {}).items():
        (path / file_name).write_text(content)
    return path


@dataclass
class Result:
    """The outcome of one emulator call: exit code and the text of both streams."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class EmulatorSite:
    """A minimal ``$G`` (object/ and conf/type/) and the environment the engine gives."""

    global_path: Path
    marker: str = MARKER
    host: str = "target.example"

    @property
    def type_base(self) -> Path:
        return self.global_path / "conf" / "type"

    @property
    def object_base(self) -> Path:
        return self.global_path / "object"

    def add_type(self, name: str, **kwargs: object) -> Path:
        return write_type(self.type_base, name, **kwargs)  # type: ignore[arg-type]

    def environ(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The emulator's environment; a None value in ``extra`` removes the variable."""
        env = {
            "__global": str(self.global_path),
            "__target_host": self.host,
            "__target_hostname": self.host,
            "__target_fqdn": self.host,
            "__cdist_manifest": str(self.global_path / "conf" / "manifest" / "init"),
            "__cdist_type_base_path": str(self.type_base),
            "__cdist_object_marker": self.marker,
        }
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self,
        type_name: str,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        stdin: bytes | BinaryIO = b"",
    ) -> int:
        """Call the emulator in-process (read its output with ``capsys``)."""
        stream = io.BytesIO(stdin) if isinstance(stdin, bytes) else stdin
        return main(type_name, list(args), self.environ(env), stream)

    def run_process(
        self,
        type_name: str,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        stdin: bytes = b"",
    ) -> Result:
        """Call the emulator as ``python -m cdist_trio.emulator`` (a real process)."""
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.environ(env)}
        completed = subprocess.run(
            [sys.executable, "-m", "cdist_trio.emulator", type_name, *args],
            input=stdin,
            env=environ,
            capture_output=True,
            check=False,
            timeout=60,
        )
        return Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())

    def store(self) -> ObjectStore:
        return ObjectStore(self.object_base, self.marker, TypeRegistry(self.type_base))

    def object(self, name: str) -> CdistObject:
        return self.store().from_name(name)

    def read(self, relative: str) -> str:
        return (self.global_path / relative).read_text()

    def lines(self, relative: str) -> list[str]:
        path = self.global_path / relative
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def site(tmp_path: Path) -> EmulatorSite:
    """A fresh ``$G`` with an empty object tree and type base."""
    global_path = tmp_path / "global"
    (global_path / "object").mkdir(parents=True)
    (global_path / "conf" / "type").mkdir(parents=True)
    return EmulatorSite(global_path)


class TypeWriter(Protocol):
    """The `make_type` fixture: `write_type` with the type base defaulting to a tmp dir."""

    def __call__(self, name: str, *, base: Path | None = None, **kwargs: object) -> Path: ...


@pytest.fixture
def make_type(tmp_path: Path) -> TypeWriter:
    """Write a fixture type (see `write_type`) below ``tmp_path/types`` or ``base``."""

    def make(name: str, *, base: Path | None = None, **kwargs: object) -> Path:
        return write_type(base or tmp_path / "types", name, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def type_base(tmp_path: Path) -> Path:
    """Where `make_type` writes types by default."""
    path = tmp_path / "types"
    path.mkdir(exist_ok=True)
    return path
