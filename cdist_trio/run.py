"""The run scope: one host scope per host, admitted by ``host_limiter`` (-p).

One host's failure never cancels another: the host scope turns it into its report.  A
host past ``--timeout`` is cancelled and reported timed out; `RunControl.interrupt`
(Ctrl-C in the CLI) and ``--fail-fast`` cancel the hosts in flight, which are reported
interrupted.  Cancelling the caller cancels everything and propagates.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import trio

from .events import (
    POOLED_TRANSPORTS,
    Emitter,
    EventSink,
    HostFinished,
    HostStarted,
    RunFinished,
    RunStarted,
    watch_transports,
)
from .host import HostRun, configure_host_in_time, interrupted_report
from .hosts import HostSpec
from .log import VERBOSE
from .process import LOCAL_UMASK
from .report import HostReport, HostStatus, RunReport, write_error_reports
from .settings import Settings
from .shellpool import ShellPool, pool_shell_available
from .transport import TransportResources
from .workdir import host_dir_name
from .workers import WorkerPool, open_workers, worker_count, worker_setup

_config_log = logging.getLogger("cdist_trio.config")
_cdist_log = logging.getLogger("cdist_trio.cdist")


class RunControl:
    """A handle on a run that its owner may interrupt (e.g. on SIGINT).

    `interrupt` cancels every host in flight and every host not started; `run_config`
    still returns its report, with those hosts marked interrupted.
    """

    def __init__(self) -> None:
        self._scope = trio.CancelScope()
        self.reason: str | None = None

    def interrupt(self, reason: str = "interrupted") -> None:
        if self.reason is None:
            self.reason = reason
        self._scope.cancel()

    @property
    def interrupted(self) -> bool:
        return self.reason is not None


#: Collector thresholds while a run is on.  A run allocates many small containers that
#: live as long as their host (paths, dicts, events); with Python's defaults (700, 10,
#: 10) the collector cost about 12% of the engine's CPU at 1,000 hosts (bench-scale, runs
#: back to back: 3.23 -> 2.85 ms per object, 79.7 -> 74.0 s).  Nothing here relies on
#: collecting cycles.
RUN_GC_THRESHOLDS = (50_000, 50, 100)
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """`RUN_GC_THRESHOLDS` while at least one run of this process is on; the caller's
    own thresholds before and after."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        if _gc_runs == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*RUN_GC_THRESHOLDS)
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0:
                gc.set_threshold(*_gc_saved)


async def run_config(
    hosts: Sequence[HostSpec],
    settings: Settings,
    *,
    control: RunControl | None = None,
    events: EventSink | None = None,
    report_values: bool = False,
) -> RunReport:
    """Configure every host; returns a report with one HostReport per host, in order.

    ``events`` receives the run's progress events (see `cdist_trio.events`);
    ``report_values`` puts each object's parameter values in its report.  While the
    run is on, the garbage collector runs less often (`RUN_GC_THRESHOLDS`).
    """
    with fewer_collections():
        return await _run_config(
            hosts, settings, control=control, events=events, report_values=report_values
        )


