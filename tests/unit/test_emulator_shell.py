"""Type calls served in-shell (`cdist_trio.emulator_shell`) leave exactly what the
emulator process leaves: the same objects, files, streams and exit codes, under dash,
bash and busybox sh; and they run no process unless stdin has to be copied."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import trio

from cdist_trio.emulator_server import launcher_text, open_emulator_server
from cdist_trio.emulator_shell import manifest_command, open_shell_channel, shell_argv
from tests.conformance import poll
from tests.unit.conftest import EmulatorSite

SHELLS = [
    pytest.param(
        ["dash"], id="dash", marks=pytest.mark.skipif(not shutil.which("dash"), reason="no dash")
    ),
    pytest.param(
        ["bash"], id="bash", marks=pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
    ),
    pytest.param(
        ["busybox", "sh"],
        id="busybox",
        marks=pytest.mark.skipif(not shutil.which("busybox"), reason="no busybox"),
    ),
]

MANIFEST = r"""
__thing plain --value 1
__thing spaced --value "two words 'quoted' \$x \\ %s"
__file /etc/heredoc --source - <<'EOF'
line one
line two
EOF
printf 'no newline' | __file /etc/piped --source -
require="__thing/plain" __thing needs-plain --value x
require="__thing/spaced"
__thing unexported-require --value x
export require="__thing/plain __file/etc/piped"
__thing exported-require --value x
unset require
CDIST_ORDER_DEPENDENCY=1 __thing order-a --value x
export CDIST_ORDER_DEPENDENCY=1
__thing order-b --value x
__thing order-c --value x
unset CDIST_ORDER_DEPENDENCY
__thing bg-1 --value x &
__thing bg-2 --value x &
wait
__thing pipe-left --value x | __file /etc/pipe-right --source -
{ printf 'first\n'; __thing pipe-mid --value x; printf 'second\n'; } |
    __file /etc/pipe-mixed --source -
