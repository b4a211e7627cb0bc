"""The public surface of ``cdist_trio``: exactly these names, each importable, typed."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import cdist_trio

PUBLIC = {
    "__version__",
    # the library entry point and its inputs
    "config",
    "Settings",
    "HostSpec",
    # results
    "RunReport",
    "HostReport",
    "HostStatus",
    "HostError",
    "ObjectReport",
    "RemoteStatistics",
    "report_json",
    "report_schema",
    "write_report",
    # progress events
    "Event",
    "EventSink",
    "RunStarted",
    "HostStarted",
    "StageChanged",
    "ObjectDone",
    "TransportChanged",
    "TransportState",
    "HostFinished",
    "RunFinished",
    # errors
    "CdistError",
    "UserError",
    "ConfigError",
    # the engine's run scope, for callers that interrupt runs themselves
    "run_config",
    "RunControl",
}


def test_exports_are_pinned() -> None:
    assert set(cdist_trio.__all__) == PUBLIC
    assert len(cdist_trio.__all__) == len(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_exports_resolve(name: str) -> None:
    value = getattr(cdist_trio, name)
    assert value is not None
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__.startswith("cdist_trio.")
        # Re-exported, not copied: the defining module holds the same object.
        assert getattr(importlib.import_module(value.__module__), name) is value


def test_exports_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = cdist_trio.no_such_thing  # type: ignore[attr-defined]


def test_exports_package_is_typed() -> None:
    assert (Path(cdist_trio.__file__).parent / "py.typed").is_file()


def test_exports_schema_ships_in_the_package() -> None:
    schema = cdist_trio.report_schema()
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")


def test_exports_config_is_a_coroutine_function() -> None:
    assert inspect.iscoroutinefunction(cdist_trio.config)


def test_exports_import_stays_light() -> None:
    # The type emulator imports the package once per type call: no engine, no rich.
    code = (
        "import sys, cdist_trio; "
        "print(sorted(m for m in ('trio', 'rich', 'cdist_trio.run') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
