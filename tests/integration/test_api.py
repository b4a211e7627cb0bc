"""The library API against real sshd targets: two `cdist_trio.config` runs at once in one
Trio program; cancelling one leaves nothing behind while the other completes."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
import trio

import cdist_trio
from cdist_trio import Event, HostStatus, RunFinished, Settings, TransportChanged
from harness import Fleet
from harness.plugin import FleetFactory
from tests.conformance import poll

pytestmark = pytest.mark.integration

TRANSPORTS = ["openssh", "asyncssh"]

# Its code-remote marks that it started, then waits for a gate file, on the target.
GATE_GENCODE = """\
printf 'touch %s\\n' "/tmp/api-started-$__target_host"
printf 'while [ ! -e %s ]; do sleep 0.05; done\\n' "$(cat "$__object/parameter/gate")"
"""


def _conf(tmp_path: Path) -> Path:
    gate = tmp_path / "conf" / "type" / "__gate"
    (gate / "parameter").mkdir(parents=True)
    (gate / "parameter" / "required").write_text("gate\n")
    (gate / "gencode-remote").write_text(GATE_GENCODE)
    return tmp_path / "conf"


def _settings(fleet: Fleet, tmp_path: Path, name: str, **kwargs: object) -> Settings:
    manifest = tmp_path / f"manifest-{name}"
    manifest.write_text(
        f"__gate job --gate /tmp/api-gate-{name}\n__directory /tmp/api-dir-{name}\n"
    )
    return Settings(
        ssh_config=fleet.ssh_config,
        conf_dirs=(_conf(tmp_path) if not (tmp_path / "conf").exists() else tmp_path / "conf",),
        initial_manifest=manifest,
        remote_out_dir=f"/var/lib/cdist-api-{name}",
        **kwargs,  # type: ignore[arg-type]
    )


def _ssh_processes(fleet: Fleet, host: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True)
    return [
        line
        for line in out.stdout.splitlines()
        if str(fleet.ssh_config) in line and f" {host}" in line
    ]


def _run_dirs(root: Path, prefix: str = "") -> list[Path]:
    """Entries of ``root``: work dirs ``cdist-trio.*``, ControlMaster dirs ``cdist-trio-ssh.*``."""
    return [p for p in root.iterdir() if p.name.startswith(prefix)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_api_two_runs_one_cancelled_leaves_nothing(
    fleet: FleetFactory,
    tmp_path: Path,
    home: Path,
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    three = fleet(3)
    # The runs' temp dirs (work dirs, ControlMaster sockets) go here, to check them.
    temp_root = short_dir
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    for target in three:
        target.shell("rm -rf /tmp/api-* /var/lib/cdist-api-*", check=False)
    a_hosts, (b_host,) = three.hosts[:2], three.hosts[2:]
    settings_a = _settings(three, tmp_path, "a", transport=transport, parallel=2)
    settings_b = _settings(three, tmp_path, "b", transport=transport)
    events_a: list[Event] = []
    events_b: list[Event] = []
    reports: dict[str, cdist_trio.RunReport] = {}
    cancel_b = trio.CancelScope()
    b_done = trio.Event()

    async def run_a() -> None:
        reports["a"] = await cdist_trio.config(a_hosts, settings_a, events=events_a.append)

    async def run_b() -> None:
        with cancel_b:
            reports["b"] = await cdist_trio.config([b_host], settings_b, events=events_b.append)
        b_done.set()

    async def all_started() -> bool:
        return all(t.exists(f"/tmp/api-started-{t.name}") for t in three)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_a)
            nursery.start_soon(run_b)
            await poll(all_started, interval=0.05)
            control_dirs = 3 if transport == "openssh" else 0
            assert len(_run_dirs(temp_root, "cdist-trio-ssh.")) == control_dirs
            assert _ssh_processes(three, b_host) or transport == "asyncssh"
            cancel_b.cancel()
            await b_done.wait()
            # B is gone: no ssh process, no remote process; A still waits at its gate.
            assert "b" not in reports
            assert _ssh_processes(three, b_host) == []
            assert not [p for p in three[2].processes() if "cdist-api-b" in p.args]
            assert len(_run_dirs(temp_root, "cdist-trio-ssh.")) == control_dirs * 2 // 3
            assert [p for p in three[0].processes() if "cdist-api-a" in p.args]
            for target in three[:2]:
                target.shell("touch /tmp/api-gate-a")
    report = reports["a"]
    assert report.ok, [h.error for h in report.hosts]
    assert [h.status for h in report.hosts] == [HostStatus.OK, HostStatus.OK]
    for target in three[:2]:
        assert target.exists("/tmp/api-dir-a")
    assert all(h.statistics.connections_opened >= 1 for h in report.hosts)
    # Each run saw only its own hosts.
    assert {e.host for e in events_a if isinstance(e, TransportChanged)} <= set(a_hosts)
    assert {getattr(e, "host", b_host) for e in events_b} == {b_host}
    assert isinstance(events_a[-1], RunFinished)
    assert not any(isinstance(e, RunFinished) for e in events_b)
    # Neither run left a work dir or a ControlMaster socket behind.
    assert _run_dirs(temp_root) == []
    assert _ssh_processes(three, "target-") == []
