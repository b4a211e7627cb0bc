"""Black-box scenario runs of ``cdist-trio config`` with the ``local`` transport.

A `Scenario` owns one test's temp tree: ``HOME`` (so the cache lands in
``<tmp>/home/.cdist/cache``), the remote dir ``-r``, the local out dir ``-o`` and a
``target`` dir for object ids that name paths.  It runs the CLI in-process
(`cdist_trio.cli.main`, streams captured at the fd level) or as a subprocess when a
test needs stdin, and hands back an `Outcome` with the exit status, both streams and a
`Cache` view of the saved ``$__global``.  The fixture conf dirs live in
``tests/fixtures/scenarios`` and are our own.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdist_trio import cli

HOST = "localhost"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
CONF = FIXTURES / "conf"
CONF_ENVDUMP = FIXTURES / "conf-envdump"
CONF_BROKEN_EXPLORER = FIXTURES / "conf-broken-explorer"


def q(value: object) -> str:
    """Shell-quote a path or word for a manifest line."""
    return shlex.quote(str(value))


def host_hash(host: str) -> str:
    return hashlib.md5(host.encode(), usedforsecurity=False).hexdigest()


class Cache:
    """The cache dir of one host (``~/.cdist/cache/<md5(host)>``), read like cdist-dump."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marker = (path / "object_marker").read_text().strip()

    def object_names(self) -> list[str]:
        """Every object in the cache, by name (``__single/`` for a singleton)."""
        base = self.path / "object"
        names = []
        for marker_dir in base.rglob(self.marker):
            relative = marker_dir.parent.relative_to(base)
            type_name, _, object_id = str(relative).partition("/")
            names.append(f"{type_name}/{object_id}")
        return sorted(names)

    def object(self, name: str) -> Path:
        """The object directory of ``name`` (``<type>/<id>``; ``__single/`` or ``__single``)."""
        return self.path / "object" / name.rstrip("/") / self.marker

    def read(self, name: str, relative: str) -> str | None:
        """Text of ``<objdir>/<relative>``, or None when the file does not exist."""
        path = self.object(name) / relative
        return path.read_text() if path.is_file() else None

    def lines(self, name: str, relative: str) -> list[str]:
        text = self.read(name, relative)
        return text.splitlines() if text is not None else []

    def parameters(self, name: str) -> dict[str, str]:
        """Every parameter file of the object with its exact content."""
        directory = self.object(name) / "parameter"
        return {p.name: p.read_text() for p in sorted(directory.iterdir())}

    def global_lines(self, relative: str) -> list[str]:
        path = self.path / relative
        return path.read_text().splitlines() if path.is_file() else []


@dataclass
class Outcome:
    """What one ``config`` run left: exit status, its streams, the host's cache if saved."""

    status: int
    stdout: str
    stderr: str
    cache_root: Path

    def cache(self, host: str = HOST) -> Cache:
        path = self.cache_root / host_hash(host)
        assert path.is_dir(), f"no cache for {host}:\n{self.stdout}\n{self.stderr}"
        return Cache(path)

    def has_cache(self, host: str = HOST) -> bool:
        return (self.cache_root / host_hash(host)).is_dir()

    def ok(self) -> Outcome:
        """Assert success (showing both streams otherwise) and return self."""
        assert self.status == 0, f"exit {self.status}\n{self.stdout}\n{self.stderr}"
        return self


class Scenario:
    """One test's temp tree and the CLI runs in it."""

    def __init__(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
    ) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.remote = tmp_path / "remote"
        self.out = tmp_path / "out"
        self.target = tmp_path / "target"
        self.log = tmp_path / "order.log"
        for directory in (self.home, self.target):
            directory.mkdir()
        self._capfd = capfd
        self._count = 0
        for name in list(os.environ):
            if name.startswith(("CDIST_", "__")) or name in ("require", "NO_COLOR"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(self.home / ".config"))

    @property
    def cache_root(self) -> Path:
        return self.home / ".cdist" / "cache"

    def manifest(self, text: str) -> Path:
        """Write an initial manifest (a new file per call) and return its path.

        The ``config`` methods do this for a str manifest, except ``"-"`` (stdin)."""
        self._count += 1
        path = self.tmp / f"manifest-{self._count}"
        path.write_text(text)
        return path

    def argv(
        self,
        manifest: str | Path | None,
        *options: str,
        conf: Sequence[Path] = (CONF,),
        hosts: Sequence[str] = (HOST,),
    ) -> list[str]:
        argv = ["config", "--transport", "local", "-r", str(self.remote), "-o", str(self.out)]
        for conf_dir in conf:
            argv += ["-c", str(conf_dir)]
        if manifest is not None:
            argv += ["-i", str(manifest)]
        return [*argv, *options, "--", *hosts]

    def config(
        self,
        manifest: str | Path | None,
        *options: str,
        conf: Sequence[Path] = (CONF,),
        hosts: Sequence[str] = (HOST,),
    ) -> Outcome:
        """Run ``cdist-trio config`` in-process; a str manifest is written to a file first."""
        if isinstance(manifest, str) and manifest != "-":
            manifest = self.manifest(manifest)
        self._capfd.readouterr()
        status = cli.main(self.argv(manifest, *options, conf=conf, hosts=hosts))
        captured = self._capfd.readouterr()
        return Outcome(status, captured.out, captured.err, self.cache_root)

    def config_process(
        self,
        manifest: str | Path | None,
        *options: str,
        stdin: bytes = b"",
        conf: Sequence[Path] = (CONF,),
        hosts: Sequence[str] = (HOST,),
    ) -> Outcome:
        """Run ``python -m cdist_trio config`` as a child process fed ``stdin``."""
        if isinstance(manifest, str) and manifest != "-":
            manifest = self.manifest(manifest)
        argv = [sys.executable, "-m", "cdist_trio", *self.argv(manifest, *options, conf=conf)]
        if hosts != (HOST,):
            argv = [*argv[: argv.index("--") + 1], *hosts]
        completed = subprocess.run(
            argv, input=stdin, capture_output=True, check=False, timeout=60, env=dict(os.environ)
        )
        return Outcome(
            completed.returncode,
            completed.stdout.decode(errors="replace"),
            completed.stderr.decode(errors="replace"),
            self.cache_root,
        )

    def workdir(self, host: str = HOST) -> Path:
        """A host's ``$__global`` under ``-o``: kept there when the host failed."""
        return self.out / host_hash(host) / "data"

    def log_lines(self) -> list[str]:
        """Lines the objects' code appended to the shared order log (empty if none)."""
        return self.log.read_text().splitlines() if self.log.exists() else []
