"""The JSON report (``--report FILE``) against its shipped schema, error report files,
and no secrets in output: parameter values only with ``--report-values``."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import cdist_trio
from cdist_trio import HostError, HostReport, HostStatus, ObjectReport, RunReport, Settings
from cdist_trio.errors import Stream
from cdist_trio.report import report_json, write_error_reports, write_report
from cdist_trio.transport.base import RemoteStatistics
from tests.unit.scenario_support import Scenario
from tests.unit.test_api import home, local_settings

__all__ = ["home"]  # the fixture, shared with test_api

SECRET = "s3cr3t-Value-42"


def validate(document: object) -> None:
    schema = cdist_trio.report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def _synthetic() -> RunReport:
    ok = HostReport(
        "web-1",
        HostStatus.OK,
        2.5,
        objects=(ObjectReport("__file/etc/motd", True, 0.1, 0.2, code_exit_status=0),),
        statistics=RemoteStatistics(1, 4, 2, 1, 300),
        stage="cache",
    )
    failed = HostReport(
        "web-2",
        HostStatus.FAILED,
        1.0,
        error="manifest failed",
        failure=HostError(
            "InitialManifestError",
            "manifest failed\nmore",
            {"path": "/m"},
            (Stream("init:stderr", "boom\n"),),
        ),
        objects=(
            ObjectReport(
                "__x/y",
                True,
                0.1,
                0.1,
                code_exit_status=3,
                error="code-remote exited",
                parameters={"a": ("1", "2")},
            ),
        ),
    )
    timed_out = HostReport("web-3", HostStatus.TIMED_OUT, 5.0, error="timed out after 5 s")
    interrupted = HostReport("web-4", HostStatus.INTERRUPTED, 0.0, error="interrupted")
    return RunReport((ok, failed, timed_out, interrupted), 6.0, Settings(jobs=4), 1.7e9)


def test_report_synthetic_report_matches_the_schema() -> None:
    document = report_json(_synthetic())
    validate(document)
    statuses = [h["status"] for h in document["hosts"]]
    assert statuses == ["ok", "failed", "timed out", "interrupted"]
    failed = document["hosts"][1]["error"]
    assert failed["type"] == "InitialManifestError"
    assert failed["streams"] == [{"label": "init:stderr", "content": "boom\n"}]
    assert document["hosts"][2]["error"]["type"] == "TimedOut"
    assert document["hosts"][3]["error"]["type"] == "Interrupted"
    assert document["settings"]["jobs"] == 4


def test_report_parameters_only_with_values() -> None:
    without = report_json(_synthetic())
    assert all("parameters" not in o for h in without["hosts"] for o in h["objects"])
    with_values = report_json(_synthetic(), values=True)
    validate(with_values)
    assert with_values["hosts"][1]["objects"][0]["parameters"] == {"a": ["1", "2"]}


def test_report_schema_rejects_a_broken_report() -> None:
    document = report_json(_synthetic())
    document["hosts"][1]["error"] = None  # a failed host must say why
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_report_by_severity_puts_failures_first() -> None:
    report = RunReport(tuple(reversed(_synthetic().hosts)), 1.0)
    assert [h.host for h in report.by_severity()] == ["web-2", "web-3", "web-4", "web-1"]


def test_report_write_is_atomic_json(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old")
    write_report(_synthetic(), path)
    assert json.loads(path.read_text())["format"] == "cdist-trio-report/1"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_report_error_report_files(tmp_path: Path) -> None:
    report = write_error_reports(_synthetic(), lambda host: tmp_path / host / "error")
    paths = {h.host: h.error_report for h in report.hosts}
    assert paths["web-1"] is None
    assert paths["web-2"] == str(tmp_path / "web-2" / "error")
    assert (tmp_path / "web-3" / "error").read_text().startswith("web-3: timed out")


# --- real runs ----------------------------------------------------------------------


async def test_report_real_run_matches_the_schema(tmp_path: Path, home: Path) -> None:
    manifest = (
        f"__step one --value {SECRET} --log {tmp_path}/log\n"
        'if [ "$__target_host" = bad ]; then echo "manifest: broken" >&2; exit 1; fi\n'
    )
    report = await cdist_trio.config(
        ["good", "bad"], local_settings(tmp_path, manifest, parallel=2)
    )
    good, bad = report.hosts
    assert good.ok
    assert bad.status is HostStatus.FAILED
    document = report_json(report)
    validate(document)
    error = document["hosts"][1]["error"]
    assert error["type"] == "InitialManifestError"
    assert {"label": "init:stderr", "content": "manifest: broken\n"} in error["streams"]
    assert Path(error["report_path"]).read_text().startswith("bad: failed during initial manifest")
    assert document["hosts"][0]["objects"][0]["code_exit_status"] == 0
    assert SECRET not in json.dumps(document)


async def test_report_code_exit_status_of_a_failed_object(tmp_path: Path, home: Path) -> None:
    report = await cdist_trio.config(
        ["h1"], local_settings(tmp_path, "__fail x --stage code-remote\n")
    )
    (host,) = report.hosts
    assert host.status is HostStatus.FAILED
    (obj,) = host.objects
    assert obj.code_exit_status == 3
    assert obj.error is not None
    assert "code-remote exited with status 3" in obj.error
    validate(report_json(report))


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def test_report_cli_writes_a_valid_report_without_secrets(
    scenario: Scenario, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    outcome = scenario.config(f"__step one --value {SECRET}\n", "-vv", "--report", str(path))
    outcome.ok()
    document = json.loads(path.read_text())
    validate(document)
    assert document["hosts"][0]["host"] == "localhost"
    # Parameter values appear neither in the log (below -vvv) nor in the report.
    assert SECRET not in outcome.stdout + outcome.stderr
    assert SECRET not in path.read_text()


def test_report_cli_report_values(scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    scenario.config(f"__step one --value {SECRET}\n", "--report", str(path), "--report-values").ok()
    document = json.loads(path.read_text())
    validate(document)
    assert document["hosts"][0]["objects"][0]["parameters"] == {"value": SECRET}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--report-values"], "--report-values needs --report FILE"),
        (["--progress", "--no-progress"], "contradict each other"),
    ],
)
def test_report_cli_usage_errors(scenario: Scenario, options: list[str], message: str) -> None:
    outcome = scenario.config("", *options)
    assert outcome.status == 2
    assert message in outcome.stderr


def test_report_cli_unwritable_report_dir(scenario: Scenario, tmp_path: Path) -> None:
    outcome = scenario.config("", "--report", str(tmp_path / "missing" / "r.json"))
    assert outcome.status == 1
    assert "--report:" in outcome.stderr


def test_run_summary_names_each_host_once_with_its_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cdist_trio.run import _log_summary

    with caplog.at_level("ERROR", logger="cdist_trio"):
        _log_summary(_synthetic())
    lines = [r.getMessage() for r in caplog.records if r.name == "cdist_trio.cdist"]
    assert "web-3: timed out after 5 s" in lines  # not "timed out: timed out after"
    assert "web-4: interrupted" in lines
    assert any(line.startswith("web-2: failed: ") for line in lines)
    assert lines[-1] == "Failed to configure the following hosts: web-2 web-3 web-4"
