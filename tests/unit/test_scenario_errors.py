"""Scenarios of spec §20 about reporting: exit status, log lines, the failed-hosts line and
cdist's error report blocks (spec §2.4, §5.6, §12.1, §12.3).  Objects of ``__fail`` break
in the stage named by ``--stage``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.unit.scenario_support import CONF, CONF_BROKEN_EXPLORER, Scenario, q

FAILED_LOCALHOST = "ERROR: cdist: Failed to configure the following hosts: localhost\n"


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def block(stderr: str, header: str) -> str:
    """The error report starting at ``header``, checked for its '=' underline."""
    assert header in stderr, stderr
    text = stderr[stderr.index(header) :]
    lines = text.splitlines()
    assert lines[1] == "=" * len(header)
    return text


def section(report: str, label: str) -> str:
    """The content of one ``<name>:stdout``/``<name>:stderr`` section of a report."""
    match = re.search(
        rf"^{re.escape(label)}\n-{{{len(label)}}}\n(.*?)(?:\n\n|\nERROR: |\Z)", report, re.M | re.S
    )
    assert match, (label, report)
    return match[1]


def labels(report: str) -> list[str]:
    return re.findall(r"^(\S+:std(?:out|err))\n-+$", report, re.M)


def test_run_success_exit_status_and_log_lines(scenario: Scenario) -> None:
    manifest = scenario.manifest(f"__step a --log {q(scenario.log)}\n__stdin quiet\n")
    outcome = scenario.config(manifest, "-vv").ok()
    out = outcome.stdout
    for line in (
        "VERBOSE: localhost: Running global explorers",
        f"VERBOSE: localhost: Running initial manifest {manifest}",
        "VERBOSE: localhost: Preparing object __step/a",
        "VERBOSE: localhost: Running manifest and explorers for __step/a",
        "VERBOSE: localhost: Running object __step/a",
        "INFO: localhost: Processing __step/a",
        "INFO: localhost: Starting configuration run",
    ):
        assert f"{line}\n" in out, line
    assert re.search(r"^INFO: localhost: Finished successful run in \d+\.\d\d seconds$", out, re.M)
    assert re.search(r"^VERBOSE: config: Total processing time for 1 host\(s\): [\d.]+$", out, re.M)
    # Only objects with code are "processed".
    assert "Processing __stdin/quiet" not in out
    assert outcome.stderr == ""


def test_run_default_verbosity_is_silent(scenario: Scenario) -> None:
    outcome = scenario.config(f"__step a --log {q(scenario.log)}\n").ok()
    assert outcome.stdout == ""
    assert outcome.stderr == ""


def test_failed_hosts_are_listed_and_others_still_configured(scenario: Scenario) -> None:
    outcome = scenario.config(
        f"""
