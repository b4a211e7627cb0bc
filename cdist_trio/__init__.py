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

    from .errors import CdistError as CdistError
    from .errors import UserError as UserError
    from .hosts import HostSpec as HostSpec
    from .report import HostReport as HostReport
    from .report import HostStatus as HostStatus
    from .report import RunReport as RunReport
    from .run import run_config as run_config
    from .settings import Settings as Settings

_EXPORTS = {
    "CdistError": "errors",
    "UserError": "errors",
    "HostSpec": "hosts",
    "HostReport": "report",
    "HostStatus": "report",
    "RunReport": "report",
    "run_config": "run",
    "Settings": "settings",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdist_trio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
