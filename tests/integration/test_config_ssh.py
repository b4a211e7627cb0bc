"""Whole `config` runs over SSH against harness targets: end to end, sshd limits,
parallel hosts and jobs, faults and interruption (issues 3 and 5)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from cdist_trio.hosts import HostSpec
from cdist_trio.report import HostStatus, RunReport
from cdist_trio.run import run_config
from cdist_trio.settings import Settings
from harness import Fleet, SshdTuning, SshTarget
from harness.plugin import FleetFactory
from tests.conformance import poll

pytestmark = pytest.mark.integration

TRANSPORTS = ["openssh", "asyncssh"]
FIXTURE_CONF = Path(__file__).parent.parent / "fixtures" / "ssh"

# Fourteen objects with a require chain and independent work: directories, files, a link
# and a line, all under /srv/t on the target.
WORKLOAD = """\
__directory /srv/t --mode 0755 --parents
for i in 1 2 3 4 5; do
    require="__directory/srv/t" __directory "/srv/t/d$i" --mode 0750 </dev/null
    echo "content $i of $__target_host" |
        require="__directory/srv/t/d$i" __file "/srv/t/d$i/f" --mode 0640 --source -
done
require="__file/srv/t/d1/f" __link /srv/t/current --source /srv/t/d1/f --type symbolic
require="__directory/srv/t" __file /srv/t/lines --state exists </dev/null
require="__file/srv/t/lines" __line /srv/t/lines --line "appended line" </dev/null
"""

SNAPSHOT = (
    "cd /srv/t 2>/dev/null && find . | sort | while read -r p; do "
    'printf "%s %s " "$p" "$(stat -c "%a %U %G %F" "$p")"; '
    '[ -f "$p" ] && [ ! -L "$p" ] && md5sum < "$p" || echo; done'
)


def _manifest(tmp_path: Path, text: str = WORKLOAD) -> Path:
    path = tmp_path / "manifest"
    path.write_text(text)
    return path


def _settings(fleet: Fleet, manifest: Path, **kwargs: object) -> Settings:
    return Settings(
        ssh_config=fleet.ssh_config,
        initial_manifest=manifest,
        conf_dirs=(FIXTURE_CONF,),
        **kwargs,  # type: ignore[arg-type]
    )


async def _config(hosts: Sequence[str], settings: Settings) -> RunReport:
    with trio.fail_after(240):
        return await run_config([HostSpec(h) for h in hosts], settings)


def _reset(fleet: Fleet) -> None:
    for target in fleet:
        target.shell("rm -rf /srv/t /var/lib/cdist /tmp/wait-for-*", check=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


async def _cli(
    *args: str, home: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HOME": str(home)}
    with trio.fail_after(240):
        return await trio.run_process(
            [sys.executable, "-m", "cdist_trio", "config", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )


# --- issue 3: the openssh transport configures a debian target end to end ---------


async def test_config_openssh_debian_end_to_end(
    fleet: FleetFactory, tmp_path: Path, home: Path
) -> None:
    debian = fleet(1, flavour="debian")
    _reset(debian)
    target = debian[0]
    manifest = _manifest(tmp_path)
    args = ["-F", str(debian.ssh_config), "-i", str(manifest), "-v", debian.hosts[0]]
    first = await _cli(*args, home=home)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout.decode().count("Processing ") == 14
    assert target.read_text("/srv/t/d3/f") == f"content 3 of {debian.hosts[0]}\n"
    stat = target.stat("/srv/t/d3/f")
    assert stat is not None
    assert (stat.mode, stat.user) == (0o640, "root")
    dir_stat = target.stat("/srv/t/d4")
    assert dir_stat is not None
    assert dir_stat.mode == 0o750
    assert target.shell("readlink /srv/t/current").text.strip() == "/srv/t/d1/f"
    assert target.read_text("/srv/t/lines") == "appended line\n"
    before = target.shell(SNAPSHOT).text
    second = await _cli(*args, home=home)
    assert second.returncode == 0, second.stderr.decode()
    assert "Processing " not in second.stdout.decode()
    assert target.shell(SNAPSHOT).text == before
    cache = next((home / ".cdist" / "cache").iterdir())
    assert not list((cache / "object").rglob("code-remote"))


# --- issue 5: sshd limits are non-events ---------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("max_sessions", [10, 2, 1])
@pytest.mark.parametrize("jobs", [11, 64])
async def test_config_jobs_beyond_max_sessions(
    fleet: FleetFactory,
    tmp_path: Path,
    home: Path,
    caplog: pytest.LogCaptureFixture,
    transport: str,
    max_sessions: int,
    jobs: int,
) -> None:
    tuned = fleet(1, tuning=SshdTuning(max_sessions=max_sessions))
    _reset(tuned)
    target = tuned[0]
    before = target.sshd_counts()
    caplog.set_level(logging.WARNING, logger="cdist_trio")
    # Sixteen objects whose code-local reaches the target through $__remote_exec run
    # at once: more sessions than MaxSessions on one connection.
    manifest = _manifest(
        tmp_path,
        WORKLOAD
        + "for i in $(seq 1 16); do\n"
        + '    require="__directory/srv/t" __via_remote_exec "r$i" </dev/null\n'
        + "done\n",
    )
    report = await _config(tuned.hosts, _settings(tuned, manifest, transport=transport, jobs=jobs))
    used = target.sshd_counts() - before
    (host,) = report.hosts
    assert host.ok, host.detail
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert host.objects_changed == 30
    assert len(target.shell("ls /srv/t/remote").text.split()) == 16
    # Our sessions stay within --max-connections; __file's own uploads
    # ($__remote_copy, as in cdist) are the type's and may log in by themselves.
    assert host.statistics.connections_opened <= 2
    if max_sessions < 10:
        assert host.statistics.sessions_refused >= 1
        assert used.refused_sessions >= host.statistics.sessions_refused
    assert target.read_text("/srv/t/d5/f").startswith("content 5")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_config_parallel_hosts_survive_max_startups(
    fleet: FleetFactory, tmp_path: Path, home: Path, transport: str
) -> None:
    tuned = fleet(1, tuning=SshdTuning(max_startups="1:100:1"), hosts_per_target=30)
    _reset(tuned)
    target = tuned[0]
    before = target.sshd_counts()
    manifest = _manifest(
        tmp_path, 'mkdir_it() { __directory "/srv/t/$__target_host" --parents; }\nmkdir_it\n'
    )
    report = await _config(
        tuned.hosts,
        _settings(
            tuned,
            manifest,
            transport=transport,
            parallel=30,
            timeout=120,
            remote_out_dir="/var/lib/cdist/%N",
        ),
    )
    used = target.sshd_counts() - before
    assert report.ok, [h.error for h in report.hosts if not h.ok]
    assert len(report.hosts) == 30
    assert used.dropped_startups >= 1
    assert sum(h.statistics.handshakes_retried for h in report.hosts) >= 1
    listing = target.shell("ls /srv/t").text.split()
    assert sorted(listing) == sorted(tuned.hosts)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_config_fleet_parallel_equals_sequential(
    fleet: FleetFactory, tmp_path: Path, home: Path, transport: str
) -> None:
    tuned = fleet(10, tuning=SshdTuning(max_sessions=2, max_startups="2:50:4"))
    manifest = _manifest(tmp_path)
    _reset(tuned)
    parallel = await _config(
        tuned.hosts, _settings(tuned, manifest, transport=transport, parallel=10, jobs=16)
    )
    assert parallel.ok, [h.error for h in parallel.hosts if not h.ok]
    after_parallel = {t.name: t.shell(SNAPSHOT).text for t in tuned}
    _reset(tuned)
    sequential = await _config(tuned.hosts, _settings(tuned, manifest, transport=transport))
    assert sequential.ok
    after_sequential = {t.name: t.shell(SNAPSHOT).text for t in tuned}
    assert after_parallel == after_sequential
    _reset(tuned)
    in_workers = await _config(
        tuned.hosts,
        _settings(tuned, manifest, transport=transport, parallel=10, jobs=16, workers=3),
    )
    assert in_workers.ok, [h.error for h in in_workers.hosts if not h.ok]
    assert [h.host for h in in_workers.hosts] == tuned.hosts
    assert [len(h.objects) for h in in_workers.hosts] == [len(h.objects) for h in parallel.hosts]
    assert {t.name: t.shell(SNAPSHOT).text for t in tuned} == after_sequential
    assert all(text.count("\n") == 13 for text in after_parallel.values())  # paths


# --- issue 5: failure isolation under faults -----------------------------------------


def _wait_manifest(tmp_path: Path, seconds: int = 600) -> Path:
    return _manifest(tmp_path, f"__wait_for job --seconds {seconds}\n")


async def _wait_started(target: SshTarget) -> None:
    async def started() -> bool:
        return target.exists("/tmp/wait-for-job.started")

    with trio.fail_after(60):
        await poll(started, interval=0.05)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_config_paused_target_times_out_others_finish(
    fleet: FleetFactory, tmp_path: Path, home: Path, transport: str
) -> None:
    three = fleet(3, fresh=True)
    three[1].pause()
    started = time.monotonic()
    report = await _config(
        three.hosts,
        _settings(three, _manifest(tmp_path), transport=transport, parallel=3, timeout=15),
    )
    statuses = [h.status for h in report.hosts]
    assert statuses == [HostStatus.OK, HostStatus.TIMED_OUT, HostStatus.OK]
    assert report.hosts[1].error is not None
    assert report.hosts[1].error.startswith("timed out after 15 s")
    assert time.monotonic() - started < 60
    three.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_config_stopped_sshd_fails_fast_others_finish(
    fleet: FleetFactory, tmp_path: Path, home: Path, transport: str
) -> None:
    three = fleet(3, fresh=True)
    three[0].kill_sshd()
    report = await _config(
        three.hosts, _settings(three, _manifest(tmp_path), transport=transport, parallel=3)
    )
    assert [h.status for h in report.hosts] == [HostStatus.FAILED, HostStatus.OK, HostStatus.OK]
    failed = report.hosts[0]
    assert failed.error is not None
    assert failed.host == three.hosts[0]
    assert "handshake" in failed.error or "refused" in failed.error, failed.error
    assert not failed.error.startswith(f"{failed.host}: ")  # the report names it once
    # The first remote step opens the connection: setup, batched with global explorers.
    assert failed.stage in ("remote setup", "global explorers")
    three.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["sshd killed", "session killed"])
async def test_config_fault_mid_run_fails_that_host(
    fleet: FleetFactory, tmp_path: Path, home: Path, transport: str, fault: str
) -> None:
    two = fleet(2, fresh=True)
    manifests = tmp_path / "per-host"
    manifests.mkdir()
    # The first host waits in code-remote; the second one only makes a directory.
    manifest = _manifest(
        tmp_path,
        'if [ "$__target_host" = "target-1" ]; then __wait_for job --seconds 600; '
        "else __directory /srv/t --parents; fi\n",
    )
    reports: list[RunReport] = []

    async def run() -> None:
        reports.append(
            await _config(
                two.hosts, _settings(two, manifest, transport=transport, parallel=2, timeout=90)
            )
        )

    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await _wait_started(two[0])
        if fault == "sshd killed":
            two[0].kill_sshd()
            two[0].kill_sessions()
        else:
            sleepers = [p.pid for p in two[0].processes() if p.args == "sleep 600"]
            assert sleepers
            two[0].shell(f"kill -KILL {' '.join(map(str, sleepers))}")
    (report,) = reports
    assert time.monotonic() - started < 60
    first, second = report.hosts
    assert second.ok
    assert first.status is HostStatus.FAILED
    assert first.error
    if fault == "session killed":
        assert "__wait_for/job" in (first.detail or "")
    else:
        assert "connection" in first.error.lower() or "ssh" in first.error.lower()
    two.stop()


# --- issue 5: Ctrl-C and SIGTERM leave nothing behind --------------------------------


async def _read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


def _local_ssh_processes(fleet: Fleet) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if str(fleet.ssh_config) in line]


def _worker_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "-m cdist_trio.worker " in line]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("signum", "status", "workers"),
    [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 2)],
)
async def test_config_signal_stops_run_and_cleans_up(
    fleet: FleetFactory,
    tmp_path: Path,
    home: Path,
    transport: str,
    signum: signal.Signals,
    status: int,
    workers: int,
) -> None:
    two = fleet(2, fresh=True)
    manifest = _wait_manifest(tmp_path)
    env = {**os.environ, "HOME": str(home)}
    argv = [
        sys.executable, "-m", "cdist_trio", "config", "--transport", transport,
        "-F", str(two.ssh_config), "-c", str(FIXTURE_CONF), "-i", str(manifest),
        "-p", "2", "--workers", str(workers), *two.hosts,
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for target in two:
            await _wait_started(target)
        process.send_signal(signum)
        sent = time.monotonic()
        with trio.fail_after(10):
            await process.wait()
        took = time.monotonic() - sent
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    assert process.stdout is not None
    stderr = (await _read_all(process.stderr)).decode()
    stdout = (await _read_all(process.stdout)).decode()
    assert process.returncode == status, stderr
    assert took < 2
    assert f"Interrupted hosts: {two.hosts[0]} {two.hosts[1]}" in stdout
    assert _local_ssh_processes(two) == []
    assert _worker_processes() == []
    for target in two:
        assert not [p for p in target.processes() if p.args == "sleep 600"]
    two.stop()
