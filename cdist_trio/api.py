"""The library entry point: `config`, a plain async function any Trio program can await.

It checks its arguments (raising `UserError`), then runs the hosts in its own nursery
and returns the `RunReport`.  Nothing is global: runs in one process never share state.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .errors import UserError
from .events import EventSink
from .hosts import HostSpec, check_host
from .report import RunReport
from .run import run_config
from .settings import Settings

__all__ = ["config"]


async def config(
    hosts: Sequence[str | HostSpec],
    settings: Settings | None = None,
    *,
    events: EventSink | None = None,
    report_values: bool = False,
) -> RunReport:
    """Configure ``hosts`` as ``cdist-trio config`` would; return one report per host.

    ``hosts`` are host names (or `HostSpec`), used as given; how they are reached comes
    from ssh_config (`Settings.ssh_config`).  ``settings`` defaults to ``Settings()``.
    ``events``, a callback or a `trio.MemorySendChannel`, receives progress events
    (`cdist_trio.events`) and is never waited for.  ``report_values`` puts every object's
    parameter values into its `ObjectReport` (off by default: they may hold secrets).

    A host that fails, times out (`Settings.timeout`) or cannot be reached is reported,
    never raised.  Raises `UserError` for bad arguments (before anything runs).
    Cancelling the caller cancels the run: every host's connections are closed and its
    remote commands killed before the cancellation propagates.  The caller configures
    logging (the ``cdist_trio`` logger); nothing is printed otherwise.
    """
    specs = _host_specs(hosts)
    if settings is None:
        settings = Settings()
    elif not isinstance(settings, Settings):
        raise UserError(f"settings must be a cdist_trio.Settings, not {type(settings).__name__}")
    if events is not None and not (isinstance(events, trio.MemorySendChannel) or callable(events)):
        raise UserError(
            f"events must be a callable or a trio.MemorySendChannel, not {type(events).__name__}"
        )
    return await run_config(specs, settings, events=events, report_values=report_values)


def _host_specs(hosts: Sequence[str | HostSpec]) -> list[HostSpec]:
    if isinstance(hosts, str | bytes):
        raise UserError(f"hosts must be a sequence of host names, not one string: {hosts!r}")
    specs: list[HostSpec] = []
    seen: set[str] = set()
    for host in hosts:
        spec = HostSpec(host) if isinstance(host, str) else host
        if not isinstance(spec, HostSpec) or not isinstance(spec.name, str):
            raise UserError(f"a host must be a str or a HostSpec, not {type(host).__name__}")
        reason = check_host(spec.name)
        if reason is not None:
            raise UserError(f"{spec.name!r} cannot be a target host: {reason}")
        if spec.name in seen:
            raise UserError(f"host {spec.name!r} is given twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs
