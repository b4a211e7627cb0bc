"""The run scope and the object scheduler under Trio's MockClock: limits, deadlines,
fail-fast, interruption and ordering, with the I/O replaced by scripted fakes."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

import cdist_trio.host
import cdist_trio.run
import cdist_trio.scheduler
from cdist_trio.context import HostContext, Target
from cdist_trio.errors import CdistError
from cdist_trio.host import HostRun
from cdist_trio.hosts import HostSpec
from cdist_trio.model import CdistObject, ObjectStore, TypeRegistry
from cdist_trio.report import HostReport, HostStatus
from cdist_trio.run import RunControl, run_config
from cdist_trio.scheduler import ObjectScheduler
from cdist_trio.settings import Settings
from cdist_trio.transport.local import LocalRemote
from cdist_trio.workdir import WorkDir
from tests.unit.conftest import write_type

MARKER = ".cdist-p4r4llel"


class Tracker:
    """Counts how many fakes run at once and in which order they finish."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.finished: list[str] = []

    async def work(self, name: str, seconds: float) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await trio.sleep(seconds)
        finally:
            self.running -= 1
        self.finished.append(name)


@pytest.fixture
def hosts_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Tracker:
    """Replace the host scope: host ``slow*`` takes 100 s, ``bad*`` fails, others 1 s."""
    tracker = Tracker()
    monkeypatch.setenv("HOME", str(tmp_path))

    async def fake_configure_host(
        spec: HostSpec,
        settings: Settings,
        base_root: Path,
        home: str | None,
        resources: object,
        run: HostRun,
    ) -> HostReport:
        run.started = trio.current_time()
        run.stage = "objects"
        if spec.name.startswith("bad"):
            await tracker.work(spec.name, 0.5)
            return run.report(HostStatus.FAILED, error="it broke")
        await tracker.work(spec.name, 100 if spec.name.startswith("slow") else 1)
        return run.report(HostStatus.OK)

    monkeypatch.setattr(cdist_trio.host, "configure_host", fake_configure_host)
    # The fake hosts run no local scripts: no pooled shells, whose real processes would
    # make the mock clock jump while they start and stop.
    monkeypatch.setattr(cdist_trio.run, "pool_shell_available", lambda: False)
    return tracker


def _hosts(*names: str) -> list[HostSpec]:
    return [HostSpec(n) for n in names]