case $__target_host in bad*) echo "no $__target_host" >&2; exit 1 ;; esac
__step "$__target_host" --log {q(scenario.log)}
""",
        hosts=("bad1", "good", "bad2"),
    )
    assert outcome.status == 1
    assert outcome.stderr.endswith(
        "ERROR: cdist: Failed to configure the following hosts: bad1 bad2\n"
    )
    assert "ERROR: bad1: " in outcome.stderr
    assert "ERROR: bad2: " in outcome.stderr
    assert outcome.cache("good").object_names() == ["__step/good"]
    assert not outcome.has_cache("bad1")
    assert not outcome.has_cache("bad2")
    # A failed host's work dir is kept for debugging (spec §4, §5.12).
    assert (scenario.workdir("bad1") / "stderr" / "init").read_text() == "no bad1\n"
    assert scenario.log_lines() == ["local __step/good", "remote __step/good"]


def test_initial_manifest_missing(scenario: Scenario) -> None:
    missing = scenario.tmp / "nonexistent" / "init"
    outcome = scenario.config(missing)
    assert outcome.status == 1
    assert f"ERROR: localhost: 'Initial manifest missing: {missing}'\n" in outcome.stderr
    report = block(outcome.stderr, "Error processing initial manifest")
    assert f"\npath: {missing}\n" in report
    assert outcome.stderr.endswith(FAILED_LOCALHOST)


def test_initial_manifest_missing_symlink_names_its_target(scenario: Scenario) -> None:
    link = scenario.tmp / "init-link"
    link.symlink_to(scenario.tmp / "gone")
    outcome = scenario.config(link)
    assert outcome.status == 1
    expected = f"'Initial manifest missing: {link} -> {os.path.realpath(link)}'"
    assert expected in outcome.stderr


def test_initial_manifest_failure_report(scenario: Scenario) -> None:
    manifest = scenario.manifest("echo 'init out'\necho 'init err' >&2\nexit 5\n")
    outcome = scenario.config(manifest)
    assert outcome.status == 1
    report = block(outcome.stderr, "Error processing initial manifest")
    assert f"\npath: {manifest}\n" in report
    assert labels(report) == ["init:stdout", "init:stderr"]
    assert section(report, "init:stdout") == "init out"
    assert section(report, "init:stderr") == "init err"
    assert outcome.stderr.endswith(FAILED_LOCALHOST)


def fail_object(scenario: Scenario, stage: str) -> tuple[str, Path]:
    manifest = scenario.manifest(f"__fail x --stage {stage}\n")
    outcome = scenario.config(manifest)
    assert outcome.status == 1
    assert outcome.stderr.startswith("ERROR: localhost: ")
    assert outcome.stderr.endswith(FAILED_LOCALHOST)
    assert not outcome.has_cache()
    return outcome.stderr, manifest


def assert_object_params(scenario: Scenario, report: str, manifest: Path) -> None:
    workdir = scenario.workdir()
    marker = (workdir / "object_marker").read_text().strip()
    assert "\nname: __fail/x\n" in report
    assert f"\npath: {workdir}/object/__fail/x/{marker}\n" in report
    assert f"\nsource: {manifest}\n" in report
    assert f"\ntype: {CONF}/type/__fail\n" in report


def assert_stdout_first(report: str) -> None:
    kinds = [label.rsplit(":", 1)[1] for label in labels(report)]
    assert kinds == sorted(kinds, key=lambda kind: kind != "stdout"), kinds


def test_object_error_report_for_failing_manifest(scenario: Scenario) -> None:
    stderr, manifest = fail_object(scenario, "manifest")
    report = block(stderr, "Error processing object '__fail/x'")
    assert_object_params(scenario, report, manifest)
    assert sorted(labels(report)) == ["manifest:stderr", "manifest:stdout"]
    assert_stdout_first(report)
    assert section(report, "manifest:stdout") == "manifest ran for manifest"
    assert section(report, "manifest:stderr") == "manifest: broken on purpose"


def test_object_error_report_for_failing_gencode(scenario: Scenario) -> None:
    stderr, manifest = fail_object(scenario, "gencode")
    report = block(stderr, "Error processing object '__fail/x'")
    assert_object_params(scenario, report, manifest)
    assert sorted(labels(report)) == ["gencode-local:stderr", "manifest:stdout"]
    assert section(report, "gencode-local:stderr") == (
        "gencode-local ran for gencode\ngencode-local: broken on purpose"
    )


def test_object_error_report_for_failing_code_local(scenario: Scenario) -> None:
    stderr, manifest = fail_object(scenario, "code-local")
    report = block(stderr, "Error processing object '__fail/x'")
    assert_object_params(scenario, report, manifest)
    assert "code-local:stderr" in labels(report)
    assert section(report, "code-local:stderr") == "code-local: broken on purpose"


def test_object_error_report_for_failing_code_remote(scenario: Scenario) -> None:
    stderr, manifest = fail_object(scenario, "code-remote")
    first_line = stderr.splitlines()[0]
    assert "code-remote" in first_line
    report = block(stderr, "Error processing object '__fail/x'")
    assert_object_params(scenario, report, manifest)
    assert sorted(labels(report)) == [
        "code-remote:stderr",
        "code-remote:stdout",
        "gencode-local:stderr",
        "manifest:stdout",
    ]
    assert_stdout_first(report)
    assert section(report, "code-remote:stdout") == "code-remote: out"
    assert section(report, "code-remote:stderr") == "code-remote: broken on purpose"


def test_explorer_error_report(scenario: Scenario) -> None:
    stderr, manifest = fail_object(scenario, "explorer")
    report = block(stderr, "Error processing explorer 'probe' of object '__fail/x'")
    workdir = scenario.workdir()
    marker = (workdir / "object_marker").read_text().strip()
    for line in (
        "object name: __fail/x",
        f"object path: {workdir}/object/__fail/x/{marker}",
        f"object source: {manifest}",
        f"object type: {CONF}/type/__fail",
        "explorer name: probe",
    ):
        assert f"\n{line}\n" in report, line
    assert re.search(r"^explorer path: .*/__fail/explorer/probe$", report, re.M)
    assert labels(report) == ["remote:stderr"]
    assert "explorer: broken on purpose" in section(report, "remote:stderr")
    # The type manifest never ran: explorers come first (spec §5.8).
    assert not (workdir / "object" / "__fail" / "x" / marker / "stdout" / "manifest").exists()


def test_global_explorer_error_report(scenario: Scenario) -> None:
    outcome = scenario.config(
        f"__step a --log {q(scenario.log)}\n", conf=(CONF, CONF_BROKEN_EXPLORER)
    )
    assert outcome.status == 1
    report = block(outcome.stderr, "Error processing global explorer 'broken'")
    assert "\nname: broken\n" in report
    assert f"\npath: {scenario.workdir()}/conf/explorer/broken\n" in report
    assert labels(report) == ["remote:stderr"]
    assert "global explorer: broken on purpose" in section(report, "remote:stderr")
    assert outcome.stderr.endswith(FAILED_LOCALHOST)
    # The initial manifest never ran.
    assert scenario.log_lines() == []
    assert not (scenario.workdir() / "object" / "__step").exists()


def test_missing_home_fails_the_host(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "")
    outcome = scenario.config(f"__step a --log {q(scenario.log)}\n")
    assert outcome.status == 1
    assert "No homedir setup and no cache dir location given" in outcome.stderr


def test_no_host_given(scenario: Scenario) -> None:
    outcome = scenario.config(scenario.manifest("true\n"), hosts=())
    assert outcome.status == 1
    assert "ERROR: cdist: Target host(s) missing" in outcome.stderr


def test_manifest_and_hosts_both_from_stdin_is_refused(scenario: Scenario) -> None:
    outcome = scenario.config("-", "-f", "-")
    assert outcome.status == 1
    assert "ERROR: cdist: Cannot read both, manifest and host file, from stdin" in outcome.stderr


def test_invalid_type_entry_is_ignored_with_a_warning(scenario: Scenario) -> None:
    extra = scenario.tmp / "extra-conf"
    (extra / "type").mkdir(parents=True)
    (extra / "type" / "__not_a_dir").write_text("")
    outcome = scenario.config(f"__step a --log {q(scenario.log)}\n", conf=(CONF, extra)).ok()
    assert re.search(
        r"^WARNING: localhost: Ignoring invalid type '__not_a_dir' at '.*/conf/type/__not_a_dir'"
        r" defined at '.*/extra-conf/type/__not_a_dir'$",
        outcome.stdout,
        re.M,
    ), outcome.stdout
    assert not (outcome.cache().path / "bin" / "__not_a_dir").exists()


def test_initial_manifest_missing_default(scenario: Scenario) -> None:
    outcome = scenario.config(None)
    assert outcome.status == 1
    assert "ERROR: localhost: 'Initial manifest missing'\n" in outcome.stderr
    report = block(outcome.stderr, "Error processing initial manifest")
    assert f"\npath: {scenario.workdir()}/conf/manifest/init\n" in report


def test_timestamp_prefix(scenario: Scenario) -> None:
    outcome = scenario.config("true\n", "-v", "-P").ok()
    assert re.search(
        r"^INFO: localhost: \[\d{14}\.\d{6}\] Starting configuration run$", outcome.stdout, re.M
    ), outcome.stdout