__single --flag
if ! __thing bad-one --value 1 --bogus x; then echo "bad call failed with the emulator's status"; fi
__thing plain --value 2 || echo "conflict reported: $?"
echo done
"""


def _site(root: Path) -> EmulatorSite:
    site = EmulatorSite(root)
    (root / "object").mkdir(parents=True)
    site.add_type("__thing", required=["value"])
    site.add_type("__file", optional=["source", "mode"])
    site.add_type("__single", singleton=True, boolean=["flag"])
    site.add_type("__not-an-identifier", optional=["x"])
    launchers = root / "bin"
    launchers.mkdir()
    for entry in (root / "conf" / "type").iterdir():
        (launchers / entry.name).write_text(launcher_text(entry.name))
        (launchers / entry.name).chmod(0o755)
    return site


def _env(site: EmulatorSite, manifest: Path) -> dict[str, str]:
    return {
        "PATH": f"{site.global_path / 'bin'}:{os.environ['PATH']}",
        **site.environ({"__cdist_manifest": str(manifest)}),
    }


async def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            argv,
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


async def _in_shell(
    site: EmulatorSite, shell: list[str], manifest: Path, path: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = _env(site, manifest)
    if path is not None:
        env["PATH"] = path
    types = [entry.name for entry in (site.global_path / "bin").iterdir()]
    async with open_shell_channel() as channel:
        argv = manifest_command(
            [*shell, "-e"], channel, site.global_path / "bin", types, env, str(manifest)
        )
        return await _run(argv, env)


async def _by_launchers(
    site: EmulatorSite, shell: list[str], manifest: Path
) -> subprocess.CompletedProcess[bytes]:
    env = _env(site, manifest)
    async with open_emulator_server() as socket:
        env["__cdist_trio_emulator"] = socket
        return await _run([*shell, "-e", str(manifest)], env)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file below ``object/`` plus the global order files, by relative path.

    The two background calls may land in either order, in both modes alike."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and relative.parts[0] in ("object", "typeorder", "typeorder_dep"):
            files[str(relative)] = path.read_bytes()
    files["typeorder"] = files["typeorder"].replace(b"__thing/bg-2\n__thing/bg-1", b"bg")
    files["typeorder"] = files["typeorder"].replace(b"__thing/bg-1\n__thing/bg-2", b"bg")
    return files


@pytest.mark.parametrize("shell", SHELLS)
async def test_in_shell_calls_leave_what_the_emulator_process_leaves(
    tmp_path: Path, shell: list[str]
) -> None:
    manifest = tmp_path / "manifest"
    manifest.write_text(MANIFEST)
    fast_site, slow_site = _site(tmp_path / "fast"), _site(tmp_path / "slow")

    fast = await _in_shell(fast_site, shell, manifest)
    slow = await _by_launchers(slow_site, shell, manifest)

    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )
    assert fast.returncode == 0, fast.stderr
    assert b"bad call failed" in fast.stdout
    assert b"conflict reported: 1" in fast.stdout
    assert b"__thing: error: unrecognized arguments: --bogus x" in fast.stderr
    fast_tree, slow_tree = _tree(fast_site.global_path), _tree(slow_site.global_path)
    assert fast_tree == slow_tree
    # The details the comparison rests on, spelled out once.
    thing = fast_site.object("__thing/exported-require")
    assert thing.require == ["__thing/plain", "__file/etc/piped"]
    assert fast_site.object("__thing/unexported-require").require == []
    assert fast_site.object("__thing/needs-plain").require == ["__thing/plain"]
    assert fast_site.object("__thing/order-c").require == ["__thing/order-b"]
    assert (fast_site.object("__file/etc/piped").path / "stdin").read_bytes() == b"no newline"
    heredoc = fast_site.object("__file/etc/heredoc").path / "stdin"
    assert heredoc.read_bytes() == b"line one\nline two\n"
    # The writer needs the channel between its two lines: it may still be writing
    # when the call arrives, and nothing is lost or stuck either way.
    mixed = fast_site.object("__file/etc/pipe-mixed").path / "stdin"
    assert mixed.read_bytes() == b"first\nsecond\n"
    # stdin of /dev/null is saved as an empty file, as the process saves it
    assert (fast_site.object("__thing/plain").path / "stdin").read_bytes() == b""
    spaced = fast_site.object("__thing/spaced").parameters()
    assert spaced == {"value": "two words 'quoted' $x \\ %s"}


@pytest.mark.parametrize("shell", SHELLS)
async def test_in_shell_call_stops_a_set_e_manifest_with_the_emulator_status(
    tmp_path: Path, shell: list[str]
) -> None:
    manifest = tmp_path / "manifest"
    manifest.write_text("__thing a --value 1\n__thing b\necho not reached\n")
    site = _site(tmp_path / "g")
    result = await _in_shell(site, shell, manifest)
    assert result.returncode == 2
    assert b"not reached" not in result.stdout
    assert b"the following arguments are required: --value" in result.stderr
    assert site.object("__thing/a").exists()


async def test_in_shell_calls_start_no_process_without_stdin(tmp_path: Path) -> None:
    """A launcher that is used leaves a mark: identifier-named types never use theirs,
    the one type whose name is no shell identifier does."""
    site = _site(tmp_path / "g")
    marks = tmp_path / "marks"
    for launcher in (site.global_path / "bin").iterdir():
        text = launcher.read_text().replace(
            "#!/bin/sh\n", f"#!/bin/sh\necho {launcher.name} >> {marks}\n", 1
        )
        launcher.write_text(text)
    manifest = tmp_path / "manifest"
    manifest.write_text("__thing a --value 1\n__single --flag\n__not-an-identifier x --x 1\n")
    result = await _in_shell(site, ["sh"], manifest)
    assert result.returncode == 0, result.stderr
    assert marks.read_text().split() == ["__not-an-identifier"]
    assert site.object("__thing/a").exists()
    assert site.object("__not-an-identifier/x").exists()


@pytest.mark.parametrize("shell", SHELLS)
async def test_here_documents_reach_the_engine_without_a_process(
    tmp_path: Path, shell: list[str]
) -> None:
    """The engine reads a here-document straight from the manifest shell's stdin: with
    no program on PATH (no ``cat`` to copy it), content beyond a pipe's buffer arrives
    byte for byte, and the next call gets its own.  (bash writes a long here-document
    to a temporary file, not a pipe: that one is still copied by ``cat``.)"""
    lines = 10 if shell == ["bash"] else 4000
    big = "".join(f"line {i} with some text 'quoted' \\ $ %s\n" for i in range(lines))
    manifest = tmp_path / "manifest"
    manifest.write_text(
        f"__file /etc/big --source - <<'EOF'\n{big}EOF\n"
        "__file /etc/small --source - <<EOF\nvalue $((6 * 7))\nEOF\n"
        "__thing after --value x\n"
    )
    site = _site(tmp_path / "g")
    shell_path = shutil.which(shell[0])
    assert shell_path is not None
    result = await _in_shell(site, [shell_path, *shell[1:]], manifest, path="/nonexistent")
    assert result.returncode == 0, result.stderr
    assert len(big) > (1 << 17 if lines > 10 else 0)
    assert (site.object("__file/etc/big").path / "stdin").read_text() == big
    assert (site.object("__file/etc/small").path / "stdin").read_text() == "value 42\n"
    assert (site.object("__thing/after").path / "stdin").read_bytes() == b""


async def test_a_closed_channel_falls_back_to_the_launchers(tmp_path: Path) -> None:
    site = _site(tmp_path / "g")
    manifest = tmp_path / "manifest"
    manifest.write_text("__thing late --value 1\n")
    env = _env(site, manifest)
    async with open_shell_channel() as channel:
        argv = manifest_command(
            ["sh", "-e"], channel, site.global_path / "bin", ["__thing"], env, str(manifest)
        )
    result = await _run(argv, env)  # the channel is gone by now
    assert result.returncode == 0, result.stderr
    assert site.object("__thing/late").parameters() == {"value": "1"}


async def test_a_channel_whose_engine_is_gone_falls_back_instead_of_hanging(
    tmp_path: Path,
) -> None:
    """The engine was killed (SIGKILL): its channel's FIFOs are still there, held by
    nobody, so opening one would block the manifest for ever.  The call sees that the
    engine's process is gone and takes the launcher."""
    site = _site(tmp_path / "g")
    manifest = tmp_path / "manifest"
    manifest.write_text("__thing late --value 1\n")
    env = _env(site, manifest)
    channel = tmp_path / "channel"
    channel.mkdir()
    for name in ("token", "req", "resp"):
        os.mkfifo(channel / name, 0o600)
    dead = await trio.lowlevel.open_process(["true"])
    await dead.wait()  # reaped: its pid names no process
    argv = manifest_command(
        ["sh", "-e"],
        channel,
        site.global_path / "bin",
        ["__thing"],
        env,
        str(manifest),
        engine_pid=dead.pid,
    )
    result = await _run(argv, env)  # bounded: a blocked open fails the test
    assert result.returncode == 0, result.stderr
    assert site.object("__thing/late").parameters() == {"value": "1"}


