"""The harness's fleet: images without a registry, targets reachable over SSH with host keys
verified, the client files it writes, and nothing left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness import Fleet, SshdTuning, SshTarget, build_image
from harness.cleanup import FLEET_LABEL, SESSION_LABEL, list_containers, remove_containers
from harness.client import run_concurrently
from harness.plugin import FleetFactory

pytestmark = pytest.mark.integration


def test_image_build_second_time_is_a_noop() -> None:
    first = build_image("minimal")
    second = build_image("minimal")
    assert second.tag == first.tag
    assert second.tag.startswith("cdist-trio-sshd-minimal:")
    assert second.cached


def test_fleet_of_five_answers_over_ssh_with_host_keys_verified(fleet: FleetFactory) -> None:
    five = fleet(5)
    assert five.hosts == [f"target-{i}" for i in range(1, 6)]
    results = run_concurrently([t.ssh_args("cat /etc/hostname; id -u") for t in five], timeout=60)
    for target, result in zip(five, results, strict=True):
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [target.name, "0"]
    config = five.ssh_config.read_text()
    assert config.count("StrictHostKeyChecking yes") == 5
    assert "172." not in config
    assert len({t.host_key for t in five}) == 5, "every target has its own host key"
    assert len({t.port for t in five}) == 5


def test_fleet_refuses_a_wrong_host_key(fleet: FleetFactory, tmp_path: Path) -> None:
    two = fleet(2)
    first, second = two[0], two[1]
    # known_hosts claims target-1 has target-2's key: the client must refuse to connect.
    forged = tmp_path / "known_hosts"
    forged.write_text(f"[127.0.0.1]:{first.port} {second.host_key}\n")
    argv = [
        *first.ssh_args("true")[:-2],
        "-o",
        f"UserKnownHostsFile={forged}",
        first.name,
        "true",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr
    assert first.ssh("true").returncode == 0


def test_fleet_writes_hosts_file_and_known_hosts(fleet: FleetFactory) -> None:
    two = fleet(2)
    assert two.hosts_file.read_text().split() == ["target-1", "target-2"]
    known = two.known_hosts.read_text().splitlines()
    assert len(known) == 2
    for target, line in zip(two, known, strict=True):
        names, key_type, key = line.split()
        assert names.split(",") == [target.name, f"[127.0.0.1]:{target.port}"]
        assert f"{key_type} {key}" == target.host_key


def test_several_host_aliases_share_one_container(fleet: FleetFactory) -> None:
    shared = fleet(2, hosts_per_target=3)
    assert shared.hosts == [f"target-{i}" for i in range(1, 7)]
    assert shared[0].aliases == ("target-1", "target-3", "target-5")
    target = shared[0]
    before = target.sshd_counts()
    results = run_concurrently(
        [target.ssh_args("cat /etc/hostname", alias=a) for a in target.aliases]
    )
    assert [r.stdout.strip() for r in results] == ["target-1"] * 3
    assert (target.sshd_counts() - before).logins == 3


def test_debian_flavour_is_a_real_debian_server(fleet: FleetFactory) -> None:
    target = fleet(1, flavour="debian")[0]
    script = (
        "command -v apt-get useradd dpkg >/dev/null && readlink -f /bin/sh"
        " && ls --version | head -n 1 && cat /etc/debian_version"
    )
    result = target.ssh(script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] in {"/usr/bin/dash", "/bin/dash"}
    assert "GNU coreutils" in lines[1]
    assert target.stat("/etc/ssh/ssh_host_ed25519_key") is not None
    assert target.read_text("/etc/cdist-trio-target").startswith("cdist-trio")


def test_inspection_reads_the_targets_real_state(sshd_target: SshTarget) -> None:
    target = sshd_target
    assert (
        target.ssh("mkdir -p /srv/x && printf hello >/srv/x/f && chmod 640 /srv/x/f").returncode
        == 0
    )
    assert target.read_text("/srv/x/f") == "hello"
    info = target.stat("/srv/x/f")
    assert info is not None
    assert (info.kind, info.mode, info.user, info.size) == ("regular file", 0o640, "root", 5)
    assert target.stat("/srv/x/missing") is None
    names = {p.comm for p in target.processes()}
    assert "sshd" in names
    assert target.sshd_pid() in {p.pid for p in target.processes()}


def test_fleet_tmpfs_mounts_and_the_bench_reset(fleet: FleetFactory) -> None:
    """`tmpfs=` gives every target a tmpfs (mode 0755, scripts may run from it); the
    benchmark's reset removes a remote directory there and renames what it created on
    disk into its trash."""
    from benchmarks.workloads import BENCH_ROOT, REMOTE_OUT_TMPFS, REMOTE_TMPFS, reset_command

    own = fleet(1, flavour="debian", tmpfs=(REMOTE_TMPFS,), fresh=True)
    try:
        target = own[0]
        mount = target.shell(f"grep ' {REMOTE_TMPFS} ' /proc/mounts").text.split()
        assert mount[2] == "tmpfs"
        assert "noexec" not in mount[3].split(",")
        info = target.stat(REMOTE_TMPFS)
        assert info is not None
        assert info.mode == 0o755
        target.shell(
            f"mkdir -p {REMOTE_OUT_TMPFS} {BENCH_ROOT} && printf 'echo ran\\n' > "
            f"{REMOTE_OUT_TMPFS}/s && chmod 0700 {REMOTE_OUT_TMPFS}/s && touch {BENCH_ROOT}/f"
        )
        assert target.shell(f"{REMOTE_OUT_TMPFS}/s").text == "ran\n"
        target.shell(reset_command(REMOTE_OUT_TMPFS))
        assert not target.exists(REMOTE_OUT_TMPFS)
        assert not target.exists(BENCH_ROOT)
        assert target.exists(REMOTE_TMPFS)
        trashed = target.shell("ls /var/tmp/cdist-bench-trash/*/cdist-bench").text.split()
        assert trashed == ["f"]
    finally:
        own.stop()
    with pytest.raises(ValueError, match="absolute path"):
        Fleet(1, tmpfs=("relative",))


def test_fleet_start_failure_removes_every_container() -> None:
    broken = Fleet(
        2,
        tuning=SshdTuning(options=(("MaxAuthTries", "not-a-number"),)),
        ready_timeout=3,
    )
    with pytest.raises(TimeoutError):
        broken.start()
    assert list_containers({FLEET_LABEL: broken._fleet_id}) == []


def test_fleet_stop_removes_containers_and_files() -> None:
    with Fleet(2) as fleet:
        directory = fleet.directory
        assert len(list_containers({FLEET_LABEL: fleet._fleet_id})) == 2
    assert list_containers({FLEET_LABEL: fleet._fleet_id}) == []
    assert not directory.exists()


# SIGINT gets Python's own handler whatever this test inherited: a shell that starts a
# job in the background without job control (`cmd &` in a script) makes it ignore
# SIGINT, and an ignored signal stays ignored across exec.
_HOLD_FLEET = """
import signal
import sys
from harness import Fleet
signal.signal(signal.SIGINT, signal.default_int_handler)
with Fleet(2):
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_fleet_leaves_no_container(signum: int) -> None:
    session = f"interrupt-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CDIST_TRIO_HARNESS_SESSION": session}
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_FLEET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        assert len(list_containers({SESSION_LABEL: session})) == 2
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        left = list_containers({SESSION_LABEL: session})
        remove_containers({SESSION_LABEL: session})  # a failed run leaks nothing
    assert process.returncode != 0
    assert left == []
