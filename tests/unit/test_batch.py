"""Batched remote steps: one session, byte-exact outputs, stop at the first failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdist_trio.batch import Step, StepResult, may_source, new_marker, parse_results, run_batch
from cdist_trio.errors import CommandError
from cdist_trio.transport.base import Completed
from cdist_trio.transport.local import LocalRemote


@pytest.fixture
def remote() -> LocalRemote:
    return LocalRemote("localhost")


async def test_batch_places_files_and_runs_steps_in_one_session(
    remote: LocalRemote, tmp_path: Path
) -> None:
    base = tmp_path / "remote"
    script = tmp_path / "explorer"
    script.write_text('printf "%s|%s" "$__object_id" "$(cat "$__object/parameter/p")"\n')
    param = tmp_path / "p"
    param.write_text("value with 'quotes' and $dollar\n")
    files = [
        (script, "conf/type/__t/explorer/e", 0o700),
        (param, "object/__t/x/m/parameter/p", 0o600),
    ]
    env = {"__object_id": "x y", "__object": f"{base}/object/__t/x/m"}
    steps = [Step("e", f"/bin/sh -e {base}/conf/type/__t/explorer/e", env)]
    result = await run_batch(remote, str(base), files, steps, stop_on_failure=False)
    assert result.results["e"].stdout == b"x y|value with 'quotes' and $dollar"
    assert (base / "conf/type/__t/explorer/e").stat().st_mode & 0o777 == 0o700
    assert remote.statistics().sessions_opened == 1


async def test_batch_keeps_outputs_byte_exact(remote: LocalRemote, tmp_path: Path) -> None:
    steps = [
        Step("binary", "printf '\\000\\377\\n\\n'"),
        Step("empty", "true"),
        Step("stderr", "echo oops >&2; exit 3"),
    ]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=False)
    assert result.results["binary"].stdout == b"\x00\xff\n\n"
    assert result.results["empty"].stdout == b""
    assert result.results["stderr"].returncode == 3
    assert result.results["stderr"].stderr == b"oops\n"
    assert result.failed() == "stderr"


async def test_batch_stops_at_first_failure(remote: LocalRemote, tmp_path: Path) -> None:
    marker = tmp_path / "third-ran"
    steps = [
        Step("one", "echo 1"),
        Step("two", "exit 7"),
        Step("three", f"touch {marker}"),
    ]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=True)
    assert list(result.results) == ["one", "two"]
    assert result.failed() == "two"
    assert not marker.exists()


async def test_batch_steps_do_not_read_the_payload(remote: LocalRemote, tmp_path: Path) -> None:
    data = tmp_path / "f"
    data.write_bytes(b"x" * 100_000)
    steps = [Step("cat", "cat; echo done")]
    result = await run_batch(
        remote, str(tmp_path / "r"), [(data, "f", 0o600)], steps, stop_on_failure=False
    )
    assert result.results["cat"].stdout == b"done\n"


async def test_batch_prelude_failure_is_an_error(remote: LocalRemote, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="exit status 110"):
        await run_batch(
            remote,
            str(tmp_path / "r"),
            [],
            [Step("a", "true")],
            stop_on_failure=False,
            prelude="false",
        )


class _RefusingLogin(LocalRemote):
    """A target whose login shell is ``nologin``: every command prints its refusal on
    stdout and exits 1, whatever it was."""

    async def run(self, command: str, **options: Any) -> Completed:
        refusal = "echo 'This account is currently not available.'; exit 1"
        return await super().run(refusal, **options)


async def test_batch_failure_says_what_the_target_printed(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as failure:
        await run_batch(
            _RefusingLogin("localhost"), str(tmp_path / "r"), [], [Step("a", "true")],
            stop_on_failure=False,
        )  # fmt: skip
    assert str(failure.value) == (
        "batch of 1 step(s) failed on the target with exit status 1: "
        "This account is currently not available."
    )


async def test_batch_too_large_for_one_command_line_is_split(
    remote: LocalRemote, tmp_path: Path
) -> None:
    padding = "x" * 2000
    steps = [Step(f"s{i}", f": {padding}; echo {i}", {"PAD": padding}) for i in range(150)]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=True)
    assert [r.stdout for r in result.results.values()] == [f"{i}\n".encode() for i in range(150)]
    assert remote.statistics().sessions_opened > 1


async def test_batch_split_stops_at_first_failure_across_chunks(
    remote: LocalRemote, tmp_path: Path
) -> None:
    padding = "x" * 2000
    steps = [
        Step(f"s{i}", "exit 4" if i == 60 else f": {padding}; echo {i}", {"PAD": padding})
        for i in range(150)
    ]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=True)
    assert result.failed() == "s60"
    assert len(result.results) == 61


async def test_batch_sources_plain_scripts_and_runs_the_others(
    remote: LocalRemote, tmp_path: Path
) -> None:
    """A sourced step sees what `/bin/sh -e script` would (set -e, its environment, no
    batch variable) and runs in a subshell of the batch shell: no shell is started."""
    plain = tmp_path / "plain"
    plain.write_text('echo "v=$V e=${__cdist_trio_rc-unset}"\nfalse\necho not reached\n')
    pid = tmp_path / "pid"
    pid.write_text("echo $$\n")
    steps = [
        Step("plain", f"/bin/sh -e {plain}", {"V": "1"}, source=str(plain)),
        Step("again", f"/bin/sh -e {plain}", {"V": "2"}, source=str(plain)),
        Step("pid1", f"/bin/sh -e {pid}", source=str(pid)),
        Step("pid2", f"/bin/sh -e {pid}", source=str(pid)),
        Step("pid3", f"/bin/sh -e {pid}"),
    ]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=False)
    assert result.results["plain"] == StepResult(1, b"v=1 e=unset\n", b"")
    assert result.results["again"] == StepResult(1, b"v=2 e=unset\n", b"")
    batch_shell = result.results["pid1"].stdout
    assert result.results["pid2"].stdout == batch_shell
    assert result.results["pid3"].stdout != batch_shell


def test_may_source_refuses_scripts_that_could_tell() -> None:
    assert may_source("/bin/sh", 'cat "$__object/parameter/x"\n')
    for text in ('echo "$0"', "echo ${0##*/}", "tmp=/tmp/x.$$", "echo $PPID", "echo $-"):
        assert not may_source("/bin/sh", text), text
    assert not may_source("/bin/bash", "echo plain")


def test_may_source_looks_only_where_the_shell_expands() -> None:
    assert may_source("/bin/sh", 'awk \'$0 == "x" { print $2 }\' "$f"')
    assert may_source("/bin/sh", 'echo "cost: \\$0"')
    assert not may_source("/bin/sh", 'echo "it\'s $0"')
    assert not may_source("/bin/sh", "echo 'a' $$ 'b'")
    assert not may_source("/bin/sh", "cat <<EOF\nit's $0\nEOF\n")
    assert not may_source("/bin/sh", "echo 'unterminated $0")


def test_may_source_skips_comments() -> None:
    # An apostrophe in a comment opens no quote: the script stays sourceable...
    assert may_source("/bin/sh", "#!/bin/sh -e\n# the type's explorer\nawk '{ print $0 }' f\n")
    # ...and two of them hide nothing between them.
    assert not may_source("/bin/sh", "# don't\necho \"$0\"\n# can't\n")
    assert not may_source("/bin/sh", 'echo x # "quoted\necho "$$"\n')
    # A comment's own $0 is not read; "#" inside a word or ${#...} starts none.
    assert may_source("/bin/sh", "echo ok  # prints $0 no more\n")
    assert not may_source("/bin/sh", "n=${#1}; echo $0\n")
    assert not may_source("/bin/sh", "echo a#b $0\n")
    assert not may_source("/bin/sh", 'echo "# not a comment $0"\n')


async def test_batch_output_that_looks_like_a_marker_is_kept(
    remote: LocalRemote, tmp_path: Path
) -> None:
    steps = [
        Step("a", "printf 'cdist-trio-0 0\\n\\nno newline'"),
        Step("b", "printf '\\n'; echo err >&2; printf 'half' >&2"),
    ]
    result = await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=False)
    assert result.results["a"] == StepResult(0, b"cdist-trio-0 0\n\nno newline", b"")
    assert result.results["b"] == StepResult(0, b"\n", b"err\nhalf")


def test_batch_results_stop_where_the_markers_stop() -> None:
    steps = [Step("a", "x"), Step("b", "y")]
    marker = new_marker()
    stdout = f"one\n{marker} 0\npartial".encode()
    stderr = f"noise before\n{marker}\n\n{marker}\nerr".encode()
    result = parse_results(steps, marker, stdout, stderr)
    assert result.results == {"a": StepResult(0, b"one", b"")}


async def test_batch_that_dies_midway_is_an_error(remote: LocalRemote, tmp_path: Path) -> None:
    steps = [Step("a", "echo a"), Step("b", "kill -9 $$"), Step("c", "echo c")]
    with pytest.raises(CommandError):
        await run_batch(remote, str(tmp_path / "r"), [], steps, stop_on_failure=False)
