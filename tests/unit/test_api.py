"""`cdist_trio.config` as a library call: argument checks, events, concurrent runs and
cancellation, with the ``local`` transport (no Docker)."""

from __future__ import annotations

import gc
import logging
import math
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

import cdist_trio
from cdist_trio import (
    Event,
    HostFinished,
    HostSpec,
    HostStarted,
    HostStatus,
    ObjectDone,
    RunFinished,
    RunStarted,
    Settings,
    StageChanged,
    UserError,
)
from harness.cleanup import child_processes
from tests.conformance import poll
from tests.unit.scenario_support import CONF

# A type whose code-remote marks that it started, then waits until a gate file exists.
GATE_GENCODE = """\
printf 'touch %s\\n' "$(cat "$__object/parameter/started")"
printf 'while [ ! -e %s ]; do sleep 0.02; done\\n' "$(cat "$__object/parameter/gate")"
"""


def write_gate_type(conf: Path) -> Path:
    gate = conf / "type" / "__gate"
    (gate / "parameter").mkdir(parents=True)
    (gate / "parameter" / "required").write_text("started\ngate\n")
    (gate / "gencode-remote").write_text(GATE_GENCODE)
    return conf


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for name in list(os.environ):
        if name.startswith(("CDIST_", "__")):
            monkeypatch.delenv(name)
    return path


def local_settings(
    tmp_path: Path, manifest: str, *, name: str = "run", **kwargs: object
) -> Settings:
    """Settings for a `local` transport run confined to ``tmp_path/name``."""
    base = tmp_path / name
    base.mkdir(exist_ok=True)
    path = base / "manifest"
    path.write_text(manifest)
    conf = base / "conf"
    if not conf.exists():
        write_gate_type(conf)
    return Settings(
        transport="local",
        remote_out_dir=str(base / "remote" / "%N"),
        out_dir=base / "out",
        conf_dirs=(CONF, conf),
        initial_manifest=path,
        **kwargs,  # type: ignore[arg-type]
    )


def steps(count: int, log: Path) -> str:
    """A manifest of ``count`` __step objects per host, with code, logging to ``log``."""
    return "".join(f"__step s{i} --value v{i} --log {log}-$__target_host\n" for i in range(count))


def collect(events: list[Event]) -> cdist_trio.EventSink:
    return events.append


def _gate_manifest(started_dir: Path, gate: Path) -> str:
    return f"__gate job --started {started_dir}/$__target_host --gate {gate}\n"