@pytest.mark.parametrize(
    ("first_line", "executable", "expected"),
    [
        ("#!/bin/sh\n", True, ["/bin/sh"]),
        ("#!/bin/sh -e\n", True, ["/bin/sh", "-e"]),
        ("#! /bin/bash -ex\n", True, ["/bin/bash", "-ex"]),
        ("#!/usr/bin/env sh\n", True, None),
        ("#!/usr/bin/python3\n", True, None),
        ("#!/bin/sh -c evil\n", True, None),
        ("echo no shebang\n", True, None),
        ("#!/bin/sh\n", False, ["/bin/sh", "-e"]),
        ("anything\n", False, ["/bin/sh", "-e"]),
    ],
)
def test_shell_argv_only_takes_what_a_posix_shell_would_run(
    tmp_path: Path, first_line: str, executable: bool, expected: list[str] | None
) -> None:
    script = tmp_path / "manifest"
    script.write_text(first_line + "true\n")
    assert shell_argv(script, local_shell="/bin/sh", executable=executable) == expected


def test_shell_argv_leaves_other_local_shells_alone(tmp_path: Path) -> None:
    script = tmp_path / "manifest"
    script.write_text("true\n")
    assert shell_argv(script, local_shell="/usr/bin/python3", executable=False) is None
    assert shell_argv(script, local_shell="/bin/dash", executable=False) == ["/bin/dash", "-e"]


