"""Fixtures of the compatibility suite: cdist 7.0.0 (conf dir and CLI) and Debian targets.

Run by `nox -s compat`, which installs cdist 7.0.0 from PyPI into its environment; without
it every test here is skipped. cdist's CLI needs Python 3.10 (it fails on 3.11+), so a
second copy is installed into a Python 3.10 venv under `.cache/compat/` for the parity runs.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Fleet
from harness.plugin import FleetFactory

from .debrepo import ROOT, debian_repo_image

CDIST_VERSION = "7.0.0"
CDIST_VENV = ROOT / ".cache" / "compat" / f"cdist-{CDIST_VERSION}"


@pytest.fixture(scope="session")
def cdist_conf() -> Path:
    """cdist 7.0.0's shipped conf dir (types and global explorers), as pip installed it."""
    spec = importlib.util.find_spec("cdist")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("cdist 7.0.0 is not installed here: run `nox -s compat`")
    package = Path(next(iter(spec.submodule_search_locations)))
    version = (package / "version.py").read_text()
    if f'"{CDIST_VERSION}"' not in version and f"'{CDIST_VERSION}'" not in version:
        pytest.fail(f"cdist {CDIST_VERSION} expected, found {version.strip()}")
    return package / "conf"


def _python310() -> str:
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.10") or "", *glob.glob(f"{root}/versions/3.10*/bin/python")]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    pytest.fail("the parity runs need Python 3.10 (cdist 7.0.0's CLI fails on 3.11+)")


@pytest.fixture(scope="session")
def cdist_program(cdist_conf: Path) -> Path:
    """cdist 7.0.0's `cdist` command in a Python 3.10 venv, made on first use."""
    program = CDIST_VENV / "bin" / "cdist"
    python = CDIST_VENV / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import cdist.version as v; print(v.VERSION)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0 or probe.stdout.strip() != CDIST_VERSION:
        subprocess.run([_python310(), "-m", "venv", "--clear", str(CDIST_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"cdist=={CDIST_VERSION}"], check=True
        )
    return program


@pytest.fixture(scope="session")
def debian_pair(fleet: FleetFactory) -> Iterator[Fleet]:
    """Two identical Debian targets with the local apt repository: target-1 for
    cdist-trio, target-2 for cdist 7.0.0. (`fleet` checks that Docker answers.)"""
    with Fleet(2, flavour="debian", image=debian_repo_image()) as fleet:
        yield fleet