# --- arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "settings", "events", "message"),
    [
        ("web-1", None, None, "not one string"),
        (["web-1", "web-1"], None, None, "given twice"),
        (["-oProxyCommand=x"], None, None, "starts with '-'"),
        (["web 1"], None, None, "whitespace"),
        ([42], None, None, "not int"),
        (["web-1"], {"jobs": 2}, None, "cdist_trio.Settings"),
        (["web-1"], None, 42, "callable or a trio.MemorySendChannel"),
    ],
)
async def test_api_config_rejects_bad_arguments(
    hosts: Sequence[object], settings: object, events: object, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        await cdist_trio.config(hosts, settings, events=events)  # type: ignore[arg-type]


async def test_api_config_without_hosts_is_an_empty_report() -> None:
    report = await cdist_trio.config([])
    assert report.ok
    assert report.hosts == ()
    assert report.settings == Settings()


async def test_a_finished_host_lets_go_of_its_objects_while_the_run_goes_on(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run keeps a finished host's report, not its objects, graph and context: at 1,000
    hosts that was 159 KiB per host until the end of the run (bench-scale)."""
    from cdist_trio.scheduler import ObjectScheduler

    schedulers: list[weakref.ref[ObjectScheduler]] = []
    original = ObjectScheduler.__init__

    def recording(self: ObjectScheduler, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        schedulers.append(weakref.ref(self))

    monkeypatch.setattr(ObjectScheduler, "__init__", recording)
    alive_when_second_started: list[list[bool]] = []
    started: list[str] = []

    def sink(event: Event) -> None:
        # Trio starts the two host tasks in either order; -p 1 runs one after the other.
        if isinstance(event, HostStarted):
            started.append(event.host)
            if len(started) == 2:
                gc.collect()
                alive_when_second_started.append([ref() is not None for ref in schedulers])

    settings = local_settings(tmp_path, steps(3, tmp_path / "log"), parallel=1)
    with trio.fail_after(60):
        report = await cdist_trio.config(["h1", "h2"], settings, events=sink)
    assert report.ok, [h.error for h in report.hosts]
    assert [len(h.objects) for h in report.hosts] == [3, 3]  # the reports keep them
    assert alive_when_second_started == [[False]]


# --- a real local run and its events -------------------------------------------------


async def test_api_config_local_run_and_its_events(tmp_path: Path, home: Path) -> None:
    send, receive = trio.open_memory_channel[Event](math.inf)
    settings = local_settings(tmp_path, steps(3, tmp_path / "log"), parallel=2, jobs=2)
    with trio.fail_after(60):
        report = await cdist_trio.config(["h1", HostSpec("h2")], settings, events=send)
    assert report.ok, [h.error for h in report.hosts]
    assert [h.host for h in report.hosts] == ["h1", "h2"]
    assert all(h.objects_changed == 3 for h in report.hosts)
    assert all(o.code_exit_status == 0 for h in report.hosts for o in h.objects)
    send.close()
    events = [event async for event in receive]
    assert events[0] == RunStarted(("h1", "h2"), settings)
    assert events[-1] == RunFinished(report)
    for host in ("h1", "h2"):
        mine = [e for e in events if getattr(e, "host", None) == host]
        assert isinstance(mine[0], HostStarted)
        assert isinstance(mine[-1], HostFinished)
        assert mine[-1].report.status is HostStatus.OK
        stages = [e.stage for e in mine if isinstance(e, StageChanged)]
        assert stages[:2] == ["setup", "connecting"]
        assert {"initial manifest", "objects", "cache"} <= set(stages)
        done = [e for e in mine if isinstance(e, ObjectDone)]
        assert sorted(e.object for e in done) == ["__step/s0", "__step/s1", "__step/s2"]
        assert [e.done for e in done] == [1, 2, 3]
        assert done[-1].known == 3


async def test_api_config_report_values_only_when_asked(tmp_path: Path, home: Path) -> None:
    manifest = "__step one --value hunter2\n"
    plain = await cdist_trio.config(["h1"], local_settings(tmp_path, manifest, name="a"))
    (obj,) = plain.hosts[0].objects
    assert obj.parameters is None
    valued = await cdist_trio.config(
        ["h1"], local_settings(tmp_path, manifest, name="b"), report_values=True
    )
    (obj,) = valued.hosts[0].objects
    assert obj.parameters == {"value": "hunter2"}


async def test_api_failing_callback_is_dropped_not_fatal(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Event] = []

    def broken(event: Event) -> None:
        calls.append(event)
        raise RuntimeError("display crashed")

    report = await cdist_trio.config(
        ["h1"], local_settings(tmp_path, steps(1, tmp_path / "log")), events=broken
    )
    assert report.ok
    assert len(calls) == 1
    assert caplog.text.count("the events callback failed") == 1


async def test_api_full_or_closed_channel_never_blocks_the_run(tmp_path: Path, home: Path) -> None:
    send, receive = trio.open_memory_channel[Event](1)
    with trio.fail_after(60):
        report = await cdist_trio.config(
            ["h1"], local_settings(tmp_path, steps(2, tmp_path / "log"), name="full"), events=send
        )
    assert report.ok
    assert isinstance(receive.receive_nowait(), RunStarted)  # the rest were dropped
    receive.close()
    with trio.fail_after(60):
        report = await cdist_trio.config(
            ["h1"], local_settings(tmp_path, steps(2, tmp_path / "log"), name="closed"), events=send
        )
    assert report.ok


# --- two runs at once; one cancelled --------------------------------------------------


def _remote_processes(remote: Path) -> list[int]:
    """Processes running a script below the remote dir ``remote`` (code-remote)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(remote).encode() in cmdline:
            found.append(int(pid))
    return found


async def test_api_two_runs_at_once_one_cancelled(tmp_path: Path, home: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    gate_a, gate_b = tmp_path / "gate-a", tmp_path / "gate-b"
    settings_a = local_settings(tmp_path, _gate_manifest(started, gate_a), name="a", parallel=2)
    settings_b = local_settings(tmp_path, _gate_manifest(started, gate_b), name="b")
    events_a: list[Event] = []
    events_b: list[Event] = []
    reports: dict[str, cdist_trio.RunReport] = {}
    cancel_b = trio.CancelScope()
    b_done = trio.Event()

    async def run_a() -> None:
        reports["a"] = await cdist_trio.config(["a1", "a2"], settings_a, events=collect(events_a))

    async def run_b() -> None:
        with cancel_b:
            reports["b"] = await cdist_trio.config(["b1"], settings_b, events=collect(events_b))
        b_done.set()

    async def all_started() -> bool:
        return all((started / h).exists() for h in ("a1", "a2", "b1"))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_a)
            nursery.start_soon(run_b)
            await poll(all_started)
            assert _remote_processes(tmp_path / "b" / "remote")
            cancel_b.cancel()
            await b_done.wait()
            # B is gone, and took its remote command with it; A is still waiting.
            assert "b" not in reports
            assert _remote_processes(tmp_path / "b" / "remote") == []
            assert len(_remote_processes(tmp_path / "a" / "remote")) >= 2
            gate_a.touch()
    report = reports["a"]
    assert report.ok, [h.error for h in report.hosts]
    assert {getattr(e, "host", "a") for e in events_a} <= {"a1", "a2", "a"}
    assert {getattr(e, "host", "b1") for e in events_b} == {"b1"}
    assert not any(isinstance(e, RunFinished) for e in events_b)
    assert child_processes() == []


async def test_api_cancelling_the_caller_propagates(tmp_path: Path, home: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    gate = tmp_path / "gate"
    settings = local_settings(tmp_path, _gate_manifest(started, gate))

    async def is_started() -> bool:
        return (started / "h1").exists()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                await cdist_trio.config(["h1"], settings)
                raise AssertionError("the run should have been cancelled")

            nursery.start_soon(run)
            await poll(is_started)
            nursery.cancel_scope.cancel()
    assert _remote_processes(tmp_path / "run" / "remote") == []
    assert child_processes() == []


def test_api_logging_is_left_to_the_caller() -> None:
    # The library installs no handler of its own; the CLI does (log.setup_logging).
    assert not [
        h for h in logging.getLogger("cdist_trio").handlers if type(h).__name__ == "_CliHandler"
    ]
