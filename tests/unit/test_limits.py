"""The open-files limit: the command line raises a low soft limit to what the run may
need, within the hard limit, so many hosts at a time do not fail for want of
descriptors the system would give."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cdist_trio.limits import open_files_needed
from tests.unit.scenario_support import CONF

HOSTS = [f"h{i}" for i in range(1, 21)]


def limited(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def test_open_files_needed_grows_with_hosts_and_jobs() -> None:
    one = open_files_needed(1, 1)
    assert open_files_needed(20, 1) > one
    assert open_files_needed(20, 4) > open_files_needed(20, 1)
    # 1,000 hosts at a time need far more than a usual soft limit of 1024
    assert open_files_needed(1000, 4) > 10_000


def test_ensure_open_files_raises_the_soft_limit_within_the_hard_one() -> None:
    code = (
        "import json, resource\n"
        "from cdist_trio.limits import ensure_open_files\n"
        "steps = [ensure_open_files(n) for n in (50, 300, 1000)]\n"
        "print(json.dumps([[s.before, s.after, s.hard, s.raised] for s in steps]\n"
        "                 + [list(resource.getrlimit(resource.RLIMIT_NOFILE))]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=limited(100, 400),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == [
        [100, 100, 400, False],  # enough already: never lowered
        [100, 300, 400, True],  # raised to the need
        [300, 400, 400, True],  # capped by the hard limit
        [400, 400],
    ]


def run_twenty_hosts(tmp_path: Path, soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "manifest"
    manifest.write_text(f"__step one --log {tmp_path}/log-$__target_host\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDIST_", "__"))}
    argv = [
        sys.executable, "-m", "cdist_trio", "config", "--transport", "local",
        "-r", str(tmp_path / "remote" / "%N"), "-c", str(CONF), "-i", str(manifest),
        "-p", "-j", "4", "--", *HOSTS,
    ]  # fmt: skip
    return subprocess.run(
        argv,
        env={**env, "HOME": str(home)},
        preexec_fn=limited(soft, hard),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_low_soft_limit_is_raised_and_every_host_runs(tmp_path: Path) -> None:
    # 100 descriptors are too few for 20 hosts at once (they failed with "Too many
    # open files"); the hard limit allows enough.
    done = run_twenty_hosts(tmp_path, 100, 4096)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert len(list(tmp_path.glob("log-h*"))) == 20


def test_a_low_hard_limit_is_named_up_front(tmp_path: Path) -> None:
    done = run_twenty_hosts(tmp_path, 100, 100)
    output = done.stdout + done.stderr
    needed = open_files_needed(20, 4)
    assert (
        f"WARNING: cdist: 20 hosts at a time at -j 4 may need about {needed} open files, "
        "and this process may have 100 (ulimit -Hn): if hosts fail with 'Too many open "
        "files', lower -p or raise the hard limit\n"
    ) in output
    assert "Traceback" not in output
