"""The benchmark helpers that decide or parse something: workloads, tables, the fake
target's answers to the engine's batch scripts.  No timing is asserted anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from benchmarks import measure
from benchmarks.bench import _groups
from benchmarks.fake_remote import FakeCounters, FakeRemote, answer_batch, step_output
from benchmarks.localdir import local_tmpfs
from benchmarks.measure import run_measured
from benchmarks.report import format_table, ratio
from benchmarks.scale import extrapolate
from benchmarks.workloads import manifest_text, standard_workloads
from cdist_trio.batch import Step, build_script, new_marker, parse_results


def test_bench_manifest_has_half_directories_half_files() -> None:
    text = manifest_text(6)
    assert text.count("__directory /srv/cdist-bench/") == 3
    assert text.count("__file /srv/cdist-bench/") == 3
    assert 'require="__directory/srv/cdist-bench/d0002"' in text


def test_bench_manifest_rejects_odd_counts() -> None:
    with pytest.raises(ValueError, match="even"):
        manifest_text(3)


def test_bench_groups_keep_nothing_to_change_with_its_twin() -> None:
    groups = _groups(standard_workloads())
    assert [[w.key for w in g] for g in groups] == [["W1"], ["W2", "W3"], ["W4"]]


def test_bench_local_tmpfs_only_a_writable_tmpfs_mount_point(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    shm = tmp_path / "shm"
    shm.mkdir()
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {shm} tmpfs rw,nosuid 0 0\n")
    assert local_tmpfs(shm, mounts) == shm
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\n/dev/vdb {shm} ext4 rw 0 0\n")
    assert local_tmpfs(shm, mounts) is None
    # a tmpfs elsewhere does not make a directory below it a mount point
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n")
    assert local_tmpfs(shm, mounts) is None
    assert local_tmpfs(shm, tmp_path / "missing") is None
    # too small a tmpfs (a container's 64 MB /dev/shm) is not used either
    mounts.write_text(f"tmpfs {shm} tmpfs rw 0 0\n")
    assert local_tmpfs(shm, mounts, min_free=0) == shm
    assert local_tmpfs(shm, mounts, min_free=2**62) is None
    # nor one with too few inodes left (10,000 hosts' caches: about 4 million)
    assert local_tmpfs(shm, mounts, min_free=0, min_inodes=1) == shm
    assert local_tmpfs(shm, mounts, min_free=0, min_inodes=2**62) is None


def test_bench_table_aligns_columns() -> None:
    table = format_table(["tool", "wall s"], [["a", "1.00"], ["longer", "12.50"]])
    lines = table.splitlines()
    assert lines[0] == "tool    wall s"
    assert lines[2] == "a         1.00"
    assert lines[3] == "longer   12.50"


def test_bench_ratio_handles_unknown_baseline() -> None:
    assert ratio(1.0, 4.0) == "0.25x"
    assert ratio(1.0, None) == "-"
    assert ratio(None, 2.0) == "-"


def test_bench_fake_answers_a_batch_as_the_engine_parses_it() -> None:
    steps = [
        Step("os", "/bin/sh -e /var/lib/cdist/conf/explorer/os", {"__explorer": "x"}),
        Step("t", "/bin/sh -e /var/lib/cdist/conf/type/__file/explorer/state", {"a": "b c"}),
        Step("s", "/bin/sh -e /x", source="/var/lib/cdist/conf/type/__file/explorer/other"),
        Step("code", "/bin/sh -e /var/lib/cdist/object/__file/x/.cdist-ab/code-remote"),
    ]
    marker = new_marker()
    script = build_script(
        "/var/lib/cdist", steps, stop_on_failure=True, marker=marker, prelude="true"
    )
    results = parse_results(steps, marker, *answer_batch(script)).results
    assert results["os"].stdout == b"debian\n"
    assert results["t"].stdout == b"type: none\n"
    assert results["s"].stdout == b""
    assert results["code"].returncode == 0
    assert list(results) == ["os", "t", "s", "code"]


def test_bench_fake_plain_commands_succeed_silently() -> None:
    assert step_output("mkdir -p /var/lib/cdist") == (0, b"")


async def test_bench_fake_remote_counts_round_trips(tmp_path: Path) -> None:
    counters = FakeCounters()
    remote = FakeRemote("h", 0.0, counters)
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    with trio.fail_after(10):
        await remote.run("true")
        await remote.put([source], "/tmp/f")
    assert counters.round_trips == 2
    assert counters.bytes_in == 3
    assert remote.statistics().sessions_opened == 2


def test_bench_extrapolation_is_linear_in_hosts() -> None:
    measured = {
        "hosts": 10,
        "engine_cpu": 1.0,
        "local_process_cpu": 3.0,
        "ideal_network_wall": 0.5,
        "ideal_cpu_wall": 2.0,
        "wall": 3.0,
    }
    scaled = extrapolate(measured, 100)
    assert scaled["engine_cpu"] == pytest.approx(10.0)
    assert scaled["local_process_cpu"] == pytest.approx(30.0)
    assert scaled["ideal_network_wall"] == pytest.approx(5.0)


def test_bench_run_measured_reports_exit_status_and_output() -> None:
    result = run_measured(["/bin/sh", "-c", "echo hi; exit 3"])
    assert result.returncode == 3
    assert result.output == "hi\n"
    assert result.cpu >= 0


def test_bench_run_measured_kills_at_timeout() -> None:
    result = run_measured(["/bin/sh", "-c", "sleep 30"], timeout=0.2)
    assert result.timed_out


def test_tree_rss_walks_the_tree_as_a_full_scan_sees_it() -> None:
    """The sampler's walk over each task's children finds the same descendants (a
    grandchild included) as a scan of every process, and sums their RSS."""
    if not measure._has_children_files():
        pytest.skip("this kernel has no /proc/<pid>/task/<tid>/children")
    # sh forks cat (reading the pipe, not /dev/null as a background job would by
    # default) before it says "started", then waits for it.
    process = subprocess.Popen(
        ["sh", "-c", "exec 3<&0; cat <&3 >/dev/null & echo started; wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"started\n"
        mine = {process.pid, *_descendants(process.pid)}
        assert len(mine) == 2
        walked: set[int] = set()
        scanned: set[int] = set()
        total, single, private = measure._tree_rss(os.getpid(), walked)
        measure._tree_rss_from_scan(os.getpid(), scanned)
        assert mine <= walked
        assert mine <= scanned
        assert total >= single > 0
        # sh and cat map their code from files: part of their RSS is not their own
        assert 0 < private < total
    finally:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=30)


def test_private_rss_counts_what_a_child_allocated_and_not_its_code() -> None:
    allocate = "b = b'x' * (48 * 2**20); print('ok', flush=True); input()"
    process = subprocess.Popen(
        [sys.executable, "-c", allocate],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ok\n"
        for walk in (measure._tree_rss, measure._tree_rss_from_scan):
            total, _, private = walk(os.getpid(), set())
            assert private >= 48 * 2**20
            # the interpreter's code and libraries are resident too, but file-backed
            assert total - private >= 2**20
    finally:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=30)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found.extend(int(child) for child in handle.read().split())
    return found
