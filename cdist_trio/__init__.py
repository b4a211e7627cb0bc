"""cdist-trio: cdist-compatible configuration management over SSH, on Trio.

The public API is re-exported here.  Imports are lazy so that the type emulator, which
runs once per type call in a manifest, starts without loading the engine.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# Not `from typing import TYPE_CHECKING`: the emulator process imports this package
# once per type call, and importing typing costs measurable start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import config as config
    from .errors import CdistError as CdistError
    from .errors import ConfigError as ConfigError
    from .errors import UserError as UserError
    from .events import Event as Event
    from .events import EventSink as EventSink
    from .events import HostFinished as HostFinished
    from .events import HostStarted as HostStarted
    from .events import ObjectDone as ObjectDone
    from .events import RunFinished as RunFinished
    from .events import RunStarted as RunStarted
    from .events import StageChanged as StageChanged
    from .events import TransportChanged as TransportChanged
    from .events import TransportState as TransportState
    from .hosts import HostSpec as HostSpec
    from .report import HostError as HostError
    from .report import HostReport as HostReport
    from .report import HostStatus as HostStatus
    from .report import ObjectReport as ObjectReport
    from .report import RunReport as RunReport
    from .report import report_json as report_json
    from .report import report_schema as report_schema
    from .report import write_report as write_report
    from .run import RunControl as RunControl
    from .run import run_config as run_config
    from .settings import Settings as Settings
    from .transport.base import RemoteStatistics as RemoteStatistics

_EXPORTS = {
    "config": "api",
    "Settings": "settings",
    "HostSpec": "hosts",
    "RunReport": "report",
    "HostReport": "report",
    "HostStatus": "report",
    "HostError": "report",
    "ObjectReport": "report",
    "report_json": "report",
    "report_schema": "report",
    "write_report": "report",
    "RemoteStatistics": "transport.base",
    "Event": "events",
    "EventSink": "events",
    "RunStarted": "events",
    "HostStarted": "events",
    "StageChanged": "events",
    "ObjectDone": "events",
    "TransportChanged": "events",
    "TransportState": "events",
    "HostFinished": "events",
    "RunFinished": "events",
    "CdistError": "errors",
    "UserError": "errors",
    "ConfigError": "errors",
    "run_config": "run",
    "RunControl": "run",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdist_trio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
