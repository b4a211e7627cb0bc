"""The tools under comparison and their command lines: cdist-trio (two transports) and
cdist 7.0.0, which is installed from PyPI into a Python 3.10 venv at run time.

cdist 7.0.0 is run with its own default ``ssh -o User=root ...`` and ControlMaster
options unchanged.  OpenSSH reads ``~/.ssh/config`` from the passwd entry, not from
``$HOME``, so the fleet's ssh_config is given to it through ``ssh``/``scp`` wrappers
first in ``PATH`` that only add ``-F <ssh_config>`` and ``exec`` the real binary.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CDIST_VERSION = "7.0.0"
DEFAULT_CDIST_VENV = Path(".cache") / "bench" / f"cdist-{CDIST_VERSION}"


@dataclass(frozen=True)
class Tool:
    """One column of the comparison."""

    name: str
    argv_prefix: tuple[str, ...]
    extra_env: Mapping[str, str]
    is_baseline: bool = False

    def argv(
        self, manifest: Path, hosts_file: Path, parallel: int, jobs: int, remote_out: str
    ) -> list[str]:
        return [
            *self.argv_prefix,
            "-r",
            remote_out,
            "-i",
            str(manifest),
            "-f",
            str(hosts_file),
            "-p",
            str(parallel),
            "-j",
            str(jobs),
        ]

    def env(self, home: Path, tmpdir: Path | None = None) -> dict[str, str]:
        """The environment of one run: ``$HOME`` (the cache goes there) and, if given,
        ``$TMPDIR`` (both tools' local work directory goes there)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDIST")}
        env.update(self.extra_env)
        env["HOME"] = str(home)
        if tmpdir is not None:
            env["TMPDIR"] = str(tmpdir)
        if "PATH" in self.extra_env:
            env["PATH"] = f"{self.extra_env['PATH']}{os.pathsep}{os.environ.get('PATH', '')}"
        return env


def cdist_trio_tool(transport: str, ssh_config: Path) -> Tool:
    beside = Path(sys.executable).parent / "cdist-trio"
    program = [str(beside)] if beside.is_file() else [sys.executable, "-m", "cdist_trio"]
    return Tool(
        f"cdist-trio/{transport}",
        (*program, "config", "--transport", transport, "-F", str(ssh_config)),
        {},
    )


def find_python310() -> str:
    """A Python 3.10 interpreter (cdist 7.0.0's CLI fails on >= 3.11, spec §2)."""
    candidates = [shutil.which("python3.10") or ""]
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/3.10*/bin/python3.10"), reverse=True)
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    raise RuntimeError("no Python 3.10 found (python3.10 on PATH or under pyenv)")


def ensure_cdist(venv: Path = DEFAULT_CDIST_VENV) -> Path:
    """The ``cdist`` executable of a venv holding cdist 7.0.0; created on first use."""
    program = venv / "bin" / "cdist"
    python = venv / "bin" / "python"
    if program.is_file() and _installed_version(python) == CDIST_VERSION:
        return program
    print(f"bench: installing cdist {CDIST_VERSION} into {venv} (Python 3.10)", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([find_python310(), "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"cdist=={CDIST_VERSION}"], check=True
    )
    return program


def _installed_version(python: Path) -> str | None:
    probe = subprocess.run(
        [str(python), "-c", "import cdist.version as v; print(v.VERSION)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def write_ssh_wrappers(directory: Path, ssh_config: Path) -> Path:
    """``ssh`` and ``scp`` in ``directory`` that add ``-F ssh_config``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ssh", "scp"):
        real = shutil.which(name)
        if real is None:
            raise RuntimeError(f"{name} not found on PATH")
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\nexec {real} -F "{ssh_config}" "$@"\n')
        wrapper.chmod(0o755)
    return directory


def cdist_tool(program: Path, wrappers: Path) -> Tool:
    return Tool(
        f"cdist {CDIST_VERSION}",
        (str(program), "config"),
        {"PATH": str(wrappers)},
        is_baseline=True,
    )
