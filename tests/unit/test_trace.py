"""``-vvvv`` (TRACE): every local and remote command is logged with how it ended, and
still no parameter value or file content (docs/output.md, "No secrets in output")."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from scenario_support import CONF, Scenario

SECRET = "tr4ce-Secret-17"


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def _manifest(scenario: Scenario) -> str:
    directory = shlex.quote(str(scenario.target / "app"))
    path = shlex.quote(str(scenario.target / "app" / "conf"))
    return (
        f"__directory {directory}\n"
        f'echo {SECRET} | require="__directory{scenario.target}/app" '
        f"__file {path} --source - --mode 0640\n"
        f"__step one --value {SECRET}\n"
    )


def test_trace_logs_each_command_and_how_it_ended(scenario: Scenario) -> None:
    outcome = scenario.config(_manifest(scenario), "-vvvv").ok()
    log = outcome.stdout
    assert (scenario.target / "app" / "conf").read_text() == f"{SECRET}\n"
    # The remote side: the setup and global explorers, then each batch, with its status.
    remote = [line for line in log.splitlines() if line.startswith("TRACE: localhost: remote")]
    assert remote, log
    assert "rm -rf" in remote[0]
    assert log.count("\n-> exit status 0, ") >= len(remote)
    # The local side: the initial manifest and each object's gencode scripts, by name.
    assert "local command: /bin/sh -e " in log
    gencode = str(Path("conf", "type", "__file", "gencode-remote"))
    assert f"{gencode} (its twin, in the engine) for __file{scenario.target}/app/conf" in log
    assert "(sourced by a pooled shell) for __step/one" in log
    # Neither the inline content, nor a parameter value, at any verbosity.
    assert SECRET not in outcome.stdout + outcome.stderr


def test_an_edited_copy_of_a_bundled_gencode_script_runs_as_a_script(
    scenario: Scenario, tmp_path: Path
) -> None:
    # The twin stands in for one exact script: a conf dir's __file that differs by a
    # comment (as cdist's own, or a local fork, differs) runs as it is.
    bundled = Path(__file__).resolve().parents[2] / "cdist_trio" / "conf" / "type" / "__file"
    edited = tmp_path / "edited-conf" / "type" / "__file"
    shutil.copytree(bundled, edited)
    script = edited / "gencode-remote"
    script.write_bytes(script.read_bytes() + b"# a local edit\n")
    outcome = scenario.config(_manifest(scenario), "-vvvv", conf=(CONF, edited.parents[1])).ok()
    assert (scenario.target / "app" / "conf").read_text() == f"{SECRET}\n"
    name = f"for __file{scenario.target}/app/conf"
    # (the scripts run from the work dir's merged copy of the conf dirs)
    assert f"__file/gencode-remote (sourced by a pooled shell) {name}" in outcome.stdout
    assert f"__file/gencode-local (its twin, in the engine) {name}" in outcome.stdout
    assert "__file/gencode-remote (its twin" not in outcome.stdout


def test_a_declining_twin_leaves_the_object_to_its_script(scenario: Scenario) -> None:
    # Content that is not text needs od: the gencode-remote twin declines, the script
    # runs (with its message files), and the file is byte-exact all the same.
    path = scenario.target / "blob"
    content = b"\x00\x01\xffbinary\n"
    source = scenario.tmp / "blob.source"
    source.write_bytes(content)
    manifest = f"__file {shlex.quote(str(path))} --source {shlex.quote(str(source))}\n"
    outcome = scenario.config(manifest, "-vvvv").ok()
    assert path.read_bytes() == content
    name = f"for __file{path}"
    assert f"__file/gencode-local (its twin, in the engine) {name}" in outcome.stdout
    assert f"__file/gencode-remote (sourced by a pooled shell) {name}" in outcome.stdout
    assert f"__file{path}:upload" in outcome.cache().global_lines("messages")


def test_a_failing_command_is_traced_with_its_status(scenario: Scenario) -> None:
    outcome = scenario.config("__fail x --stage code-remote\n", "-vvvv")
    assert outcome.status == 1
    assert "\n-> exit status 3, " in outcome.stdout


def test_below_trace_no_command_is_logged(scenario: Scenario) -> None:
    outcome = scenario.config(_manifest(scenario), "-vvv").ok()
    # DEBUG names the remote exec/copy commands types are given, once per host
    assert outcome.stdout.count("DEBUG: localhost: remote exec for types: ") == 1
    assert outcome.stdout.count("DEBUG: localhost: remote copy for types: ") == 1
    assert "remote command" not in outcome.stdout
    assert "local command" not in outcome.stdout
