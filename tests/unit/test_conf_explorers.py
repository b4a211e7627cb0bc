"""Sanity checks for the bundled conf dir: global explorers and script hygiene."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "cdist_trio" / "conf"
EXPLORERS = CONF / "explorer"
TYPES = CONF / "type"

SHELLS = [
    s for s in (["dash"], ["bash", "--posix"], ["busybox", "sh"], ["/bin/sh"]) if shutil.which(s[0])
]


def run_explorer(name: str, shell: list[str] | None = None) -> str:
    proc = subprocess.run(
        [*(shell or ["/bin/sh"]), "-e", str(EXPLORERS / name)],
        env={**os.environ, "__explorer": str(EXPLORERS)},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def all_scripts() -> list[Path]:
    scripts = [p for p in EXPLORERS.iterdir() if not p.name.startswith(".")]
    for type_dir in TYPES.iterdir():
        for name in ("manifest", "gencode-local", "gencode-remote"):
            if (type_dir / name).exists():
                scripts.append(type_dir / name)
        if (type_dir / "explorer").is_dir():
            scripts.extend(p for p in (type_dir / "explorer").iterdir())
    return sorted(scripts)


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_every_global_explorer_runs(shell: list[str]) -> None:
    for script in sorted(EXPLORERS.iterdir()):
        out = run_explorer(script.name, shell)
        assert out.endswith("\n") or out == "", script.name


def test_kernel_name_and_machine() -> None:
    assert run_explorer("kernel_name").strip() == platform.uname().system
    assert run_explorer("machine").strip() == platform.uname().machine


def test_hostname() -> None:
    assert run_explorer("hostname").strip() == platform.uname().node


def test_os_is_one_lowercase_word() -> None:
    out = run_explorer("os")
    assert out.endswith("\n")
    word = out.strip()
    assert word
    assert word == word.lower()
    assert len(word.split()) == 1
    if Path("/etc/debian_version").exists() and not Path("/etc/os-release").exists():
        assert word in {"debian", "ubuntu", "devuan"}


def test_os_matches_os_release() -> None:
    path = Path("/etc/os-release")
    if not path.exists():
        pytest.skip("no /etc/os-release here")
    ids = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        ids[key] = value.strip("\"'").lower()
    known = {"debian", "ubuntu", "devuan", "alpine", "centos", "fedora"}
    if ids.get("ID") in known:
        assert run_explorer("os").strip() == ids["ID"]


def test_os_version_not_empty() -> None:
    assert run_explorer("os_version").strip()


def test_numeric_explorers() -> None:
    if (EXPLORERS / "cpu_cores").exists():
        assert int(run_explorer("cpu_cores")) >= 1
    if (EXPLORERS / "memory").exists():
        assert int(run_explorer("memory")) > 0


def test_scripts_are_executable_sh() -> None:
    scripts = all_scripts()
    assert scripts
    for script in scripts:
        assert script.is_file(), script
        assert os.access(script, os.X_OK), f"{script} is not executable"
        first = script.read_text().splitlines()[0]
        assert first == "#!/bin/sh -e", f"{script}: {first!r}"


def test_scripts_have_no_bash_only_syntax() -> None:
    bashisms = re.compile(
        r"^\s*(local|declare|typeset|source)\s|\[\[\s|<<<|\$'|&>"
        r"|^\s*function\s+[\w-]+\s*(\(\s*\))?\s*\{?\s*$"
    )
    for script in all_scripts():
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            assert not bashisms.search(line), f"{script}:{number}: {line}"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_shellcheck() -> None:
    # SC2154: the engine provides __object, __explorer and friends
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", "-e", "SC2154", *map(str, all_scripts())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_scripts_parse(shell: list[str]) -> None:
    if shell[0] == "bash":
        shell = ["bash"]
    for script in all_scripts():
        proc = subprocess.run(
            [*shell, "-n", str(script)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_type_layout() -> None:
    types = [d for d in TYPES.iterdir() if not d.name.startswith(".")]
    assert types
    allowed = {
        "manifest",
        "gencode-local",
        "gencode-remote",
        "explorer",
        "parameter",
        "singleton",
        "nonparallel",
        "install",
        "deprecated",
        "files",
        "man.rst",
    }
    for type_dir in types:
        assert type_dir.name.startswith("__"), type_dir
        assert (type_dir / "man.rst").is_file(), f"{type_dir.name} has no man.rst"
        assert set(os.listdir(type_dir)) <= allowed, type_dir
        params = type_dir / "parameter"
        declared: dict[str, set[str]] = {}
        if params.is_dir():
            for kind in (
                "required",
                "optional",
                "boolean",
                "required_multiple",
                "optional_multiple",
            ):
                path = params / kind
                if path.exists():
                    names = {n.strip() for n in path.read_text().splitlines() if n.strip()}
                    declared[kind] = names
            everything = [n for names in declared.values() for n in names]
            assert len(everything) == len(set(everything)), f"{type_dir.name}: duplicates"
            defaults = params / "default"
            if defaults.is_dir():
                optional = declared.get("optional", set()) | declared.get(
                    "optional_multiple", set()
                )
                for d in defaults.iterdir():
                    assert d.name in optional, f"{type_dir.name}: default for {d.name}"
        explorer_dir = type_dir / "explorer"
        if explorer_dir.is_dir():
            assert all(p.is_file() for p in explorer_dir.iterdir()), "explorer subdirs"
        for marker in ("singleton", "nonparallel"):
            if (type_dir / marker).exists():
                assert (type_dir / marker).is_file()
