"""``--workers N``: host scopes run in worker processes (`cdist_trio.workers`,
`cdist_trio.worker`), with the ``local`` transport (no Docker).

The manifests tell the test what they see: the initial manifest finds the engine
process running its host (its nearest Python ancestor: a worker, or this process with
``workers=1``) and writes its pid down.  A host whose name starts with ``slow`` then
starts a ``sleep`` in the background, writes ``"<engine pid> $!"`` into a FIFO this
test holds open, and waits: the test learns that the manifest runs, and the pids of its
worker and of its blocking child, without sleeping.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from cdist_trio import cli
from cdist_trio.errors import ConfigError
from cdist_trio.events import Emitter, Event, HostFinished, HostStarted, ObjectDone, StageChanged
from cdist_trio.host import HostRun
from cdist_trio.hosts import HostSpec
from cdist_trio.report import HostStatus, RunReport
from cdist_trio.run import RunControl, run_config
from cdist_trio.settings import Settings
from cdist_trio.transport import DEFAULT_CONNECT_LIMIT, local_process_limit
from cdist_trio.workers import (
    CANCEL_GRACE,
    MessageStream,
    WorkerPool,
    _Worker,
    worker_count,
    worker_setup,
)
from tests.conformance import poll
from tests.unit.scenario_support import q

#: Bound of every wait on a run: a broken feature fails instead of hanging.
RUN_BOUND = 30


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in list(os.environ):
        if name.startswith(("CDIST_", "__")):
            monkeypatch.delenv(name)
    return path


class Fifo:
    """A FIFO the slow manifests write ``"<engine pid> <pid of the sleep>"`` lines to.

    The test opens it read-write, so a writer never blocks and a read is a trio stream
    (cancellable by ``trio.fail_after``), not a thread stuck in ``open``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._stream = trio.lowlevel.FdStream(os.open(path, os.O_RDWR))
        self._buffer = b""

    async def pids(self) -> tuple[int, int]:
        """The next line: (engine pid, blocking child pid) of a slow manifest."""
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            assert chunk, "the FIFO closed"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        engine, child = line.split()
        return int(engine), int(child)

    async def aclose(self) -> None:
        await self._stream.aclose()


#: Sets ``$engine`` to the engine process running the manifest: its nearest Python
#: ancestor (the manifest may run in a pooled shell's subshell, below the engine).
FIND_ENGINE = """\
engine=$PPID
while [ "$engine" -gt 1 ]; do
    case "$(readlink "/proc/$engine/exe")" in */python*) break ;; esac
    engine=$(sed 's/.*) //' "/proc/$engine/stat" | cut -d' ' -f2)
done
"""


def manifest(out: Path, fifo: Path | None = None) -> str:
    """Every host: its engine's pid in ``out/pid-<host>``, a directory and a file below
    ``out/<host>``.  A ``slow*`` host first blocks (see the module docstring)."""
    slow = ""
    if fifo is not None:
        slow = (
            'case "$__target_host" in\n'
            "slow*)\n"
            "    sleep 600 &\n"
            f'    echo "$engine $!" > {q(fifo)}\n'
            "    wait\n"
            "    ;;\n"
            "esac\n"
        )
    return (
        f"OUT={q(out)}\n"
        f"{FIND_ENGINE}"
        'echo "$engine" > "$OUT/pid-$__target_host"\n'
        f"{slow}"
        '__directory "$OUT/$__target_host" --parents\n'
        '__file "$OUT/$__target_host/f" --source - <<DONE\n'
        "hello $__target_host\n"
        "DONE\n"
    )


def settings_for(
    tmp_path: Path, name: str, *, fifo: Path | None = None, **kwargs: object
) -> tuple[Settings, Path]:
    """Settings of a ``local`` run confined to ``tmp_path/name``, and its ``$OUT``."""
    base = tmp_path / name
    out = base / "target"
    out.mkdir(parents=True)
    path = base / "manifest"
    path.write_text(manifest(out, fifo))
    settings = Settings(
        transport="local",
        remote_out_dir=str(base / "remote" / "%N"),
        out_dir=base / "out",
        initial_manifest=path,
        **kwargs,  # type: ignore[arg-type]
    )
    return settings, out


def engine_pid(out: Path, host: str) -> int:
    return int((out / f"pid-{host}").read_text())


def object_names(out: Path, host: str) -> list[str]:
    return [f"__directory{out}/{host}", f"__file{out}/{host}/f"]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


