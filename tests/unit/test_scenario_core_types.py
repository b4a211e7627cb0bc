"""Our own core types (``cdist_trio/conf/type``) through the whole engine on temp paths:
the first run reaches the wanted state, the second finds it and generates no code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.scenario_support import Cache, Scenario, q


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def code_files(cache: Cache) -> list[str]:
    return sorted(
        name
        for name in cache.object_names()
        for kind in ("code-local", "code-remote")
        if cache.read(name, kind) is not None
    )


def test_core_types_converge_and_second_run_generates_no_code(scenario: Scenario) -> None:
    t = scenario.target
    source = scenario.tmp / "motd.source"
    source.write_text("welcome\n")
    (t / "lines").write_text("first\n")
    app = t / "etc" / "app"
    manifest = f"""
__directory {q(app)} --parents --mode 0750
require="__directory{app}" __file {q(app / "motd")} --source {q(source)} --mode 0640
__link {q(t / "motd-link")} --source {q(app / "motd")} --type symbolic
__line {q(t / "lines")} --line 'second line'
printf 'from stdin\\n' | __file {q(t / "piped")} --source -
"""
    first = scenario.config(manifest, "-v").ok()
    assert app.is_dir()
    assert app.stat().st_mode & 0o7777 == 0o750
    assert (app / "motd").read_text() == "welcome\n"
    assert (app / "motd").stat().st_mode & 0o7777 == 0o640
    assert os.readlink(t / "motd-link") == str(app / "motd")
    assert (t / "lines").read_text() == "first\nsecond line\n"
    assert (t / "piped").read_text() == "from stdin\n"
    cache = first.cache()
    assert f"__directory{app}" in cache.lines(f"__file{app}/motd", "require")
    assert code_files(cache) != []
    messages = cache.global_lines("messages")
    assert f"__file{app}/motd:upload" in messages
    assert f"__directory{app}:create" in messages
    assert f"INFO: localhost: Processing __file{app}/motd\n" in first.stdout
    # each gencode script left its (empty) stderr capture, twin or not, as in cdist
    for name in (f"__file{app}/motd", f"__directory{app}"):
        assert cache.read(name, "stderr/gencode-remote") == "", name
    assert cache.read(f"__file{app}/motd", "stderr/gencode-local") == ""

    second = scenario.config(manifest, "-v").ok()
    cache = second.cache()
    assert code_files(cache) == []
    assert cache.global_lines("messages") == []
    assert "Processing" not in second.stdout
    assert (app / "motd").read_text() == "welcome\n"


def test_core_types_absent_and_dry_run(scenario: Scenario) -> None:
    t = scenario.target
    (t / "gone").write_text("x")
    (t / "dir").mkdir()
    manifest = f"""
__file {q(t / "gone")} --state absent
__directory {q(t / "dir")} --state absent
__file {q(t / "new")}
"""
    # A dry run changes nothing on the target but still generates the code.
    dry = scenario.config(manifest, "-n").ok().cache()
    assert (t / "gone").exists()
    assert (t / "dir").exists()
    assert not (t / "new").exists()
    assert code_files(dry) != []
    scenario.config(manifest).ok()
    assert not (t / "gone").exists()
    assert not (t / "dir").exists()
    assert (t / "new").is_file()
    assert code_files(scenario.config(manifest).ok().cache()) == []


def test_explorers_see_the_state_left_by_requirements(scenario: Scenario) -> None:
    # __line's explorer needs the file to exist: it only works when it runs after the
    # required __file was applied (spec §5.7).
    path = scenario.target / "created"
    scenario.config(
        f"""
require="__file{path}" __line {q(path)} --line hello
__file {q(path)}
"""
    ).ok()
    assert path.read_text() == "hello\n"
