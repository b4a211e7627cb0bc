"""The host scope: one target's whole pipeline (spec §5), ending in a HostReport.

Stages: work dir → remote base setup → global explorers → initial manifest → object
scheduler → cache.  Every `CdistError` becomes the report's error here; nothing a host
does can cancel another host.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import shlex
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from . import log as cdist_log
from .cache import cache_subpath, save_cache
from .context import HostContext, Target
from .emulator_server import open_emulator_server
from .errors import CdistError, StageError, local_failure
from .events import Event, ObjectDone, StageChanged
from .explorer import run_global_explorers, setup_and_run_global_explorers
from .hosts import HostSpec
from .manifest import run_initial_manifest
from .messages import remove_message_files
from .model.cdist_type import TypeRegistry
from .model.objects import ObjectStore
from .relay import open_relay
from .report import HostError, HostReport, HostStatus, ObjectReport
from .scheduler import ObjectOutcome, ObjectScheduler
from .settings import Settings
from .transport import Remote, RemoteStatistics, TransportResources, open_remote
from .workdir import conf_dir_order, create_workdir, host_dir_name

VERBOSE = 15


@dataclass
class HostRun:
    """What one host scope has done so far; read by the run scope for timed-out or
    interrupted hosts and by progress displays."""

    host: str
    stage: str = "waiting"
    started: float | None = None
    remote: Remote | None = None
    statistics: RemoteStatistics | None = None
    scheduler: ObjectScheduler | None = None
    stages: dict[str, float] = field(default_factory=dict)
    emit: Callable[[Event], None] | None = None
    """Where `StageChanged` and `ObjectDone` events go (the run's events), if anywhere."""
    report_values: bool = False
    """Put each object's parameter values in the report (``--report-values``)."""
    finished: bool = False
    parameter_values: dict[str, dict[str, str | tuple[str, ...]] | None] = field(
        default_factory=dict
    )
    """Objects' parameters, read as each is done (the cache stage moves the work dir)."""

    def __setattr__(self, name: str, value: object) -> None:
        # Every stage change is an event; host code just assigns ``run.stage``.
        if name == "stage" and value != self.__dict__.get("stage"):
            emit = self.__dict__.get("emit")
            if emit is not None:
                assert isinstance(value, str)
                emit(StageChanged(self.host, value))
        super().__setattr__(name, value)

    def finish(self) -> None:
        """The host's report is made: let go of its objects, graph and context (a run
        of many hosts would otherwise hold every finished host's until its end)."""
        self.finished = True
        self.scheduler = None

    def object_done(self, outcome: ObjectOutcome) -> None:
        """The scheduler's hook: one object has run."""
        if self.report_values and self.scheduler is not None:
            self.parameter_values[outcome.name] = self.scheduler.parameters(outcome.name)
        if self.emit is not None and self.scheduler is not None:
            done, known = self.scheduler.statistics()
            self.emit(ObjectDone(self.host, outcome.name, outcome.has_code, done, known))

    def _parameters(self, name: str) -> dict[str, str | tuple[str, ...]] | None:
        if not self.report_values or self.scheduler is None:
            return None
        if name not in self.parameter_values:
            self.parameter_values[name] = self.scheduler.parameters(name)
        return self.parameter_values[name]

    def current_statistics(self) -> RemoteStatistics:
        if self.remote is not None:
            return self.remote.statistics()
        return self.statistics or RemoteStatistics()

    def report(
        self,
        status: HostStatus,
        *,
        error: str | None = None,
        detail: str | None = None,
        cache_path: str | None = None,
        failure: HostError | None = None,
    ) -> HostReport:
        """A HostReport of everything recorded so far."""
        objects: tuple[ObjectReport, ...] = ()
        if self.scheduler is not None:
            objects = tuple(
                ObjectReport(
                    o.name,
                    o.has_code,
                    o.prepare_seconds,
                    o.run_seconds,
                    code_exit_status=o.code_exit_status,
                    error=o.error,
                    parameters=self._parameters(o.name),
                )
                for o in self.scheduler.result.objects.values()
            )
        if failure is None and error is not None:
            kind = {HostStatus.TIMED_OUT: "TimedOut", HostStatus.INTERRUPTED: "Interrupted"}
            failure = HostError(kind.get(status, "CdistError"), error)
        duration = 0.0 if self.started is None else trio.current_time() - self.started
        return HostReport(
            host=self.host,
            status=status,
            duration=duration,
            error=error,
            detail=detail,
            objects=objects,
            statistics=self.current_statistics(),
            cache_path=cache_path,
            stage_seconds=dict(self.stages),
            stage=self.stage,
            failure=failure,
        )


def describe_target(host: str, tags: str = "") -> Target:
    """``__target_hostname`` / ``__target_fqdn`` without any DNS query.

    cdist asks the resolver; we never send traffic the user did not ask for, so names
    stay as given and only loopback literals are reverse-resolved (from /etc/hosts).
    """
    hostname = fqdn = host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        try:
            hostname = fqdn = socket.gethostbyaddr(host)[0]
        except OSError:
            hostname = ""
    return Target(host=host, hostname=hostname, fqdn=fqdn, tags=tags)


@asynccontextmanager
async def _relay_for(settings: Settings, remote: Remote) -> AsyncIterator[tuple[str, str] | None]:
    """Relay types' own ssh/scp calls through ``remote`` for the pooled SSH transports."""
    if settings.transport in ("openssh", "asyncssh"):
        async with open_relay(remote) as commands:
            yield commands
    else:
        yield None


def remote_base_for(pattern: str, host: str) -> str:
    """``-r`` with ``%N`` (the host) and ``%h`` (its hash) expanded.

    An extension to cdist: several host aliases of one machine (or containers sharing
    a volume) can then be configured at once without sharing ``$R``.
    """
    return pattern.replace("%N", host).replace("%h", host_dir_name(host))


def setup_command(remote_base: str) -> str:
    """Wipe and recreate ``$R`` (spec §5.4): cdist's four steps (rm, mkdir, chmod 0700,
    mkdir conf) as one command; ``mkdir -p -m`` sets the mode of ``$R`` alone, exactly
    as the chmod after it would."""
    base = shlex.quote(remote_base)
    return f"rm -rf {base} && mkdir -p -m 0700 {base} && mkdir {base}/conf"


async def setup_remote_base(remote: Remote, remote_base: str) -> None:
    await remote.run(setup_command(remote_base))


async def configure_host_in_time(
    spec: HostSpec,
    settings: Settings,
    base_root: Path,
    home: str | None,
    resources: TransportResources,
    run: HostRun,
) -> HostReport:
    """`configure_host` within ``settings.timeout``: past it the host is cancelled and
    reported timed out, naming the stage it was in."""
    timeout = settings.timeout if settings.timeout is not None else math.inf
    with trio.move_on_after(timeout):
        return await configure_host(spec, settings, base_root, home, resources, run)
    message = f"timed out after {timeout:g} s during {run.stage}"
    cdist_log.target_logger(spec.name).error("%s", message)
    return run.report(HostStatus.TIMED_OUT, error=message)


def interrupted_report(run: HostRun, reason: str) -> HostReport:
    """The report of a host whose run was interrupted (``reason``) before it ended."""
    where = f" during {run.stage}" if run.started is not None else " before it started"
    return run.report(HostStatus.INTERRUPTED, error=f"{reason}{where}")


async def configure_host(
    spec: HostSpec,
    settings: Settings,
    base_root: Path,
    home: str | None,
    resources: TransportResources,
    run: HostRun | None = None,
) -> HostReport:
    """Configure one host; never raises a CdistError (it is put in the report).

    Cancellation (a deadline, an interrupted run) propagates after every resource of
    the host is closed; ``run`` keeps what was done for the caller's report.
    """
    host = spec.name
    run = run or HostRun(host)
    run.started = trio.current_time()
    log = cdist_log.target_logger(host)
    workdir_path: Path | None = None
    try:
        if not home:
            raise CdistError("No homedir setup and no cache dir location given")
        log.info("Starting %s", "dry run" if settings.dry_run else "configuration run")
        run.stage = "setup"
        workdir_path = base_root / host_dir_name(host) / "data"
        workdir = create_workdir(workdir_path, conf_dir_order(settings.conf_dirs, home), log)
        types = TypeRegistry(workdir.type_base)
        store = ObjectStore(workdir.object_base, workdir.marker, types)
        run.stage = "connecting"
        failure: CdistError | None = None
        async with (
            open_remote(
                host,
                transport=settings.transport,
                remote_exec=settings.remote_exec,
                remote_copy=settings.remote_copy,
                ssh_config=settings.ssh_config,
                address_family=settings.address_family,
                max_sessions=settings.max_sessions,
                max_connections=settings.max_connections,
                resources=resources,
                log=log,
                extra_env={"__target_host": host, "__global": str(workdir.path)},
            ) as remote,
            _relay_for(settings, remote) as remote_commands,
            open_emulator_server() as emulator_socket,
        ):
            run.remote = remote
            level = cdist_log.level_for(settings.verbosity, settings.quiet)
            ctx = HostContext(
                target=describe_target(host),
                settings=settings,
                workdir=workdir,
                remote=remote,
                types=types,
                store=store,
                log=log,
                job_limiter=trio.CapacityLimiter(settings.jobs),
                remote_base=remote_base_for(settings.remote_out_dir, host),
                log_level=level,
                log_level_name=logging.getLevelName(level),
                remote_commands=remote_commands,
                emulator_socket=emulator_socket,
                local_limiter=resources.local_processes,
                local_shells=resources.local_shells,
            )
            # Errors are kept, not raised, inside the relay's nursery: raised there they
            # would come out wrapped in an exception group.
            try:
                if ctx.batching:
                    setup = setup_command(ctx.remote_base)
                    await _stage(
                        run, "global explorers", setup_and_run_global_explorers(ctx, setup)
                    )
                else:
                    await _stage(run, "remote setup", setup_remote_base(remote, ctx.remote_base))
                    await _stage(run, "global explorers", run_global_explorers(ctx))
                await _stage(run, "initial manifest", run_initial_manifest(ctx))
                run.scheduler = ObjectScheduler(ctx, on_object_done=run.object_done)
                await _stage(run, "objects", run.scheduler.run())
            except CdistError as exc:
                failure = exc
            finally:
                run.statistics = remote.statistics()
                run.remote = None
        if failure is not None:
            raise failure
        run.stage = "cache"
        for leftover in ("order_dep_state", "typeorder_dep"):
            (workdir.path / leftover).unlink(missing_ok=True)
        cache_root = Path(home) / ".cdist" / "cache"
        subpath = cache_subpath(settings.cache_path_pattern, host, host_dir_name(host), time.time())
        remove_message_files(workdir.messages)
        cache_path = await save_cache(workdir.path, cache_root, subpath, host)
        report = run.report(HostStatus.OK, cache_path=str(cache_path))
        log.info(
            "Finished %s in %.2f seconds",
            "dry run" if settings.dry_run else "successful run",
            report.duration,
        )
        return report
    except CdistError as exc:
        return _failed(run, exc, workdir_path, log)
    except (OSError, BaseExceptionGroup) as exc:
        local = local_failure(exc, run.stage)
        if local is None:
            raise
        log.debug("%s", local, exc_info=exc)
        return _failed(run, local, workdir_path, log)


def _failed(
    run: HostRun,
    exc: CdistError,
    workdir_path: Path | None,
    log: logging.LoggerAdapter[logging.Logger],
) -> HostReport:
    """The report of a failed host; its error logged."""
    host = run.host
    if workdir_path is not None:
        remove_message_files(workdir_path / "messages")
    if isinstance(exc, StageError):
        log.error("%s", exc.render())
        detail: str | None = exc.render()
        message = str(exc)
        host_error = HostError.from_exception(exc)
    else:
        # Transport errors start with the host name; every line that shows this one
        # names the host already ("ERROR: web-1: web-1: connection refused").
        message = _without_host(str(exc), host)
        log.error("%s", message)
        detail = message
        host_error = HostError(type(exc).__name__, message)
    first_line = message.splitlines()[0] if message else type(exc).__name__
    return run.report(HostStatus.FAILED, error=first_line, detail=detail, failure=host_error)


async def _stage(run: HostRun, name: str, work: Awaitable[object]) -> None:
    run.stage = name
    started = trio.current_time()
    try:
        await work
    finally:
        run.stages[name] = trio.current_time() - started


def _without_host(message: str, host: str) -> str:
    """``message`` without a leading ``"<host>: "``."""
    prefix = f"{host}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