async def _run_config(
    hosts: Sequence[HostSpec],
    settings: Settings,
    *,
    control: RunControl | None,
    events: EventSink | None,
    report_values: bool,
) -> RunReport:
    control = control or RunControl()
    emit = Emitter(events)
    started = trio.current_time()
    started_at = time.time()
    home = os.environ.get("HOME")
    if settings.out_dir is not None:
        base_root = settings.out_dir
        base_root.mkdir(parents=True, exist_ok=True)
    else:
        base_root = Path(tempfile.mkdtemp(prefix="cdist-trio."))
    host_limiter = trio.CapacityLimiter(settings.parallel)
    workers = worker_count(settings, len(hosts))
    runs = [
        HostRun(spec.name, emit=emit if emit.enabled else None, report_values=report_values)
        for spec in hosts
    ]
    reports: dict[int, HostReport] = {}
    watcher = trio.CancelScope()
    unfinished = len(hosts)

    async def one_host(index: int, spec: HostSpec) -> None:
        nonlocal unfinished
        run = runs[index]
        try:
            async with host_limiter:
                emit(HostStarted(spec.name))
                if pool is not None:
                    reports[index] = await pool.configure(
                        index, spec, run, lambda: control.reason or "interrupted"
                    )
                else:
                    reports[index] = await configure_host_in_time(
                        spec, settings, base_root, home, resources, run
                    )
                # Still holding the host slot, so no waiting host starts after a failure.
                if settings.fail_fast and not reports[index].ok:
                    control.interrupt(f"stopped after {spec.name} failed (--fail-fast)")
        finally:
            if index not in reports:
                left = pool.left_report(index) if pool is not None else None
                reports[index] = left or interrupted_report(run, control.reason or "interrupted")
            run.finish()
            emit(HostFinished(spec.name, reports[index]))
            unfinished -= 1
            if unfinished == 0:
                watcher.cancel()

    async def watch() -> None:
        with watcher:
            await watch_transports(runs, emit)

    # With worker processes, they run the local scripts and hold the connections.
    in_process = workers == 1
    shells = ShellPool(umask=LOCAL_UMASK) if in_process and pool_shell_available() else None
    resources = TransportResources(local_shells=shells)
    pool: WorkerPool | None = None
    try:
        with control._scope:
            async with AsyncExitStack() as stack:
                if settings.workers > workers:
                    _config_log.info(
                        "--workers %d: %d worker process(es), never more than -p (%d) "
                        "or the hosts (%d)",
                        settings.workers,
                        workers,
                        settings.parallel,
                        len(hosts),
                    )
                if not in_process:
                    setup = worker_setup(
                        settings,
                        hosts=len(hosts),
                        workers=workers,
                        base_root=base_root,
                        home=home,
                        report_values=report_values,
                        events=emit.enabled,
                    )
                    pool = await stack.enter_async_context(open_workers(workers, setup, emit))
                nursery = await stack.enter_async_context(trio.open_nursery())
                emit(RunStarted(tuple(spec.name for spec in hosts), settings))
                if shells is not None and hosts:
                    # a manifest and the jobs of each host, within the run's bound
                    busy = len(hosts) * (max(settings.jobs, 1) + 1)
                    bound = int(resources.local_processes.total_tokens)
                    nursery.start_soon(shells.prestart, min(bound, busy))
                pooled = settings.transport in POOLED_TRANSPORTS
                if in_process and emit.enabled and hosts and pooled:
                    nursery.start_soon(watch)
                for index, spec in enumerate(hosts):
                    nursery.start_soon(one_host, index, spec)
    except BaseException:
        # Cancelled by the caller (or a bug): no report will name the temp work dirs.
        if settings.out_dir is None:
            shutil.rmtree(base_root, ignore_errors=True)
        raise
    finally:
        resources.close()
        if resources.local_shells is not None:
            await resources.local_shells.aclose()

    report = RunReport(
        hosts=tuple(reports[i] for i in range(len(hosts))),
        duration=trio.current_time() - started,
        settings=settings,
        started_at=started_at,
    )
    if not report.ok:
        report = write_error_reports(report, lambda h: base_root / host_dir_name(h) / "error")
    _log_summary(report)
    emit(RunFinished(report))
    if report.ok and settings.out_dir is None:
        shutil.rmtree(base_root, ignore_errors=True)
    return report


def _log_summary(report: RunReport) -> None:
    _config_log.log(
        VERBOSE, "Total processing time for %d host(s): %s", len(report.hosts), report.duration
    )
    interrupted = [h.host for h in report.hosts if h.status is HostStatus.INTERRUPTED]
    if interrupted:
        _cdist_log.warning("Interrupted hosts: %s", " ".join(interrupted))
    if report.failed_hosts:
        for host in report.hosts:
            if not host.ok:
                error = host.error or ""
                # "timed out after 5 s ...", "interrupted by SIGINT ...": the status is said
                status = "" if error.startswith(host.status.value) else f"{host.status.value}: "
                _cdist_log.error("%s: %s%s", host.host, status, error)
        _cdist_log.error(
            "Failed to configure the following hosts: %s", " ".join(report.failed_hosts)
        )