async def test_run_never_exceeds_parallel_hosts(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    report = await run_config(_hosts(*(f"h{i}" for i in range(10))), Settings(parallel=3))
    assert hosts_run.peak == 3
    assert report.ok
    assert [h.host for h in report.hosts] == [f"h{i}" for i in range(10)]


async def test_run_default_is_one_host_at_a_time(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    started = trio.current_time()
    await run_config(_hosts("a", "b", "c"), Settings())
    assert hosts_run.peak == 1
    assert trio.current_time() - started == pytest.approx(3)


async def test_run_timeout_cancels_only_the_slow_host(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    report = await run_config(
        _hosts("slow-1", "fast-1", "fast-2"), Settings(parallel=3, timeout=10)
    )
    statuses = {h.host: h.status for h in report.hosts}
    assert statuses == {
        "slow-1": HostStatus.TIMED_OUT,
        "fast-1": HostStatus.OK,
        "fast-2": HostStatus.OK,
    }
    slow = report.hosts[0]
    assert slow.error == "timed out after 10 s during objects"
    assert slow.duration == pytest.approx(10)
    assert report.failed_hosts == ["slow-1"]


async def test_run_failure_does_not_stop_others(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    report = await run_config(_hosts("bad-1", "h1", "h2"), Settings(parallel=2))
    assert [h.status for h in report.hosts] == [HostStatus.FAILED, HostStatus.OK, HostStatus.OK]
    assert sorted(hosts_run.finished) == ["bad-1", "h1", "h2"]


async def test_run_fail_fast_interrupts_hosts_in_flight(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    report = await run_config(
        _hosts("bad-1", "slow-1", "slow-2"), Settings(parallel=3, fail_fast=True)
    )
    statuses = [h.status for h in report.hosts]
    assert statuses == [HostStatus.FAILED, HostStatus.INTERRUPTED, HostStatus.INTERRUPTED]
    assert report.hosts[1].error == "stopped after bad-1 failed (--fail-fast) during objects"
    assert report.hosts[1].duration == pytest.approx(0.5)


async def test_run_fail_fast_starts_no_further_host(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    # One host at a time; Trio may start either first, and the other must never start.
    report = await run_config(_hosts("bad-1", "bad-2"), Settings(fail_fast=True))
    by_status = {h.status: h for h in report.hosts}
    assert set(by_status) == {HostStatus.FAILED, HostStatus.INTERRUPTED}
    interrupted = by_status[HostStatus.INTERRUPTED]
    failed = by_status[HostStatus.FAILED]
    assert interrupted.error == (
        f"stopped after {failed.host} failed (--fail-fast) before it started"
    )
    assert hosts_run.finished == [failed.host]


async def test_run_interrupt_reports_hosts_in_flight(
    hosts_run: Tracker,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    control = RunControl()
    reports = []

    async def run() -> None:
        reports.append(
            await run_config(
                _hosts("slow-1", "slow-2", "slow-3"), Settings(parallel=2), control=control
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert hosts_run.running == 2
        control.interrupt("interrupted by SIGINT")
    (report,) = reports
    assert [h.status for h in report.hosts] == [HostStatus.INTERRUPTED] * 3
    assert "Interrupted hosts: slow-1 slow-2 slow-3" in caplog.text
    assert hosts_run.running == 0


async def test_run_cancelled_by_caller_propagates(
    hosts_run: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(5) as scope:
        await run_config(_hosts("slow-1"), Settings())
    assert scope.cancelled_caught
    assert hosts_run.running == 0


# --- the object scheduler ---------------------------------------------------------


def _scheduler(tmp_path: Path, jobs: int, *, nonparallel: bool = False) -> ObjectScheduler:
    workdir = WorkDir(tmp_path / "g", MARKER)
    (workdir.path / "object").mkdir(parents=True)
    type_base = workdir.type_base
    write_type(type_base, "__job", nonparallel=nonparallel)
    types = TypeRegistry(type_base)
    store = ObjectStore(workdir.object_base, MARKER, types)
    ctx = HostContext(
        target=Target("h", "h", "h"),
        settings=Settings(jobs=jobs),
        workdir=workdir,
        remote=LocalRemote("h"),
        types=types,
        store=store,
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        job_limiter=trio.CapacityLimiter(jobs),
        remote_base=str(tmp_path / "r"),
        log_level=30,
        log_level_name="WARNING",
    )
    return ObjectScheduler(ctx)


def _define(scheduler: ObjectScheduler, object_id: str, require: list[str]) -> CdistObject:
    obj = scheduler.ctx.store.object("__job", object_id)
    obj.create()
    obj.add_require(require)
    with (scheduler.ctx.workdir.path / "typeorder").open("a") as typeorder:
        typeorder.write(f"{obj.name}\n")
    return obj


@pytest.fixture
def fake_stages(monkeypatch: pytest.MonkeyPatch) -> Tracker:
    tracker = Tracker()

    async def no_op(ctx: HostContext, obj: CdistObject) -> None:
        await trio.lowlevel.checkpoint()

    async def generate(ctx: HostContext, obj: CdistObject) -> bool:
        return True

    async def run_code(ctx: HostContext, obj: CdistObject) -> None:
        await tracker.work(obj.name, 1)

    monkeypatch.setattr(cdist_trio.scheduler, "run_type_explorers", no_op)
    monkeypatch.setattr(cdist_trio.scheduler, "run_type_manifest", no_op)
    monkeypatch.setattr(cdist_trio.scheduler, "generate_code", generate)
    monkeypatch.setattr(cdist_trio.scheduler, "run_code", run_code)
    monkeypatch.setattr(cdist_trio.scheduler, "run_code_local", run_code)
    return tracker


@pytest.mark.parametrize("jobs", [1, 4, 16])
async def test_scheduler_never_exceeds_jobs(
    tmp_path: Path, fake_stages: Tracker, autojump_clock: trio.testing.MockClock, jobs: int
) -> None:
    scheduler = _scheduler(tmp_path, jobs)
    for i in range(12):
        _define(scheduler, f"o{i}", [])
    started = trio.current_time()
    result = await scheduler.run()
    assert fake_stages.peak == min(jobs, 12)
    assert len(result.objects) == 12
    assert trio.current_time() - started == pytest.approx(-(-12 // jobs))


@pytest.mark.parametrize("jobs", [1, 8])
async def test_scheduler_order_constraints_same_for_any_jobs(
    tmp_path: Path, fake_stages: Tracker, autojump_clock: trio.testing.MockClock, jobs: int
) -> None:
    scheduler = _scheduler(tmp_path, jobs)
    _define(scheduler, "c", ["__job/b"])
    _define(scheduler, "b", ["__job/a"])
    _define(scheduler, "a", [])
    _define(scheduler, "x", ["__job/a"])
    _define(scheduler, "y", [])
    await scheduler.run()
    order = fake_stages.finished
    assert order.index("__job/a") < order.index("__job/b") < order.index("__job/c")
    assert order.index("__job/a") < order.index("__job/x")
    assert all(scheduler.ctx.store.object("__job", o).state == "done" for o in "abcxy")


async def test_scheduler_nonparallel_type_runs_one_at_a_time(
    tmp_path: Path, fake_stages: Tracker, autojump_clock: trio.testing.MockClock
) -> None:
    scheduler = _scheduler(tmp_path, 8, nonparallel=True)
    for i in range(5):
        _define(scheduler, f"o{i}", [])
    await scheduler.run()
    assert fake_stages.peak == 1


async def test_scheduler_first_failure_stops_host(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_stages: Tracker,
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def failing(ctx: HostContext, obj: CdistObject) -> None:
        if obj.object_id == "bad":
            raise CdistError("code-remote of __job/bad failed")
        await fake_stages.work(obj.name, 10)

    monkeypatch.setattr(cdist_trio.scheduler, "run_code", failing)
    monkeypatch.setattr(cdist_trio.scheduler, "run_code_local", failing)
    scheduler = _scheduler(tmp_path, 4)
    _define(scheduler, "bad", [])
    _define(scheduler, "slow", [])
    _define(scheduler, "after", ["__job/bad"])
    with pytest.raises(CdistError, match="__job/bad failed"):
        await scheduler.run()
    assert fake_stages.running == 0
    assert scheduler.ctx.store.object("__job", "after").state == ""


# --- local scripts ------------------------------------------------------------------


async def test_local_scripts_share_the_run_wide_limiter(tmp_path: Path) -> None:
    """Scripts of every host draw on one limiter: with one token the second script
    starts only when the first has exited.  Each script says it started on one FIFO and
    then waits for a line on another; the test holds both ends."""
    from cdist_trio.process import run_script

    shared = trio.CapacityLimiter(1)
    contexts = [
        dataclasses.replace(_scheduler(tmp_path / name, 4).ctx, local_limiter=shared)
        for name in "ab"
    ]
    started, go = tmp_path / "started", tmp_path / "go"
    os.mkfifo(started)
    os.mkfifo(go)
    script = ["/bin/sh", "-c", f"echo x > {started}; read -r line < {go}"]
    signals = trio.lowlevel.FdStream(os.open(started, os.O_RDWR | os.O_NONBLOCK))
    async with signals, trio.open_nursery() as nursery:
        for ctx in contexts:
            nursery.start_soon(
                functools.partial(run_script, ctx, script, {}, stdout=None, stderr=None)
            )
        for _ in contexts:
            with trio.fail_after(10):
                assert await signals.receive_some() == b"x\n"
            await trio.testing.wait_all_tasks_blocked(0.05)
            assert shared.borrowed_tokens == 1
            with trio.fail_after(10):
                await trio.to_thread.run_sync(go.write_text, "go\n")
    assert shared.borrowed_tokens == 0


def test_a_run_allows_local_scripts_on_every_core_and_some_waiting() -> None:
    from cdist_trio.transport import TransportResources

    tokens = TransportResources().local_processes.total_tokens
    assert tokens >= 2 * (os.cpu_count() or 1)
    assert tokens >= 8


async def test_runs_collect_less_and_give_the_thresholds_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While any run is on, the collector uses the run's thresholds; overlapping runs
    do not leave them behind when they end in another order than they started."""
    import gc

    monkeypatch.setenv("HOME", str(tmp_path))
    seen: list[tuple[int, int, int]] = []
    release = {name: trio.Event() for name in ("first", "second")}

    async def fake_configure_host(spec: HostSpec, *args: object) -> HostReport:
        seen.append(gc.get_threshold())
        await release[spec.name].wait()
        run = args[-1]
        assert isinstance(run, HostRun)
        return run.report(HostStatus.OK)

    monkeypatch.setattr(cdist_trio.host, "configure_host", fake_configure_host)
    before = gc.get_threshold()
    gc.set_threshold(1234, 5, 6)
    try:
        async with trio.open_nursery() as nursery:
            for name in release:
                nursery.start_soon(run_config, _hosts(name), Settings())
            await trio.testing.wait_all_tasks_blocked()
            release["first"].set()  # the run that started first ends first
            await trio.testing.wait_all_tasks_blocked()
            assert gc.get_threshold() == cdist_trio.run.RUN_GC_THRESHOLDS
            release["second"].set()
        assert seen == [cdist_trio.run.RUN_GC_THRESHOLDS] * 2
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*before)
