"""`python -m benchmarks.bench` (`nox -s bench`): cdist-trio against cdist 7.0.0 on the
same sshd targets, workloads W1–W4, a table per workload and a JSON file.

Each tool runs every workload on reset targets (``rm -rf`` of the touched paths and
``/var/lib/cdist``), warm-up runs first, then the median of the measured runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import Fleet, SshdCounts, SshTarget

from . import report
from .localdir import LOCAL_TMPFS, LOCAL_TMPFS_MIN_FREE, local_tmpfs
from .measure import Measurement, become_subreaper, run_measured
from .tools import DEFAULT_CDIST_VENV, Tool, cdist_tool, cdist_trio_tool, ensure_cdist
from .tools import write_ssh_wrappers as ssh_wrappers
from .workloads import (
    REMOTE_OUT_DISK,
    REMOTE_OUT_TMPFS,
    REMOTE_TMPFS,
    Workload,
    reset_command,
    standard_workloads,
    write_manifest,
)

TRANSPORTS = ("openssh", "asyncssh")


@dataclass
class Cell:
    """One tool on one workload: its measured runs and what went wrong, if anything."""

    tool: str
    runs: list[Measurement] = field(default_factory=list)
    sshd: list[SshdCounts] = field(default_factory=list)
    status: str = "ok"
    """ok, timeout or error."""
    error: str = ""

    def median(self, metric: str) -> float | None:
        values = [float(getattr(m, metric)) for m in self.runs if not m.timed_out]
        return report.median(values) if values else None

    def median_sshd(self, metric: str) -> float | None:
        values = [float(getattr(c, metric)) for c in self.sshd]
        return report.median(values) if values else None

    def to_json(self) -> dict[str, Any]:
        runs = [
            {k: v for k, v in asdict(m).items() if k != "output"} | {"cpu": m.cpu}
            for m in self.runs
        ]
        return {
            "tool": self.tool,
            "status": self.status,
            "error": self.error,
            "median": {
                "wall": self.median("wall"),
                "cpu": self.median("cpu"),
                "user": self.median("user"),
                "system": self.median("system"),
                "peak_tree_rss": self.median("peak_tree_rss"),
                "peak_tree_private": self.median("peak_tree_private"),
                "max_process_rss": self.median("max_process_rss"),
                "ssh_connections": self.median_sshd("connections"),
                "ssh_sessions": self.median_sshd("sessions"),
                "ssh_refused_sessions": self.median_sshd("refused_sessions"),
            },
            "runs": runs,
            "sshd": [asdict(c) for c in self.sshd],
        }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 measured run, no warm-up, W4 with 100 objects (a few minutes)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=int(os.environ.get("BENCH_RUNS", "0")) or None,
        help="measured runs per tool and workload; the median is reported (default 3, "
        "quick 1; env BENCH_RUNS)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up runs (default 1)")
    parser.add_argument("--w4-objects", type=int, default=None, help="W4 size (default 500)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("BENCH_TIMEOUT", "0")) or None,
        help="seconds one tool run may take before it is killed and reported as timeout "
        "(default 900, quick 300; env BENCH_TIMEOUT)",
    )
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3")
    parser.add_argument(
        "--remote-dir-on-disk",
        action="store_true",
        help=f"keep the tools' remote directory at {REMOTE_OUT_DISK} on the targets' disk "
        f"instead of a tmpfs at {REMOTE_TMPFS} (see benchmarks/README.md)",
    )
    parser.add_argument(
        "--local-dir-on-disk",
        action="store_true",
        help=f"keep the tools' local work directory ($TMPDIR) and cache ($HOME) on the "
        f"disk instead of a tmpfs at {LOCAL_TMPFS} (see benchmarks/README.md)",
    )
    parser.add_argument("--no-cdist", action="store_true", help="skip cdist 7.0.0 (no ratios then)")
    parser.add_argument("--cdist-venv", type=Path, default=DEFAULT_CDIST_VENV)
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    return parser


def _remote_out(options: argparse.Namespace) -> str:
    """Both tools' ``-r``: on the targets' tmpfs unless ``--remote-dir-on-disk``."""
    return REMOTE_OUT_DISK if options.remote_dir_on_disk else REMOTE_OUT_TMPFS


def _reset(targets: Sequence[SshTarget], remote_out: str) -> None:
    command = reset_command(remote_out)
    with concurrent.futures.ThreadPoolExecutor(min(len(targets), 10)) as pool:
        list(pool.map(lambda t: t.shell(command), targets))


def _counts(targets: Sequence[SshTarget]) -> SshdCounts:
    """Summed sshd counts; docker copies logs asynchronously, so read until stable."""

    def read() -> SshdCounts:
        with concurrent.futures.ThreadPoolExecutor(min(len(targets), 10)) as pool:
            counts = list(pool.map(lambda t: t.sshd_counts(), targets))
        return SshdCounts(
            **{f.name: sum(getattr(c, f.name) for c in counts) for f in fields(SshdCounts)}
        )

    previous = read()
    for _ in range(20):
        time.sleep(0.1)
        current = read()
        if current == previous:
            return current
        previous = current
    return previous


class Bench:
    def __init__(self, fleet: Fleet, tools: list[Tool], options: argparse.Namespace) -> None:
        self.fleet = fleet
        self.tools = tools
        self.runs: int = options.runs
        self.warmup: int = options.warmup
        self.timeout: float = options.timeout
        self.remote_out = _remote_out(options)
        self.scratch = Path(tempfile.mkdtemp(prefix="cdist-trio-bench-"))
        tmpfs = None if options.local_dir_on_disk else local_tmpfs()
        self.local_on_tmpfs = tmpfs is not None
        #: Where each run's $HOME and $TMPDIR go: the tmpfs, else the scratch.
        self.local = (
            Path(tempfile.mkdtemp(prefix="cdist-trio-bench-", dir=tmpfs)) if tmpfs else self.scratch
        )
        self.applied: dict[str, tuple[str, int, int]] = {}
        self.failed = False

    def hosts_file(self, workload: Workload) -> Path:
        path = self.scratch / f"hosts-{workload.hosts}"
        path.write_text("".join(f"{h}\n" for h in self.fleet.hosts[: workload.hosts]))
        return path

    def one_run(self, tool: Tool, workload: Workload, manifest: Path) -> Measurement:
        # Each run gets its own $HOME and $TMPDIR.  On the disk they stay until the session
        # ends: deleting a run's cache (thousands of small files) right before the next run
        # makes that run's file creation slow on ext4 without a journal (it skips recently
        # deleted inodes), whichever tool.  A tmpfs has no such scan: removed right away.
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.local))
        tmpdir = home / "tmp"
        tmpdir.mkdir()
        try:
            return run_measured(
                tool.argv(
                    manifest,
                    self.hosts_file(workload),
                    workload.parallel,
                    workload.jobs,
                    self.remote_out,
                ),
                env=tool.env(home, tmpdir),
                timeout=self.timeout,
            )
        finally:
            if self.local_on_tmpfs:
                shutil.rmtree(home, ignore_errors=True)

    def measure(self, tool: Tool, workload: Workload) -> Cell:
        targets = self.fleet.targets[: workload.hosts]
        manifest = write_manifest(self.scratch, workload.objects)
        cell = Cell(tool.name)
        state = (tool.name, workload.hosts, workload.objects)
        if not workload.reset_before and self.applied.get("state") != state:
            # prime: this tool applies the workload once, unmeasured
            _reset(targets, self.remote_out)
            if not self._check(cell, self.one_run(tool, workload, manifest), "prime"):
                return cell
        for index in range(self.warmup + self.runs):
            measured = index >= self.warmup
            if workload.reset_before:
                _reset(targets, self.remote_out)
            before = _counts(targets) if measured else None
            result = self.one_run(tool, workload, manifest)
            if not self._check(cell, result, "run" if measured else "warm-up"):
                if measured:
                    cell.runs.append(result)
                break
            self.applied["state"] = state
            if before is not None:
                cell.runs.append(result)
                cell.sshd.append(_counts(targets) - before)
            print(
                f"bench: {workload.key} {tool.name} {'run' if measured else 'warm-up'} "
                f"{index - self.warmup + 1 if measured else index + 1}: {result.wall:.2f} s wall, "
                f"{result.cpu:.2f} s CPU",
                flush=True,
            )
        return cell

    def _check(self, cell: Cell, result: Measurement, what: str) -> bool:
        if result.timed_out:
            cell.status = "timeout"
            cell.error = f"{what} killed after {self.timeout:g} s"
            self.applied.pop("state", None)
            print(f"bench: {cell.tool}: {cell.error}", flush=True)
            return False
        if result.returncode != 0:
            cell.status = "error"
            cell.error = f"{what} exited {result.returncode}: {result.output[-2000:]}"
            self.applied.pop("state", None)
            self.failed = True
            print(f"bench: {cell.tool}: {cell.error}", file=sys.stderr, flush=True)
            return False
        return True


def render(workload: Workload, cells: list[Cell]) -> str:
    baseline = next((c for c in cells if c.tool.startswith("cdist ")), None)
    headers = [
        "tool",
        "wall s",
        "CPU s",
        "tree RSS MiB",
        "private MiB",
        "max proc MiB",
        "ssh conns",
        "sessions",
        "refused",
        "wall/cdist",
        "CPU/cdist",
    ]
    rows = []
    for cell in cells:
        if cell.status != "ok" and not cell.runs:
            rows.append([cell.tool, cell.status, *["-"] * (len(headers) - 2)])
            continue
        wall, cpu = cell.median("wall"), cell.median("cpu")
        base_wall = baseline.median("wall") if baseline and baseline.status == "ok" else None
        base_cpu = baseline.median("cpu") if baseline and baseline.status == "ok" else None
        conns, sessions = cell.median_sshd("connections"), cell.median_sshd("sessions")
        refused = cell.median_sshd("refused_sessions")
        rows.append(
            [
                cell.tool,
                report.seconds(wall) if cell.status == "ok" else cell.status,
                report.seconds(cpu),
                report.mib(cell.median("peak_tree_rss")),
                report.mib(cell.median("peak_tree_private")),
                report.mib(cell.median("max_process_rss")),
                "-" if conns is None else f"{conns:.0f}",
                "-" if sessions is None else f"{sessions:.0f}",
                "-" if refused is None else f"{refused:.0f}",
                report.ratio(wall, base_wall) if cell is not baseline else "1.00x",
                report.ratio(cpu, base_cpu) if cell is not baseline else "1.00x",
            ]
        )
    return f"{workload.key}: {workload.title}\n" + report.format_table(headers, rows)


def _groups(workloads: Sequence[Workload]) -> list[list[Workload]]:
    """Workloads in order, each "nothing to change" one grouped with the one before it."""
    groups: list[list[Workload]] = []
    for workload in workloads:
        if not workload.reset_before and groups:
            groups[-1].append(workload)
        else:
            groups.append([workload])
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    if options.runs is None:
        options.runs = 1 if options.quick else 3
    if options.warmup is None:
        options.warmup = 0 if options.quick else 1
    if options.w4_objects is None:
        options.w4_objects = 100 if options.quick else 500
    if options.timeout is None:
        options.timeout = 300.0 if options.quick else 900.0
    workloads = standard_workloads(w4_objects=options.w4_objects)
    if options.only:
        keep = {k.strip().upper() for k in options.only.split(",")}
        workloads = [w for w in workloads if w.key in keep]
    if not become_subreaper():
        print(
            "bench: could not become a child subreaper; daemonised ssh masters are not "
            "counted in CPU",
            file=sys.stderr,
        )
    n_targets = max(w.hosts for w in workloads)
    print(f"bench: starting {n_targets} debian target(s) ...", flush=True)
    results: dict[str, Any] = {
        "kind": "bench",
        "machine": report.machine(),
        "settings": {
            "runs": options.runs,
            "warmup": options.warmup,
            "quick": options.quick,
            "timeout": options.timeout,
            "sshd": "defaults (MaxSessions 10, MaxStartups 10:30:100), debian flavour",
            "remote_dir": _remote_out(options),
            "remote_dir_on": "disk" if options.remote_dir_on_disk else "tmpfs",
        },
        "workloads": [],
    }
    tmpfs = () if options.remote_dir_on_disk else (REMOTE_TMPFS,)
    with Fleet(n_targets, flavour="debian", tmpfs=tmpfs) as fleet:
        print(f"bench: targets up in {fleet.start_seconds:.1f} s", flush=True)
        tools = [cdist_trio_tool(t, fleet.ssh_config) for t in TRANSPORTS]
        bench = Bench(fleet, tools, options)
        results["settings"]["local_dir"] = str(bench.local)
        results["settings"]["local_dir_on"] = "tmpfs" if bench.local_on_tmpfs else "disk"
        if not bench.local_on_tmpfs and not options.local_dir_on_disk:
            print(
                f"bench: {LOCAL_TMPFS} is no writable tmpfs with "
                f"{LOCAL_TMPFS_MIN_FREE // 2**20} MiB free; local files stay on the disk"
            )
        if not options.no_cdist:
            wrappers = ssh_wrappers(bench.scratch / "bin", fleet.ssh_config)
            tools.append(cdist_tool(ensure_cdist(options.cdist_venv), wrappers))
        tables = []
        try:
            for group in _groups(workloads):
                # A "nothing to change" workload runs right after its twin, per tool, so
                # the twin's last run is the state it starts from.
                cells: dict[str, list[Cell]] = {w.key: [] for w in group}
                for tool in tools:
                    for workload in group:
                        cells[workload.key].append(bench.measure(tool, workload))
                for workload in group:
                    table = render(workload, cells[workload.key])
                    tables.append(table)
                    print("\n" + table + "\n", flush=True)
                    results["workloads"].append(
                        {**asdict(workload), "cells": [c.to_json() for c in cells[workload.key]]}
                    )
        finally:
            for directory in {bench.scratch, bench.local}:
                shutil.rmtree(directory, ignore_errors=True)
    path = report.write_json("latest", results, options.output)
    print("\n\n".join(tables))
    print(f"\nbench: results written to {path}")
    return 1 if bench.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
