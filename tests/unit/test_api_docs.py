"""The complete example program of docs/library.md runs and type-checks as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

from cdist_trio import RunReport
from tests.unit.test_api import home, local_settings, steps

__all__ = ["home"]  # the fixture, shared with test_api

LIBRARY_DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"


def example_source() -> str:
    text = LIBRARY_DOC.read_text()
    section = text[text.index("## A complete example") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def load_example() -> ModuleType:
    module = ModuleType("library_example")
    exec(compile(example_source(), str(LIBRARY_DOC), "exec"), module.__dict__)
    return module


async def test_api_docs_example_runs(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example()
    settings = local_settings(tmp_path, steps(2, tmp_path / "log"), parallel=2)
    with trio.fail_after(60):
        report = await example.configure(["h1", "h2"], settings)
    assert isinstance(report, RunReport)
    assert report.ok
    out = capsys.readouterr().out.splitlines()
    for host in ("h1", "h2"):
        assert f"{host}: initial manifest" in out
        assert f"{host}: changed __step/s1" in out
        assert any(line.startswith(f"{host}: ok in ") for line in out)


def test_api_docs_example_type_checks(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    path = tmp_path / "example.py"
    path.write_text(example_source())
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), path],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_docs_help_gives_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    from cdist_trio import cli

    assert cli.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    options = help_text[help_text.index("General:") : help_text.index("Settings come from")]
    entries = re.split(r"\n(?=  -)", options)
    missing = [
        entry.split("\n")[0].strip()
        for entry in entries
        if entry.lstrip().startswith("-")
        and not entry.lstrip().startswith(("-h,", "-V,"))
        and "Default" not in entry
        and "(the default)" not in entry
    ]
    assert missing == []
