"""Local scripts sourced by pooled shells (`cdist_trio.shellpool`) behave as the
process of their own that cdist would start: same output, status, environment, umask,
streams; nothing leaks from one call into the next; cancelling kills what they started."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from cdist_trio import shellpool
from cdist_trio.context import HostContext, Target
from cdist_trio.model.cdist_type import TypeRegistry
from cdist_trio.model.objects import ObjectStore
from cdist_trio.process import LOCAL_UMASK, run_local_script
from cdist_trio.settings import Settings
from cdist_trio.shellpool import ShellPool, sourced_errexit
from cdist_trio.transport.local import LocalRemote
from cdist_trio.workdir import WorkDir

pytestmark = pytest.mark.skipif(
    not shellpool.pool_shell_available(), reason="/bin/sh is not dash: no pooled shells"
)

PROBE = r"""#!/bin/sh -e
env | LC_ALL=C sort
umask
echo "args=$#"
if read -r line; then echo "stdin: $line"; else echo "stdin empty"; fi
printf 'to stderr\n' >&2
printf 'no newline at the end'
exit "${PROBE_STATUS:-0}"
"""


def _script(tmp_path: Path, name: str, text: str, *, executable: bool = True) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)
    return path


def _ctx(tmp_path: Path, pool: ShellPool | None, **settings: object) -> HostContext:
    workdir = WorkDir(tmp_path / "g", "marker")
    (workdir.path / "object").mkdir(parents=True)
    types = TypeRegistry(workdir.type_base)
    return HostContext(
        target=Target("h", "h", "h"),
        settings=Settings(**settings),  # type: ignore[arg-type]
        workdir=workdir,
        remote=LocalRemote("h"),
        types=types,
        store=ObjectStore(workdir.object_base, "marker", types),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        job_limiter=trio.CapacityLimiter(4),
        remote_base=str(tmp_path / "r"),
        log_level=30,
        log_level_name="WARNING",
        local_shells=pool,
    )


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE")}
    env.update(
        {
            "__object": str(tmp_path / "object dir"),
            "QUOTES": 'it\'s "quoted" $HOME `true` \\n',
            "NEWLINES": "a\nb\n",
            "IFS": "x",  # dash exports its own values for these four
            "OPTIND": "7",
            "PPID": "1",
            "PWD": str(tmp_path),
            "not.an-identifier": "dropped by dash",
            "PROBE_STATUS": "3",
        }
    )
    return env


async def test_a_pooled_call_matches_a_process_of_its_own(tmp_path: Path) -> None:
    script = _script(tmp_path, "gencode-remote", PROBE)
    env = _environment(tmp_path)
    results = []
    async with _pool() as pool:
        for use in (None, pool):
            ctx = _ctx(tmp_path / ("pooled" if use else "own"), use)
            stderr = tmp_path / ("pooled" if use else "own") / "stderr" / "gencode-remote"
            status, output = await run_local_script(
                ctx, script, env, stdout=None, stderr=stderr, capture_stdout=True
            )
            results.append((status, output, stderr.read_bytes()))
        assert len(pool._all) == 1  # the pooled call did run in a pooled shell
    own, pooled = results
    assert own[0] == 3
    assert b'QUOTES=it\'s "quoted" $HOME `true` \\n\n' in own[1]
    assert b"not.an-identifier" not in own[1]
    assert own[1].endswith(b"args=0\nstdin empty\nno newline at the end")
    assert own[2] == b"to stderr\n"
    assert pooled == own


@pytest.mark.parametrize(
    ("first_line", "executable", "local_shell", "expected"),
    [
        ("#!/bin/sh -e", True, "/bin/sh", True),
        ("#!/bin/sh", True, "/bin/sh", False),
        ("#!/bin/bash -e", True, "/bin/sh", None),
        ("#!/bin/sh -ex", True, "/bin/sh", None),
        ("# not executable", False, "/bin/sh", True),
        ("# not executable", False, "/bin/bash", None),
        ("# not executable", False, "/bin/sh -x", None),
    ],
)
def test_which_scripts_a_pooled_shell_sources(
    tmp_path: Path, first_line: str, executable: bool, local_shell: str, expected: bool | None
) -> None:
    script = _script(tmp_path, "s", f"{first_line}\necho hi\n", executable=executable)
    assert sourced_errexit(script, local_shell=local_shell, executable=executable) is expected


@pytest.mark.parametrize("body", ['echo "$0"', "echo $$", 'case "$-" in *e*) ;; esac'])
def test_a_script_that_could_tell_gets_a_process_of_its_own(tmp_path: Path, body: str) -> None:
    script = _script(tmp_path, "s", f"#!/bin/sh -e\n{body}\n")
    assert sourced_errexit(script, local_shell="/bin/sh", executable=True) is None


async def test_set_e_follows_the_interpreter_line(tmp_path: Path) -> None:
    text = "false\necho went on\n"
    async with _pool() as pool:
        stops = await pool.run(_script(tmp_path, "a", "#!/bin/sh -e\n" + text), {}, errexit=True)
        goes = await pool.run(_script(tmp_path, "b", "#!/bin/sh\n" + text), {}, errexit=False)
    assert stops == (1, b"")
    assert goes == (0, b"went on\n")


async def test_nothing_leaks_from_one_call_into_the_next(tmp_path: Path) -> None:
    dirty = _script(
        tmp_path,
        "dirty",
        "#!/bin/sh -e\nplain=1\nexport EXPORTED=1\ncd /\numask 000\nset -u\nf() { :; }\n",
    )
    check = _script(
        tmp_path,
        "check",
        '#!/bin/sh -e\necho "${plain-unset} ${EXPORTED-unset} $(pwd) $(umask) ${nothing}"\n'
        "command -v f || echo no-f\n",
    )
    async with _pool() as pool:
        assert (await pool.run(dirty, {"PATH": os.environ["PATH"]}, errexit=True))[0] == 0
        status, output = await pool.run(check, {"PATH": os.environ["PATH"]}, errexit=True)
        assert len(pool._all) == 1
    assert status == 0
    assert output == f"unset unset {os.getcwd()} 0077 \nno-f\n".encode()


async def test_stdout_to_a_file_or_nowhere(tmp_path: Path) -> None:
    script = _script(tmp_path, "s", "#!/bin/sh -e\necho out\necho err >&2\n")
    sink = tmp_path / "out"
    sink.write_text("before\n")
    async with _pool() as pool:
        assert await pool.run(script, {}, errexit=True, stdout=sink) == (0, b"")
        quiet = await pool.run(
            script, {}, errexit=True, stdout=shellpool.DEVNULL, stderr=shellpool.DEVNULL
        )
    assert quiet == (0, b"")
    assert sink.read_text() == "before\nout\n"


async def test_a_shell_that_dies_fails_the_call_and_is_replaced(tmp_path: Path) -> None:
    # `kill 0` signals the shell's own process group: the pooled shell dies mid-call.
    killer = _script(tmp_path, "killer", "#!/bin/sh -e\nkill -KILL 0\n")
    fine = _script(tmp_path, "fine", "#!/bin/sh -e\necho fine\n")
    async with _pool() as pool:
        assert (await pool.run(killer, {}, errexit=True))[0] != 0
        assert await pool.run(fine, {}, errexit=True) == (0, b"fine\n")
        assert len(pool._all) == 1


async def test_cancelling_a_call_kills_what_the_script_started(tmp_path: Path) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    script = _script(tmp_path, "s", f"#!/bin/sh -e\nsleep 1000 &\necho $! > {fifo}\nwait\n")
    reader = trio.lowlevel.FdStream(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    async with reader, _pool() as pool:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(pool.run, script, {"PATH": os.environ["PATH"]}, errexit=True)
                )
                pid = int(await reader.receive_some())
                nursery.cancel_scope.cancel()
        assert pool._all == set()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone and reaped already
    try:
        with trio.fail_after(10):
            await trio.lowlevel.wait_readable(pidfd)  # readable once it has exited
    finally:
        os.close(pidfd)


async def test_the_pool_ends_its_shells_when_closed(tmp_path: Path) -> None:
    script = _script(tmp_path, "s", "#!/bin/sh -e\necho hi\n")
    pool = ShellPool(umask=LOCAL_UMASK)
    await pool.run(script, {}, errexit=True)
    (shell,) = pool._all
    await pool.aclose()
    assert shell.process.returncode is not None
    with pytest.raises(trio.ClosedResourceError):
        await pool.run(script, {}, errexit=True)


@pytest.mark.parametrize(
    ("settings", "pooled"),
    [({}, True), ({"quiet": True}, True), ({"save_output_streams": False}, False)],
)
async def test_code_local_and_quiet_runs_use_the_pool(
    tmp_path: Path, settings: dict[str, bool], pooled: bool
) -> None:
    """code-local (stdout to its file) and -q (both streams dropped) go through the
    pool; with -S (streams inherited) stdout cannot be handed over, so a process runs."""
    script = _script(tmp_path, "code-local", "echo out\necho err >&2\n", executable=False)
    out, err = tmp_path / "o" / "code-local", tmp_path / "e" / "code-local"
    async with _pool() as pool:
        ctx = _ctx(tmp_path, pool, **settings)
        status, _ = await run_local_script(
            ctx, script, {}, stdout=out, stderr=err, allow_direct=False
        )
        assert status == 0
        assert len(pool._all) == (1 if pooled else 0)
    written = settings == {}
    assert out.exists() is written
    if written:
        assert out.read_text() == "out\n"
        assert err.read_text() == "err\n"


@contextlib.asynccontextmanager
async def _pool() -> AsyncIterator[ShellPool]:
    pool = ShellPool(umask=LOCAL_UMASK)
    try:
        yield pool
    finally:
        await pool.aclose()


async def test_a_command_line_is_execd_by_a_pooled_shell(tmp_path: Path) -> None:
    """How manifests start: the program replaces the subshell (its parent is the pooled
    shell, not the engine), with the call's environment, streams and exit status."""
    out, err = tmp_path / "out", tmp_path / "err"
    argv = [
        "/bin/sh",
        "-c",
        'echo "$0 $1 [$GREETING] $(umask)"; echo "parent $PPID"; echo oops >&2; exit 3',
        "zero",
        "it's one",
    ]
    async with _pool() as pool:
        status, captured = await pool.run(
            argv,
            {"GREETING": "hi there", "PATH": os.environ["PATH"]},
            errexit=False,
            stdout=out,
            stderr=err,
        )
        again = await pool.run(["/bin/sh", "-c", "echo $$"], {}, errexit=False)
    assert (status, captured) == (3, b"")
    first, parent = out.read_text().splitlines()
    assert first == "zero it's one [hi there] 0077"
    assert int(parent.split()[1]) != os.getpid()
    assert err.read_text() == "oops\n"
    assert again[0] == 0  # the shell is reused after an exec'd call
    assert int(again[1]) != os.getpid()


async def test_prestarted_shells_are_the_ones_calls_use() -> None:
    async with _pool() as pool:
        await pool.prestart(3)
        await pool.prestart(2)  # already there: nothing more
        started = {shell.process.pid for shell in pool._all}
        assert len(started) == 3
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(
                    functools.partial(pool.run, ["/bin/sh", "-c", "exit 0"], {}, errexit=False)
                )
        assert {shell.process.pid for shell in pool._all} == started