async def until_gone(pids: Sequence[int]) -> None:
    """Wait (bounded) until none of ``pids`` runs: nothing to subscribe to, so poll."""

    async def gone() -> bool:
        return not any(running(pid) for pid in pids)

    with trio.fail_after(10):
        await poll(gone)


def by_host(events: Sequence[Event], host: str) -> list[Event]:
    return [event for event in events if getattr(event, "host", None) == host]


# --- real runs in worker processes ------------------------------------------------------


async def test_hosts_run_in_two_worker_processes(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdist_trio")
    # three asked for, two started: never more workers than hosts at once (-p)
    settings, out = settings_for(tmp_path, "run", parallel=2, jobs=2, workers=3)
    hosts = ["h1", "h2", "h3", "h4"]
    with trio.fail_after(RUN_BOUND):
        report = await run_config([HostSpec(h) for h in hosts], settings)
    assert report.ok, [h.error for h in report.hosts]
    assert [h.host for h in report.hosts] == hosts
    for host, host_report in zip(hosts, report.hosts, strict=True):
        assert host_report.status is HostStatus.OK
        assert (out / host).is_dir()
        assert (out / host / "f").read_text() == f"hello {host}\n"
        assert sorted(o.name for o in host_report.objects) == object_names(out, host)
    pids = {engine_pid(out, host) for host in hosts}
    assert len(pids) == 2, pids
    assert os.getpid() not in pids
    said = [r.getMessage() for r in caplog.records if r.name == "cdist_trio.config"]
    assert "--workers 3: 2 worker process(es), never more than -p (2) or the hosts (4)" in said
    await until_gone(list(pids))  # the workers ended with the run


async def test_events_cross_the_process_boundary(tmp_path: Path, home: Path) -> None:
    hosts = ["h1", "h2"]
    runs: dict[int, tuple[RunReport, list[Event]]] = {}
    for workers in (1, 2):
        settings, out = settings_for(tmp_path, f"w{workers}", parallel=2, workers=workers)
        events: list[Event] = []
        with trio.fail_after(RUN_BOUND):
            report = await run_config([HostSpec(h) for h in hosts], settings, events=events.append)
        assert report.ok, [h.error for h in report.hosts]
        runs[workers] = report, events
    assert os.getpid() not in {engine_pid(out, host) for host in hosts}  # in the workers
    report, events = runs[2]
    for host, host_report in zip(hosts, report.hosts, strict=True):
        mine = by_host(events, host)
        assert isinstance(mine[0], HostStarted)
        assert isinstance(mine[-1], HostFinished)
        assert mine[-1].report == host_report
        assert mine[-1].report.status is HostStatus.OK
        stages = [e.stage for e in mine if isinstance(e, StageChanged)]
        in_process = [e.stage for e in by_host(runs[1][1], host) if isinstance(e, StageChanged)]
        assert stages == in_process
        assert {"setup", "initial manifest", "objects", "cache"} <= set(stages)
        done = [e for e in mine if isinstance(e, ObjectDone)]
        assert [e.done for e in done] == [1, 2]
        assert done[-1].done == done[-1].known == len(host_report.objects) == 2


async def test_log_records_cross_the_process_boundary(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdist_trio")
    settings, _ = settings_for(tmp_path, "run", parallel=2, workers=2)
    with trio.fail_after(RUN_BOUND):
        report = await run_config([HostSpec("h1"), HostSpec("h2")], settings)
    assert report.ok, [h.error for h in report.hosts]
    starting = [r for r in caplog.records if r.getMessage() == "Starting configuration run"]
    assert sorted(str(getattr(r, "cdist_target", None)) for r in starting) == ["h1", "h2"]
    for record in starting:
        assert record.name == "cdist_trio.host"
        assert record.levelno == logging.INFO
        assert record.process != os.getpid()  # made in a worker, logged here
    assert len({r.process for r in starting}) == 2


async def run_with_slow_worker(
    tmp_path: Path, signum: signal.Signals | None, **settings_kwargs: object
) -> tuple[RunReport, Path, int, int]:
    """Run hosts ``fast`` and ``slow`` in two workers and, unless ``signum`` is None,
    send it to the worker of ``slow`` once its manifest runs: the run's report,
    ``$OUT``, that worker's pid and the pid of the manifest's blocking child."""
    fifo = Fifo(tmp_path / "fifo")
    settings, out = settings_for(
        tmp_path, "run", fifo=fifo.path, parallel=2, workers=2, **settings_kwargs
    )
    reports: list[RunReport] = []
    child = None

    async def run() -> None:
        reports.append(await run_config([HostSpec("fast"), HostSpec("slow")], settings))

    try:
        with trio.fail_after(RUN_BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run)
                worker, child = await fifo.pids()
                assert worker != os.getpid()
                if signum is not None:
                    os.kill(worker, signum)
    finally:
        await fifo.aclose()
        if child is not None and signum == signal.SIGKILL:
            # Nobody is left to end what the killed worker had started.
            with suppress(ProcessLookupError):
                group = os.getpgid(child)
                if group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
    (report,) = reports
    assert child is not None
    return report, out, worker, child


async def test_timeout_is_applied_inside_the_worker(tmp_path: Path, home: Path) -> None:
    report, out, worker, child = await run_with_slow_worker(tmp_path, None, timeout=1.5)
    fast, slow = report.hosts
    assert fast.status is HostStatus.OK, fast.error
    assert slow.status is HostStatus.TIMED_OUT
    assert slow.error == "timed out after 1.5 s during initial manifest"
    assert worker != os.getpid()
    assert engine_pid(out, "fast") not in (worker, os.getpid())
    await until_gone([worker, child])


async def test_interrupt_cancels_the_host_in_its_worker(tmp_path: Path, home: Path) -> None:
    fifo = Fifo(tmp_path / "fifo")
    settings, out = settings_for(tmp_path, "run", fifo=fifo.path, parallel=2, workers=2)
    control = RunControl()
    fast_done = trio.Event()

    def sink(event: Event) -> None:
        if isinstance(event, HostFinished) and event.host == "fast":
            fast_done.set()

    reports: list[RunReport] = []

    async def run() -> None:
        hosts = [HostSpec("fast"), HostSpec("slow")]
        reports.append(await run_config(hosts, settings, control=control, events=sink))

    try:
        with trio.fail_after(RUN_BOUND) as bound:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run)
                worker, child = await fifo.pids()
                await fast_done.wait()
                assert running(worker)
                assert running(child)
                control.interrupt("stopped by test")
                # The worker is told to cancel the host at once: it does not wait for
                # the parent's grace period (`CANCEL_GRACE`) and the end of the run.
                bound.deadline = trio.current_time() + 10
    finally:
        await fifo.aclose()
    (report,) = reports
    fast, slow = report.hosts
    assert fast.status is HostStatus.OK, fast.error
    assert slow.status is HostStatus.INTERRUPTED
    assert slow.error == "stopped by test during initial manifest"
    assert worker != os.getpid()
    assert engine_pid(out, "fast") != worker
    await until_gone([worker, child])


async def test_a_killed_worker_fails_its_host_only(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdist_trio")
    report, out, worker, _ = await run_with_slow_worker(tmp_path, signal.SIGKILL)
    fast, slow = report.hosts
    assert fast.status is HostStatus.OK, fast.error
    assert engine_pid(out, "fast") not in (worker, os.getpid())
    assert slow.status is HostStatus.FAILED
    assert slow.error is not None
    assert "ended unexpectedly (killed by SIGKILL)" in slow.error
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name == "cdist_trio.workers" and r.levelno == logging.ERROR
    ]
    assert len(errors) == 1, errors
    assert f"(pid {worker}) ended unexpectedly (killed by SIGKILL)" in errors[0]


async def test_a_worker_stopped_with_sigterm_interrupts_its_host_cleanly(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM to a worker alone (not to the run): it cancels its hosts as an
    interrupted run would, reports them and exits; the run goes on without it."""
    caplog.set_level(logging.INFO, logger="cdist_trio")
    report, _, worker, child = await run_with_slow_worker(tmp_path, signal.SIGTERM)
    fast, slow = report.hosts
    assert fast.status is HostStatus.OK, fast.error
    assert slow.status is HostStatus.INTERRUPTED, slow.error
    assert slow.error == "its worker process got SIGTERM during initial manifest"
    assert not [r for r in caplog.records if "ended unexpectedly" in r.getMessage()]
    await until_gone([worker, child])


# --- the framing ------------------------------------------------------------------------


def frame(message: object) -> bytes:
    data = pickle.dumps(message)
    return struct.pack("!I", len(data)) + data


class ChunkStream(trio.abc.HalfCloseableStream):
    """Receives the given chunks, one per ``receive_some``, then the end of the stream."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = list(chunks)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        chunk = self._chunks.pop(0) if self._chunks else b""
        assert max_bytes is None or len(chunk) <= max_bytes
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raise AssertionError("not for sending")

    async def wait_send_all_might_not_block(self) -> None:
        raise AssertionError("not for sending")

    async def send_eof(self) -> None:
        raise AssertionError("not for sending")

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_message_stream_reassembles_tiny_chunks() -> None:
    big = {"payload": b"x" * 200_000, "n": 1}  # more than one receive_some of 64 KiB
    data = frame(big) + frame(("event", 3, "done"))
    messages = MessageStream(ChunkStream([data[i : i + 1] for i in range(len(data))]))
    with trio.fail_after(10):
        assert await messages.receive() == big
        assert await messages.receive() == ("event", 3, "done")
        assert await messages.receive() is None


async def test_message_stream_several_messages_in_one_chunk() -> None:
    data = b"".join(frame(("log", i)) for i in range(5))
    messages = MessageStream(ChunkStream([data]))
    assert [await messages.receive() for _ in range(5)] == [("log", i) for i in range(5)]
    assert await messages.receive() is None


@pytest.mark.parametrize("cut", [2, 4, 9])
async def test_message_stream_ending_inside_a_message(cut: int) -> None:
    data = frame("first") + frame(["second", "message"])
    end = len(frame("first")) + cut
    messages = MessageStream(ChunkStream([data[:end]]))
    assert await messages.receive() == "first"
    with pytest.raises(EOFError, match="inside a message"):
        await messages.receive()


async def test_message_stream_round_trip_and_clean_end() -> None:
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = MessageStream(left), MessageStream(right)
    with trio.fail_after(10):
        await sender.send(("host", 0, HostSpec("h1")))
        await sender.send([("report", 1, None)])
        await left.send_eof()
        assert await receiver.receive() == ("host", 0, HostSpec("h1"))
        assert await receiver.receive() == [("report", 1, None)]
        assert await receiver.receive() is None


# --- how many workers, and the option ---------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "parallel", "hosts", "expected"),
    [
        (1, 8, 100, 1),
        (4, 8, 100, 4),
        (8, 3, 100, 3),  # never more than -p
        (8, 20, 2, 2),  # never more than the hosts
        (4, 8, 0, 1),
    ],
)
def test_worker_count(workers: int, parallel: int, hosts: int, expected: int) -> None:
    assert worker_count(Settings(workers=workers, parallel=parallel), hosts) == expected


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_workers_share_the_runs_bounds_instead_of_multiplying_them(
    workers: int, tmp_path: Path
) -> None:
    """Handshakes in flight stay within the run's limit, local scripts within about the
    machine's bound, whatever the number of workers."""
    setup = worker_setup(
        Settings(parallel=64, jobs=4, workers=workers),
        hosts=1000,
        workers=workers,
        base_root=tmp_path,
        home=None,
        report_values=False,
        events=False,
    )
    assert setup.connect_limit >= 1
    assert setup.connect_limit * workers <= DEFAULT_CONNECT_LIMIT
    assert setup.local_processes * workers < local_process_limit() + workers
    assert setup.prestart <= setup.local_processes


def test_settings_default_is_one_worker() -> None:
    assert Settings().workers == 1


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_settings_rejects_bad_workers(value: object) -> None:
    with pytest.raises(ConfigError, match=r"Settings\.workers must be an integer >= 1"):
        Settings(workers=value)  # type: ignore[arg-type]


def test_cli_workers_zero_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cdist_trio.run

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("no run for a usage error")

    monkeypatch.setattr(cdist_trio.run, "run_config", no_run)
    assert cli.main(["config", "--workers", "0", "h"]) == 2
    err = capsys.readouterr().err
    assert "cdist-trio: error: --workers expects a whole number >= 1, not '0'" in err


class _StuckStream(trio.abc.HalfCloseableStream):
    """A stream whose sends never complete (a worker that stopped reading)."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.sleep_forever()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.sleep_forever()

    async def send_eof(self) -> None:
        return None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


async def test_a_host_cancelled_before_its_worker_heard_of_it_is_not_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled while its ("host", ...) message was still being sent, `configure` does
    not ask the worker to cancel a host it never got (and wait CANCEL_GRACE for a
    report that cannot come): it returns at once, with no report left behind."""
    worker = _Worker(1, process=None, messages=MessageStream(_StuckStream()))  # type: ignore[arg-type]
    pool = WorkerPool([worker], Emitter(None))
    started = trio.current_time()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def configure() -> None:
                await pool.configure(0, HostSpec("h"), HostRun("h"), lambda: "stopped")

            nursery.start_soon(configure)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    assert trio.current_time() - started < CANCEL_GRACE
    assert worker.pending == {}
    assert pool.left_report(0) is None
