"""The host scope: one target's whole pipeline (spec §5), ending in a HostReport.

Stages: work dir → remote base setup → global explorers → initial manifest → object
scheduler → cache.  Every `CdistError` becomes the report's error here; nothing a host
does can cancel another host.
"""

from __future__ import annotations

import ipaddress
import logging
import shlex
import socket
import time
from pathlib import Path

import trio

from . import log as cdist_log
from .cache import cache_subpath, save_cache
from .context import HostContext, Target
from .errors import CdistError, StageError, TransportError
from .explorer import run_global_explorers
from .hosts import HostSpec
from .manifest import run_initial_manifest
from .model.cdist_type import TypeRegistry
from .model.objects import ObjectStore
from .report import HostReport, HostStatus, ObjectReport
from .scheduler import ObjectScheduler, SchedulerResult
from .settings import Settings
from .transport import Remote, RemoteStatistics, TransportResources, open_remote
from .workdir import conf_dir_order, create_workdir, host_dir_name

VERBOSE = 15


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


async def setup_remote_base(remote: Remote, remote_base: str) -> None:
    """Wipe and recreate ``$R`` (spec §5.4); cdist's four steps as one round trip."""
    base = shlex.quote(remote_base)
    await remote.run(
        f"rm -rf {base} && mkdir -p {base} && chmod 0700 {base} && mkdir -p {base}/conf"
    )


async def configure_host(
    spec: HostSpec,
    settings: Settings,
    base_root: Path,
    home: str | None,
    resources: TransportResources,
) -> HostReport:
    """Configure one host; never raises a CdistError (it is put in the report)."""
    host = spec.name
    log = cdist_log.target_logger(host)
    started = time.monotonic()
    statistics: RemoteStatistics | None = None
    result: SchedulerResult | None = None
    stages: dict[str, float] = {}
    try:
        if not home:
            raise CdistError("No homedir setup and no cache dir location given")
        log.info("Starting %s", "dry run" if settings.dry_run else "configuration run")
        workdir_path = base_root / host_dir_name(host) / "data"
        workdir = create_workdir(workdir_path, conf_dir_order(settings.conf_dirs, home), log)
        types = TypeRegistry(workdir.type_base)
        store = ObjectStore(workdir.object_base, workdir.marker, types)
        async with open_remote(
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
        ) as remote:
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
                remote_base=settings.remote_out_dir,
                log_level=level,
                log_level_name=logging.getLevelName(level),
            )
            try:
                await _timed(stages, "remote setup", setup_remote_base(remote, ctx.remote_base))
                await _timed(stages, "global explorers", run_global_explorers(ctx))
                await _timed(stages, "initial manifest", run_initial_manifest(ctx))
                scheduler = ObjectScheduler(ctx)
                result = await _timed(stages, "objects", scheduler.run())
            finally:
                statistics = remote.statistics()
        for leftover in ("order_dep_state", "typeorder_dep"):
            (workdir.path / leftover).unlink(missing_ok=True)
        cache_root = Path(home) / ".cdist" / "cache"
        subpath = cache_subpath(settings.cache_path_pattern, host, host_dir_name(host), time.time())
        cache_path = save_cache(workdir.path, cache_root, subpath, host)
        duration = time.monotonic() - started
        log.info(
            "Finished %s in %.2f seconds",
            "dry run" if settings.dry_run else "successful run",
            duration,
        )
        return _report(
            host, HostStatus.OK, duration, result, statistics, stages, cache_path=str(cache_path)
        )
    except CdistError as exc:
        duration = time.monotonic() - started
        if isinstance(exc, StageError):
            log.error("%s", exc.render())
        else:
            log.error("%s", exc)
        detail = exc.render() if isinstance(exc, StageError) else None
        if isinstance(exc, TransportError) and not isinstance(exc, StageError):
            detail = str(exc)
        return _report(
            host,
            HostStatus.FAILED,
            duration,
            result,
            statistics,
            stages,
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            detail=detail,
        )


async def _timed(stages: dict[str, float], name: str, work):  # type: ignore[no-untyped-def]
    started = trio.current_time()
    try:
        return await work
    finally:
        stages[name] = trio.current_time() - started


def _report(
    host: str,
    status: HostStatus,
    duration: float,
    result: SchedulerResult | None,
    statistics: RemoteStatistics | None,
    stages: dict[str, float],
    *,
    error: str | None = None,
    detail: str | None = None,
    cache_path: str | None = None,
) -> HostReport:
    objects = tuple(
        ObjectReport(o.name, o.has_code, o.prepare_seconds, o.run_seconds)
        for o in (result.objects.values() if result else ())
    )
    return HostReport(
        host=host,
        status=status,
        duration=duration,
        error=error,
        detail=detail,
        objects=objects,
        statistics=statistics or RemoteStatistics(),
        cache_path=cache_path,
        stage_seconds=stages,
    )
