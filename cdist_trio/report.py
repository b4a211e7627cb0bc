"""Typed results of a run (one HostReport per host inside a RunReport) and the JSON
report written by ``--report FILE``, whose JSON Schema ships as ``report.schema.json``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StageError, Stream
from .transport.base import RemoteStatistics

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "REPORT_FORMAT",
    "HostError",
    "HostReport",
    "HostStatus",
    "ObjectReport",
    "RunReport",
    "report_json",
    "report_schema",
    "write_error_reports",
    "write_report",
]

REPORT_FORMAT = "cdist-trio-report/1"
"""The ``format`` of the JSON report; a new number means an incompatible change."""

ParameterValues = Mapping[str, str | tuple[str, ...]]


class HostStatus(Enum):
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ObjectReport:
    """One object of a host run.

    ``has_code``: gencode produced code-local or code-remote.  ``code_exit_status``: 0
    when its code ran and succeeded, the exit status of the step that failed
    (``error`` names it), None when no code ran (none generated, a dry run, or the host
    stopped first).  ``parameters``: the object's parameter values, only when asked for
    (``--report-values``), because they may hold secrets.
    """

    name: str
    has_code: bool
    prepare_seconds: float
    run_seconds: float
    code_exit_status: int | None = None
    error: str | None = None
    parameters: ParameterValues | None = None


@dataclass(frozen=True)
class HostError:
    """Why a host did not end ok: the error's ``type`` (the `CdistError` subclass, or
    ``TimedOut`` / ``Interrupted``), its whole ``message``, and for a failed stage
    cdist's error block: ``params`` and the captured ``streams`` (e.g. ``init:stderr``)."""

    type: str
    message: str
    params: Mapping[str, str] = field(default_factory=dict)
    streams: tuple[Stream, ...] = ()

    @classmethod
    def from_exception(cls, exc: BaseException) -> HostError:
        if isinstance(exc, StageError):
            return cls(
                type(exc).__name__,
                str(exc),
                dict(exc.report.params),
                tuple(s for s in exc.report.streams if s.content),
            )
        return cls(type(exc).__name__, str(exc))


@dataclass(frozen=True)
class HostReport:
    """How one host's run ended; ``error`` is the one-line reason, ``detail`` the report."""

    host: str
    status: HostStatus
    duration: float
    error: str | None = None
    detail: str | None = None
    objects: tuple[ObjectReport, ...] = ()
    statistics: RemoteStatistics = field(default_factory=RemoteStatistics)
    cache_path: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage: str = ""
    """The stage the host was in when it ended (where a failure or timeout hit)."""
    failure: HostError | None = None
    """The error in full, when the host did not end ok."""
    error_report: str | None = None
    """A file holding the full error report (``detail``), kept after the run."""

    @property
    def ok(self) -> bool:
        return self.status is HostStatus.OK

    @property
    def objects_changed(self) -> int:
        return sum(1 for o in self.objects if o.has_code)


@dataclass(frozen=True)
class RunReport:
    hosts: tuple[HostReport, ...]
    duration: float
    settings: Settings | None = None
    """The settings the run used."""
    started_at: float | None = None
    """When the run started, in seconds since the epoch."""

    @property
    def failed_hosts(self) -> list[str]:
        return [h.host for h in self.hosts if not h.ok]

    @property
    def ok(self) -> bool:
        return not self.failed_hosts

    def by_severity(self) -> list[HostReport]:
        """Hosts failed first, then timed out, interrupted and ok; in run order within."""
        order = [HostStatus.FAILED, HostStatus.TIMED_OUT, HostStatus.INTERRUPTED, HostStatus.OK]
        return sorted(self.hosts, key=lambda h: order.index(h.status))


# --- error report files ---------------------------------------------------------------


def write_error_reports(report: RunReport, path_for: Callable[[str], Path]) -> RunReport:
    """Write the full error report of every host that did not end ok to
    ``path_for(host)`` and return the report with those paths set."""
    hosts = []
    for host in report.hosts:
        if not host.ok:
            path = path_for(host.host)
            text = host.detail or host.error or host.status.value
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{host.host}: {host.status.value} during {host.stage}\n\n{text}\n")
            except OSError:
                pass  # the report itself still carries the error
            else:
                host = replace(host, error_report=str(path))
        hosts.append(host)
    return replace(report, hosts=tuple(hosts))


# --- the JSON report --------------------------------------------------------------------


def report_json(report: RunReport, *, values: bool = False) -> dict[str, Any]:
    """The JSON document of ``report`` (see ``report.schema.json``).

    Object parameter values appear only with ``values`` (and only if the run collected
    them); they may hold secrets.
    """
    return {
        "format": REPORT_FORMAT,
        "started_at": report.started_at,
        "duration": report.duration,
        "ok": report.ok,
        "settings": _settings_json(report.settings),
        "hosts": [_host_json(h, values) for h in report.hosts],
    }


def write_report(report: RunReport, path: Path, *, values: bool = False) -> None:
    """Write the JSON report to ``path`` atomically (a reader never sees half a file)."""
    text = json.dumps(report_json(report, values=values), indent=2) + "\n"
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) the JSON report follows."""
    text = resources.files("cdist_trio").joinpath("report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _plain(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _settings_json(settings: Settings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    return {f.name: _plain(getattr(settings, f.name)) for f in fields(settings)}


def _host_json(host: HostReport, values: bool) -> dict[str, Any]:
    stats = host.statistics
    return {
        "host": host.host,
        "status": host.status.value,
        "duration": host.duration,
        "stage": host.stage,
        "stage_seconds": dict(host.stage_seconds),
        "cache_path": host.cache_path,
        "error": None if host.ok else _error_json(host),
        "objects": [_object_json(o, values) for o in host.objects],
        "objects_changed": host.objects_changed,
        "statistics": {f.name: getattr(stats, f.name) for f in fields(stats)},
    }


def _error_json(host: HostReport) -> dict[str, Any]:
    kind = {HostStatus.TIMED_OUT: "TimedOut", HostStatus.INTERRUPTED: "Interrupted"}
    failure = host.failure or HostError(kind.get(host.status, "CdistError"), host.error or "")
    return {
        "type": failure.type,
        "message": failure.message,
        "summary": host.error or "",
        "params": dict(failure.params),
        "streams": [{"label": s.label, "content": s.content} for s in failure.streams],
        "report_path": host.error_report,
    }


def _object_json(obj: ObjectReport, values: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": obj.name,
        "has_code": obj.has_code,
        "code_exit_status": obj.code_exit_status,
        "error": obj.error,
        "prepare_seconds": obj.prepare_seconds,
        "run_seconds": obj.run_seconds,
    }
    if values and obj.parameters is not None:
        data["parameters"] = {k: _plain(v) for k, v in obj.parameters.items()}
    return data
