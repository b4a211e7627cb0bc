"""``--report FILE`` from a real run over SSH with one successful, one failed and one
timed-out host, validated against the JSON Schema shipped in the package."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest
import trio

import cdist_trio
from harness.plugin import FleetFactory

pytestmark = pytest.mark.integration

MANIFEST = """\
if [ "$__target_host" = target-3 ]; then echo "manifest: broken on purpose" >&2; exit 1; fi
__directory /tmp/report-dir --mode 0750
"""


@pytest.mark.parametrize("transport", ["openssh", "asyncssh"])
async def test_report_failed_timed_out_and_ok_hosts(
    fleet: FleetFactory, tmp_path: Path, transport: str
) -> None:
    three = fleet(3)
    three[0].shell("rm -rf /tmp/report-dir /var/lib/cdist", check=False)
    home = tmp_path / "home"
    home.mkdir()
    manifest = tmp_path / "manifest"
    manifest.write_text(MANIFEST)
    report_path = tmp_path / "report.json"
    argv = [
        sys.executable, "-m", "cdist_trio", "config", "--transport", transport,
        "-F", str(three.ssh_config), "-i", str(manifest), "-p", "3", "--timeout", "3",
        "--report", str(report_path), *three.hosts,
    ]  # fmt: skip
    three[1].pause()
    try:
        with trio.fail_after(60):
            result = await trio.run_process(
                argv,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "HOME": str(home)},
            )
    finally:
        three[1].unpause()
    assert result.returncode == 1, result.stderr.decode()
    document = json.loads(report_path.read_text())
    jsonschema.Draft202012Validator(cdist_trio.report_schema()).validate(document)

    ok, timed_out, failed = document["hosts"]
    assert [ok["host"], timed_out["host"], failed["host"]] == three.hosts
    assert ok["status"] == "ok"
    assert ok["error"] is None
    (directory,) = ok["objects"]
    assert directory["name"] == "__directory/tmp/report-dir"
    assert directory["has_code"] is True
    assert directory["code_exit_status"] == 0
    assert ok["statistics"]["connections_opened"] >= 1
    assert ok["statistics"]["sessions_opened"] >= 1

    assert timed_out["status"] == "timed out"
    assert timed_out["error"]["type"] == "TimedOut"
    assert timed_out["error"]["summary"].startswith("timed out after 3 s")
    assert Path(timed_out["error"]["report_path"]).is_file()

    assert failed["status"] == "failed"
    assert failed["stage"] == "initial manifest"
    assert failed["error"]["type"] == "InitialManifestError"
    streams = {s["label"]: s["content"] for s in failed["error"]["streams"]}
    assert streams["init:stderr"] == "manifest: broken on purpose\n"
    report_text = Path(failed["error"]["report_path"]).read_text()
    assert "Error processing initial manifest" in report_text

    assert document["settings"]["transport"] == transport
    assert document["settings"]["timeout"] == 3
    assert document["ok"] is False
