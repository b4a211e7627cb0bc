"""Typed progress events of a run, and how the engine hands them out without waiting.

A run reports what it does as small frozen records: `RunStarted`, `HostStarted`,
`StageChanged`, `ObjectDone`, `TransportChanged`, `HostFinished`, `RunFinished`.  Pass
a callback or a `trio.MemorySendChannel` as ``events`` to `cdist_trio.config` (or
`run_config`) to receive them; the engine never blocks on the receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

import trio

from .report import HostReport, RunReport
from .settings import Settings

if TYPE_CHECKING:
    from .host import HostRun

__all__ = [
    "Event",
    "EventSink",
    "HostFinished",
    "HostStarted",
    "ObjectDone",
    "RunFinished",
    "RunStarted",
    "StageChanged",
    "TransportChanged",
    "TransportState",
]

_log = logging.getLogger("cdist_trio.events")


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run begins: every host it will configure, in order, and its settings."""

    hosts: tuple[str, ...]
    settings: Settings


@dataclass(frozen=True, slots=True)
class HostStarted:
    """``host`` got its slot under ``-p`` and starts its pipeline."""

    host: str


@dataclass(frozen=True, slots=True)
class StageChanged:
    """``host`` entered ``stage``: ``setup``, ``connecting``, ``remote setup``,
    ``global explorers``, ``initial manifest``, ``objects`` (prepare and run,
    including code) or ``cache``."""

    host: str
    stage: str


@dataclass(frozen=True, slots=True)
class ObjectDone:
    """An object of ``host`` has run (gencode and, unless a dry run, its code).

    ``done`` counts the host's objects done so far; ``known`` the objects its manifests
    have defined so far, which grows while type manifests run.
    """

    host: str
    object: str
    has_code: bool
    done: int
    known: int


TransportState: TypeAlias = Literal["connecting", "connected", "retrying", "limited"]


@dataclass(frozen=True, slots=True)
class TransportChanged:
    """The SSH connection state of ``host`` changed.

    ``connecting``: no connection is open yet.  ``retrying``: sshd dropped a handshake
    (MaxStartups) and it is being retried; ``retries`` counts them.  ``limited``: sshd
    refused sessions (MaxSessions) and the pool has lowered its session budget;
    ``refused`` counts the refusals.  ``connected``: none of these.  Sampled about ten
    times a second while the host is in flight, so short states may go unreported.
    """

    host: str
    state: TransportState
    retries: int = 0
    refused: int = 0


@dataclass(frozen=True, slots=True)
class HostFinished:
    """``host`` is done (whatever its status); ``report`` is its final report."""

    host: str
    report: HostReport


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run is done; ``report`` is what `config` returns."""

    report: RunReport


Event: TypeAlias = (
    RunStarted
    | HostStarted
    | StageChanged
    | ObjectDone
    | TransportChanged
    | HostFinished
    | RunFinished
)
"""Any event of a run."""

EventSink: TypeAlias = Callable[[Event], None] | trio.MemorySendChannel[Event]
"""Where a run sends its events: a plain function, or a memory channel's send side.

A function is called synchronously in the run's task and must return quickly; if it
raises, the error is logged once and the run carries on without events.  A channel
gets `send_nowait`: when its buffer is full the event is dropped (and counted in
`Emitter.dropped`), when its receiver is closed no more are sent.  Open the channel with
``trio.open_memory_channel[Event](math.inf)`` to receive every event.  The run never
closes the channel; its last event is `RunFinished` unless the run was cancelled.
"""


class Emitter:
    """Delivers a run's events to its sink; one per run, so runs never share one."""

    def __init__(self, sink: EventSink | None) -> None:
        self._send: Callable[[Event], None] | None
        if sink is None:
            self._send = None
        elif isinstance(sink, trio.MemorySendChannel):
            self._send = sink.send_nowait
        elif callable(sink):
            self._send = sink
        else:
            raise TypeError(
                f"events must be a callable or a trio.MemorySendChannel, not {type(sink).__name__}"
            )
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self._send is not None

    def __call__(self, event: Event) -> None:
        send = self._send
        if send is None:
            return
        try:
            send(event)
        except trio.WouldBlock:
            self.dropped += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._send = None
        except Exception:
            # A broken display must not break the configuration of hosts.
            _log.exception("the events callback failed; no more events are delivered")
            self._send = None


@dataclass
class _Seen:
    state: TransportState | None = None
    retries: int = 0
    refused: int = 0
    connections: int = 0


POOLED_TRANSPORTS = frozenset({"openssh", "asyncssh"})
SAMPLE_INTERVAL = 0.1


def transport_state(seen: _Seen, retries: int, refused: int, connections: int) -> TransportState:
    """The state to show, from the last sample (``seen``) and the counters now."""
    if refused > 0:
        return "limited"
    if retries > seen.retries or (seen.state == "retrying" and connections == seen.connections):
        return "retrying"
    if connections == 0:
        return "connecting"
    return "connected"


async def watch_transports(runs: Iterable[HostRun], emit: Emitter) -> None:
    """Emit `TransportChanged` for the hosts in flight, sampling their transport counters.

    Runs until cancelled.  Sampling (rather than hooks in the connection pool) keeps the
    pool's hot path free of event work; ten samples a second of the hosts in flight is
    negligible next to SSH.  Only the pooled SSH transports have states to report.
    """
    seen: dict[str, _Seen] = {}
    while True:
        for run in runs:
            if run.finished or run.stage in ("waiting", "setup"):
                seen.pop(run.host, None)
                continue
            last = seen.setdefault(run.host, _Seen())
            stats = run.current_statistics()
            retries, refused = stats.handshakes_retried, stats.sessions_refused
            connections = stats.connections_opened
            state = transport_state(last, retries, refused, connections)
            if (state, retries, refused) != (last.state, last.retries, last.refused):
                emit(TransportChanged(run.host, state, retries, refused))
            last.state, last.retries, last.refused = state, retries, refused
            last.connections = connections
        await trio.sleep(SAMPLE_INTERVAL)
