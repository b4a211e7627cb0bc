"""``--workers N``: the hosts of one run configured by N engine processes.

One engine process runs every host's Python work on one core: its own scheduling, the
emulator, gencode bookkeeping.  Past a few hundred hosts that core is the limit (the
10,000-host simulation kept it busy 71 % of the run while the local scripts waited for
it), whatever the machine has.  With ``workers > 1`` the run scope stays here, in the
caller's process, and does what it always does: ``-p``, ``--fail-fast``, interruption,
events, logging and the report.  Only the host scopes move: each host is handed to the
worker process with the fewest hosts in flight (`cdist_trio.worker`), which runs
`configure_host_in_time` for it and sends back what a host scope hands its run: stage
changes and object events, log records and, last, the `HostReport`.

The processes talk over a socket pair: length-prefixed pickles, between two processes
of the same program and user (pickle would be no place for anything else).  A worker is
started in its own session, so Ctrl-C reaches only this process, which cancels the
workers' hosts by message; a worker whose parent is gone (its socket at EOF) cancels its
hosts and exits.  A worker that dies fails the hosts it had; the others go on.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .events import Emitter, StageChanged
from .host import HostRun
from .hosts import HostSpec
from .report import HostReport, HostStatus
from .settings import Settings
from .transport import DEFAULT_CONNECT_LIMIT, local_process_limit

_log = logging.getLogger("cdist_trio.workers")

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "cdist_trio.worker")
"""How a worker process is started; its last argument is the socket's descriptor."""
CANCEL_GRACE = 30.0
"""Seconds a worker gets to close a cancelled host (its connections, its processes)
and to exit at the end of the run, before it is killed."""
_HEADER = struct.Struct("!I")


class MessageStream:
    """Whole Python objects over a byte stream: a 4-byte length, then the pickle."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self.stream = stream
        self._buffer = bytearray()
        self._send_lock = trio.Lock()

    async def send(self, message: object) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        async with self._send_lock:
            await self.stream.send_all(_HEADER.pack(len(data)) + data)

    async def receive(self) -> object | None:
        """The next message; None when the other side closed its end."""
        buffer = self._buffer
        while True:
            if len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                end = _HEADER.size + size
                if len(buffer) >= end:
                    message: object = pickle.loads(buffer[_HEADER.size : end])
                    del buffer[:end]
                    return message
            chunk = await self.stream.receive_some(1 << 16)
            if not chunk:
                if buffer:
                    raise EOFError(f"the stream ended inside a message ({len(buffer)} bytes)")
                return None
            buffer += chunk


@dataclass(frozen=True)
class WorkerSetup:
    """The first message to every worker: what its host scopes share."""

    settings: Settings
    base_root: Path
    home: str | None
    log_level: int
    report_values: bool
    events: bool
    local_processes: int
    prestart: int
    connect_limit: int


@dataclass
class _Pending:
    run: HostRun
    done: trio.Event = field(default_factory=trio.Event)
    report: HostReport | None = None


@dataclass
class _Worker:
    number: int
    process: trio.Process
    messages: MessageStream
    pending: dict[int, _Pending] = field(default_factory=dict)
    alive: bool = True


def worker_count(settings: Settings, hosts: int) -> int:
    """Workers worth starting: never more than the hosts that may run at once."""
    return max(1, min(settings.workers, settings.parallel, hosts))


def worker_setup(
    settings: Settings,
    *,
    hosts: int,
    workers: int,
    base_root: Path,
    home: str | None,
    report_values: bool,
    events: bool,
) -> WorkerSetup:
    """Each worker's share of the run: of the local scripts that may run at once (the
    machine's bound, not one bound per process), of the shells to start ahead and of the
    SSH handshakes in flight (the run's `DEFAULT_CONNECT_LIMIT`, never exceeded while
    there are no more workers than that)."""
    share = max(2, math.ceil(local_process_limit() / workers))
    in_flight = math.ceil(min(hosts, settings.parallel) / workers)
    return WorkerSetup(
        settings=settings,
        base_root=base_root,
        home=home,
        log_level=logging.getLogger("cdist_trio").getEffectiveLevel(),
        report_values=report_values,
        events=events,
        local_processes=share,
        prestart=min(share, in_flight * (settings.jobs + 1)),
        connect_limit=max(1, DEFAULT_CONNECT_LIMIT // workers),
    )


class WorkerPool:
    """Hosts handed to worker processes; made by `open_workers`."""

    def __init__(self, workers: Sequence[_Worker], emit: Emitter) -> None:
        self._workers = list(workers)
        self._emit = emit
        self._left: dict[int, HostReport] = {}

    async def configure(
        self, index: int, spec: HostSpec, run: HostRun, reason: Callable[[], str]
    ) -> HostReport:
        """Configure ``spec`` in the least busy worker.  Cancelled (an interrupted run),
        the worker is told to stop the host and its report is kept for `left_report`;
        ``reason`` says why, as the run scope would."""
        alive = [w for w in self._workers if w.alive]
        if not alive:
            return run.report(HostStatus.FAILED, error="no worker process is left to run it")
        worker = min(alive, key=lambda w: len(w.pending))
        pending = worker.pending[index] = _Pending(run)
        sent = False
        try:
            # a dead worker's hosts are failed by its receiver
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await worker.messages.send(("host", index, spec))
            sent = True
            await pending.done.wait()
        except trio.Cancelled:
            if not sent:  # cancelled before the worker heard of it: nothing to stop
                worker.pending.pop(index, None)
                raise
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CANCEL_GRACE):
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await worker.messages.send(("cancel", index, reason()))
                await pending.done.wait()
            if pending.report is not None:
                self._left[index] = pending.report
            raise
        assert pending.report is not None
        return pending.report

    def left_report(self, index: int) -> HostReport | None:
        """The worker's report of a host whose `configure` was cancelled, if it came."""
        return self._left.pop(index, None)

    async def _receive(self, worker: _Worker) -> None:
        """Until the worker closes its end: an interrupted run still needs the reports
        of its cancelled hosts, so this is shielded (`open_workers` ends the workers)."""
        with trio.CancelScope(shield=True):
            with suppress(
                trio.BrokenResourceError, trio.ClosedResourceError, EOFError, pickle.PickleError
            ):
                while True:
                    message = await worker.messages.receive()
                    if message is None:
                        break
                    for item in message:  # type: ignore[attr-defined]
                        self._handle(worker, item)
            worker.alive = False
            if worker.pending:
                with trio.move_on_after(5):
                    await worker.process.wait()
                status = worker.process.returncode
                what = "still running" if status is None else describe_exit(status)
                _log.error(
                    "worker process %d (pid %d) ended unexpectedly (%s) with %d host(s) in flight",
                    worker.number,
                    worker.process.pid,
                    what,
                    len(worker.pending),
                )
                for pending in worker.pending.values():
                    pending.report = pending.run.report(
                        HostStatus.FAILED,
                        error=f"the worker process running this host ended unexpectedly ({what})",
                    )
                    pending.done.set()
                worker.pending.clear()

    def _handle(self, worker: _Worker, item: tuple[object, ...]) -> None:
        kind = item[0]
        if kind == "log":
            record = item[1]
            assert isinstance(record, logging.LogRecord)
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
            return
        index = item[1]
        assert isinstance(index, int)
        pending = worker.pending.get(index)
        if pending is None:
            return
        if kind == "report":
            report = item[2]
            assert isinstance(report, HostReport)
            pending.report = report
            del worker.pending[index]
            pending.done.set()
        elif kind == "event":
            event = item[2]
            if isinstance(event, StageChanged):
                run = pending.run
                if run.started is None:
                    run.started = trio.current_time()
                run.stage = event.stage  # the run's own StageChanged
            else:
                self._emit(event)  # type: ignore[arg-type]


