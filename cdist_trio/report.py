"""Typed results of a run: one HostReport per host inside a RunReport."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .transport.base import RemoteStatistics


class HostStatus(Enum):
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ObjectReport:
    name: str
    has_code: bool
    prepare_seconds: float
    run_seconds: float


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

    @property
    def failed_hosts(self) -> list[str]:
        return [h.host for h in self.hosts if not h.ok]

    @property
    def ok(self) -> bool:
        return not self.failed_hosts
