"""The emulator as a real process: ``python -m cdist_trio.emulator`` and the $G/bin wrapper."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import EmulatorSite


@pytest.fixture
def site_with_types(site: EmulatorSite) -> EmulatorSite:
    site.add_type("__file", required=["mode"], boolean=["force"])
    site.add_type("__parent")
    return site


def _install_wrappers(site: EmulatorSite, *type_names: str) -> Path:
    """Write ``$G/bin/<type>`` wrappers the way the engine does."""
    bin_dir = site.global_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in type_names:
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m cdist_trio.emulator {name} "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def test_emulator_process_success_and_exit_codes(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    ok = site.run_process("__file", "/etc/x", "--mode=0644", stdin=b"data")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    obj = site.object("__file/etc/x")
    assert obj.parameters() == {"mode": "0644"}
    assert obj.stdin_path.read_bytes() == b"data"

    conflict = site.run_process("__file", "/etc/x", "--mode=0600")
    assert conflict.returncode == 1
    assert conflict.stderr.startswith("ERROR: target.example: Object __file/etc/x already exists")
    assert "Traceback" not in conflict.stderr

    usage = site.run_process("__file", "y")
    assert usage.returncode == 2
    assert usage.stderr == (
        "usage: __file --mode MODE [--force] object_id\n"
        "__file: error: the following arguments are required: --mode\n"
    )

    missing = site.run_process("__file", "y", "--mode=1", env={"__global": None})
    assert missing.returncode == 1
    assert missing.stderr == (
        "ERROR: target.example: Emulator requires the environment variable __global to be setup\n"
    )

    unknown = site.run_process("__nope", "y")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("ERROR: target.example: Invalid type '__nope'")


def test_emulator_process_without_type_name() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cdist_trio.emulator"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith(b"usage: python -m cdist_trio.emulator")


def test_emulator_process_from_a_shell_manifest(site_with_types: EmulatorSite) -> None:
    """A manifest calls types through PATH; stdin is consumed by the first call."""
    site = site_with_types
    bin_dir = _install_wrappers(site, "__file", "__parent")
    manifest = site.global_path / "manifest"
    manifest.write_text(
        "__parent p\n"
        "echo content | __file /etc/a --mode 1\n"
        "require=__parent/p __file /etc/b --mode 2 --force < /dev/null\n"
    )
    env = site.environ({"__cdist_manifest": str(manifest)})
    env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    completed = subprocess.run(
        ["/bin/sh", "-e", str(manifest)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert site.lines("typeorder") == ["__parent/p", "__file/etc/a", "__file/etc/b"]
    assert site.object("__file/etc/a").stdin_path.read_text() == "content\n"
    assert site.object("__file/etc/b").require == ["__parent/p"]
    assert site.object("__file/etc/b").source == [str(manifest)]


def test_emulator_process_concurrent_definitions(site_with_types: EmulatorSite) -> None:
    """Parallel type manifests: the same object and siblings defined at once stay consistent."""
    site = site_with_types
    assert site.run_process("__parent", "p").returncode == 0
    in_parent = {"__object_name": "__parent/p"}

    def define(index: int) -> int:
        object_id = "shared" if index % 2 else f"own{index}"
        return site.run_process("__file", object_id, "--mode=1", env=in_parent).returncode

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(define, range(16)))
    assert codes == [0] * 16
    typeorder = site.lines("typeorder")
    assert len(typeorder) == 17
    assert typeorder.count("__file/shared") == 8
    parent = site.object("__parent/p")
    assert sorted(parent.children) == sorted(
        ["__file/shared"] + [f"__file/own{index}" for index in range(0, 16, 2)]
    )
    assert len(parent.typeorder) == 16
    assert len(parent.autorequire) == 16
    shared = site.object("__file/shared")
    assert shared.parents == ["__parent/p"]
    assert len(shared.source) == 8
    assert [p.name for p in site.object_base.iterdir() if p.name.startswith(".")] == []