def describe_exit(status: int) -> str:
    if status < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exit status {status}"


@asynccontextmanager
async def open_workers(count: int, setup: WorkerSetup, emit: Emitter) -> AsyncIterator[WorkerPool]:
    """Start ``count`` worker processes; on the way out, let them finish and exit
    (killed after `CANCEL_GRACE`)."""
    workers: list[_Worker] = []
    try:
        async with trio.open_nursery() as nursery:
            try:
                for number in range(1, count + 1):
                    workers.append(await _start_worker(number, setup))
                pool = WorkerPool(workers, emit)
                for worker in workers:
                    nursery.start_soon(pool._receive, worker)
                yield pool
            finally:
                with trio.CancelScope(shield=True):
                    await _end_workers(workers)
    finally:
        with trio.CancelScope(shield=True):
            for worker in workers:
                await worker.messages.stream.aclose()


async def _end_workers(workers: Sequence[_Worker]) -> None:
    """End of input for each worker, which exits when its hosts are done; killed if not
    gone within `CANCEL_GRACE`."""
    with trio.move_on_after(CANCEL_GRACE):
        for worker in workers:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await worker.messages.stream.send_eof()
        for worker in workers:
            await worker.process.wait()
    for worker in workers:
        if worker.process.returncode is None:
            _log.error("worker process %d did not exit in time: killed", worker.number)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            await worker.process.wait()


async def _start_worker(number: int, setup: WorkerSetup) -> _Worker:
    ours, theirs = trio.socket.socketpair()
    try:
        process = await trio.lowlevel.open_process(
            [*WORKER_COMMAND, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    messages = MessageStream(trio.SocketStream(ours))
    await messages.send(setup)
    _log.debug("worker process %d started (pid %d)", number, process.pid)
    return _Worker(number, process, messages)