def test_a_pipe_whose_writer_is_not_done_is_read_as_far_as_it_goes() -> None:
    """The engine's side of a pipeline call: what is there now, and whether it is all."""
    from cdist_trio.emulator_shell import _STDIN_COPY, _read_pipe

    reader, writer = os.pipe()
    saved = os.dup(_STDIN_COPY) if _fd_open(_STDIN_COPY) else None
    os.dup2(reader, _STDIN_COPY)
    try:
        os.write(writer, b"first\n")
        assert _read_pipe(os.getpid(), wait=False) == (b"first\n", False)
        os.write(writer, b"second\n")
        os.close(writer)
        assert _read_pipe(os.getpid(), wait=False) == (b"second\n", True)
    finally:
        os.close(reader)
        if saved is None:
            os.close(_STDIN_COPY)
        else:
            os.dup2(saved, _STDIN_COPY)
            os.close(saved)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_request_with_export_p_counts_only_what_is_exported() -> None:
    from cdist_trio.emulator_shell import EMULATOR_VARIABLES, _Parser

    def request(values: dict[str, tuple[str, str]], tail: bytes) -> bytes:
        fields = [b"v2", b"1", b"", b"1", b"x"]
        for name in EMULATOR_VARIABLES:
            flag, value = values.get(name, ("0", ""))
            fields += [flag.encode(), value.encode()]
        return b"\0".join(fields) + b"\0" + tail

    exports = b"export HOME='/root'\nexport require='__a/b'\n"
    data = request(
        {"require": ("2", "__a/b"), "CDIST_ORDER_DEPENDENCY": ("2", "1")},
        b"EXP\0" + exports + b"\0",
    )
    parser = _Parser()
    # the export list is one field: nothing is complete until its NUL arrives
    cut = data.index(b"EXP\0") + 8
    assert parser.feed(data[:cut]) == []
    (call,) = parser.feed(data[cut:])
    assert call is not None
    assert call.argv == ["x"]
    assert call.environ == {"require": "__a/b"}  # CDIST_ORDER_DEPENDENCY was not exported
    (plain,) = _Parser().feed(request({"__object_name": ("1", "__t/o")}, b"END\0"))
    assert plain is not None
    assert plain.environ == {"__object_name": "__t/o"}


async def test_a_call_waiting_for_the_manifests_stdin_holds_up_no_other_manifest(
    tmp_path: Path,
) -> None:
    """A call whose stdin is the manifest shell's own pipe is answered once that pipe's
    writer is done, which may take any time; meanwhile another manifest's calls (another
    host, another object) are answered.  A safety valve closes the writer after 20 s, so
    an engine that waited on the trio thread fails here instead of hanging."""
    site = _site(tmp_path / "g")
    started = tmp_path / "started"
    waiting = tmp_path / "waiting-manifest"
    waiting.write_text(f": > {started}\n__file /etc/slow --source -\n")
    other = tmp_path / "other-manifest"
    other.write_text("__thing quick --value 1\n")
    env = _env(site, waiting)
    types = [entry.name for entry in (site.global_path / "bin").iterdir()]
    read_end, write_end = os.pipe()
    guard = threading.Lock()
    writer_open = [True]

    def close_writer(data: bytes = b"") -> None:
        with guard:
            if writer_open[0]:
                writer_open[0] = False
                if data:
                    os.write(write_end, data)
                os.close(write_end)

    valve = threading.Timer(20, close_writer)
    order: list[str] = []

    async def waiting_run() -> None:
        async with open_shell_channel() as channel:
            argv = manifest_command(
                ["sh", "-e"], channel, site.global_path / "bin", types, env, str(waiting)
            )
            result = await trio.run_process(
                argv, stdin=read_end, capture_stderr=True, check=False, env=env
            )
        assert result.returncode == 0, result.stderr
        order.append("waiting")

    async def exists() -> bool:
        return started.exists()

    valve.start()
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiting_run)
                await poll(exists)
                result = await _in_shell(site, ["sh"], other)
                assert result.returncode == 0, result.stderr
                order.append("other")
                close_writer(b"slow content\n")
    finally:
        valve.cancel()
        close_writer()
        os.close(read_end)
    assert order == ["other", "waiting"]
    assert (site.object("__file/etc/slow").path / "stdin").read_text() == "slow content\n"
    assert site.object("__thing/quick").exists()
