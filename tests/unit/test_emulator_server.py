"""The emulator's fast path: type calls served by the engine over a unix socket behave
exactly like the emulator process (exit codes, messages, stdin capture, objects)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import trio

from cdist_trio.emulator_server import launcher_text, open_emulator_server
from tests.unit.conftest import EmulatorSite


def _launcher(site: EmulatorSite, type_name: str) -> Path:
    path = site.global_path / "bin" / type_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(launcher_text(type_name))
    path.chmod(0o755)
    return path


async def _call(
    site: EmulatorSite, socket: str | None, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ["PATH"], **site.environ()}
    if socket is not None:
        env["__cdist_trio_emulator"] = socket
    with trio.fail_after(30):
        return await trio.run_process(
            [str(_launcher(site, args[0])), *args[1:]],
            stdin=stdin if stdin is not None else b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def test_emulator_server_defines_object_with_stdin(site: EmulatorSite) -> None:
    site.add_type("__file", optional=["mode", "source"])
    async with open_emulator_server() as socket:
        result = await _call(site, socket, "__file", "/etc/motd", "--mo", "0644", stdin=b"hi\n")
    assert result.returncode == 0, result.stderr
    obj = site.object("__file/etc/motd")
    assert obj.parameters() == {"mode": "0644"}
    assert (obj.path / "stdin").read_bytes() == b"hi\n"


async def test_emulator_server_reports_usage_errors_like_the_process(
    site: EmulatorSite,
) -> None:
    site.add_type("__file", optional=["mode"])
    async with open_emulator_server() as socket:
        served = await _call(site, socket, "__file", "/x", "--bogus", "1")
    direct = await _call(site, None, "__file", "/x", "--bogus", "1")
    assert served.returncode == direct.returncode == 2
    assert served.stderr == direct.stderr
    assert b"__file: error: unrecognized arguments: --bogus 1" in served.stderr


async def test_emulator_server_conflict_is_exit_1_with_one_line(site: EmulatorSite) -> None:
    site.add_type("__file", optional=["mode"])
    async with open_emulator_server() as socket:
        first = await _call(site, socket, "__file", "/x", "--mode", "1")
        second = await _call(site, socket, "__file", "/x", "--mode", "2")
    assert first.returncode == 0
    assert second.returncode == 1
    assert second.stderr.startswith(b"ERROR: target.example: Object __file/x already exists")


async def test_emulator_launcher_falls_back_without_server(
    site: EmulatorSite, tmp_path: Path
) -> None:
    site.add_type("__dir")
    gone = str(tmp_path / "no-such-socket")
    result = await _call(site, gone, "__dir", "/srv")
    assert result.returncode == 0, result.stderr
    assert site.object("__dir/srv").exists()


async def test_emulator_server_serves_concurrent_calls(site: EmulatorSite) -> None:
    site.add_type("__dir")
    async with open_emulator_server() as socket, trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(_call, site, socket, "__dir", f"/d{i}")
    names = sorted(o.name for o in site.store().list_objects())
    assert names == sorted(f"__dir/d{i}" for i in range(12))
    assert len((site.global_path / "typeorder").read_text().splitlines()) == 12
