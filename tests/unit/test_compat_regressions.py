"""Engine behaviour that cdist 7.0.0's shipped types rely on without saying so, found by
the compatibility suite (`nox -s compat`); each test names the type that needed it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.unit.scenario_support import CONF, Scenario, q


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def _type(conf: Path, name: str, manifest: str) -> None:
    directory = conf / "type" / name
    directory.mkdir(parents=True)
    (directory / "manifest").write_text(manifest)
    (directory / "parameter").mkdir()
    (directory / "parameter" / "optional").write_text("out\n")


def test_local_scripts_run_with_umask_077(scenario: Scenario, tmp_path: Path) -> None:
    # __file (7.0.0) uploads an empty file that its gencode-local `touch`es; with the
    # copy keeping modes, a file made without --mode must come out 0600 as under cdist.
    conf = tmp_path / "conf"
    _type(conf, "__umask", 'umask > "$(cat "$__object/parameter/out")"\n')
    out = tmp_path / "out.txt"
    scenario.config(
        f"umask > {q(tmp_path / 'init.txt')}\n__umask x --out {q(out)}\n", conf=(CONF, conf)
    ).ok()
    assert (tmp_path / "init.txt").read_text().strip() == "0077"
    assert out.read_text().strip() == "0077"


def test_stdin_file_is_private(scenario: Scenario, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    _type(conf, "__takes_stdin", ":\n")
    outcome = scenario.config("echo secret | __takes_stdin x\n", conf=(CONF, conf)).ok()
    stdin = outcome.cache().object("__takes_stdin/x") / "stdin"
    assert stdin.read_text() == "secret\n"
    assert stat.S_IMODE(stdin.stat().st_mode) == 0o600


def test_object_files_dir_is_left_to_the_type(scenario: Scenario, tmp_path: Path) -> None:
    # __block and __file (7.0.0) run a plain `mkdir "$__object/files"` under sh -e.
    conf = tmp_path / "conf"
    _type(conf, "__mkdir_files", 'mkdir "$__object/files"\n')
    scenario.config("__mkdir_files x\n", conf=(CONF, conf)).ok()
