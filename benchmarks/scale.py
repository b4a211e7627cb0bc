"""`python -m benchmarks.scale` (`nox -s bench-scale`): the engine against many fake
targets with a fixed latency per round trip, to see what it costs per host and object.

Injection: inside the measuring process only, ``cdist_trio.host.open_remote`` (the
name the host scope calls) is replaced by `fake_remote.fake_open_remote`; settings
keep ``transport="openssh"`` so the engine takes its SSH code paths (batching, the
relay for types' own ``$__remote_copy``).  Nothing else is patched: manifests,
emulator calls, gencode scripts are real local processes, and they are measured apart
from the engine's own CPU (``RUSAGE_CHILDREN`` vs ``RUSAGE_SELF``).

Each host count runs in a fresh child process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from . import report
from .fake_remote import FakeCounters, fake_open_remote
from .localdir import LOCAL_TMPFS, LOCAL_TMPFS_MIN_FREE, local_tmpfs
from .workloads import manifest_text

DEFAULT_HOSTS = (1_000, 10_000)
TARGET_HOSTS = (1_000, 10_000)
MAX_ARG_STRLEN = 131_072  # Linux: the longest single argv word
#: What one host leaves on the scratch: its cache (about 0.75 MB at 20 objects) and, while
#: it runs, its work directory.
SCRATCH_PER_HOST = 2**20
#: Files and directories per host on the scratch: 385 for 20 objects (its cache).
INODES_PER_HOST_FIXED = 25
INODES_PER_OBJECT = 19
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


def _forks() -> int:
    """Processes created on this machine since boot (``processes`` in /proc/stat)."""
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


class _PeakRss(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, _rss())


def measure_one(
    hosts: int,
    objects: int,
    latency: float,
    parallel: int,
    jobs: int,
    scratch: Path,
    workers: int = 1,
) -> dict[str, Any]:
    """Configure ``hosts`` fake hosts in this process (``workers`` > 1: in that many
    worker processes, `scale_worker`); the numbers as a dict.

    ``scratch`` (an empty directory) holds the manifest and ``$HOME``, where every host's
    cache goes: about 0.75 MB per host, removed by the caller (`_run_child`)."""
    import cdist_trio.host
    import cdist_trio.workers
    from cdist_trio.hosts import HostSpec
    from cdist_trio.run import run_config
    from cdist_trio.settings import Settings

    os.environ["HOME"] = str(scratch / "home")  # the cache goes there, not to ~
    (scratch / "home").mkdir()
    manifest = scratch / "manifest"
    manifest.write_text(manifest_text(objects))
    manifest.chmod(0o755)
    counters = FakeCounters()
    cdist_trio.host.open_remote = fake_open_remote(latency, counters)  # type: ignore[attr-defined]
    usage_dir = scratch / "workers"
    usage_dir.mkdir()
    cdist_trio.workers.WORKER_COMMAND = (
        *(sys.executable, "-m", "benchmarks.scale_worker"),
        *(str(latency), str(usage_dir)),
    )
    settings = Settings(
        initial_manifest=manifest,
        jobs=jobs,
        parallel=parallel,
        transport="openssh",
        quiet=True,
        workers=workers,
    )
    specs = [HostSpec(f"fake-{i:05d}") for i in range(1, hosts + 1)]
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_before = _rss()
    forks_before = _forks()
    sampler = _PeakRss()
    sampler.start()
    started = time.monotonic()
    result = trio.run(run_config, specs, settings)
    wall = time.monotonic() - started
    peak = sampler.stop()
    forks = _forks() - forks_before
    rss_after = _rss()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    engine_cpu = own.ru_utime + own.ru_stime - self_before.ru_utime - self_before.ru_stime
    local_cpu = (
        children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
    )
    # Worker processes: their own CPU is the engine's, their children's the local
    # scripts'; their peak RSS adds to this process's (an upper bound of the sum).
    for path in usage_dir.glob("*.json"):
        usage = json.loads(path.read_text())
        engine_cpu += usage["cpu"]
        local_cpu -= usage["cpu"]
        peak += usage["max_rss"]
        for name, value in usage["counters"].items():
            if name == "per_host":
                counters.per_host.update(value)
            elif name == "max_command_bytes":
                counters.max_command_bytes = max(counters.max_command_bytes, value)
            else:
                setattr(counters, name, getattr(counters, name) + value)
    failed = [h.host for h in result.hosts if not h.ok]
    total_objects = hosts * objects
    in_flight = min(hosts, parallel)
    per_host = sorted(counters.per_host.values())
    return {
        "hosts": hosts,
        "objects_per_host": objects,
        "latency": latency,
        "parallel": parallel,
        "jobs": jobs,
        "workers": workers,
        "failed_hosts": len(failed),
        "first_error": next((h.error for h in result.hosts if not h.ok), None),
        "wall": wall,
        "engine_cpu": engine_cpu,
        "local_process_cpu": local_cpu,
        "engine_cpu_per_object_ms": engine_cpu / total_objects * 1000,
        "local_cpu_per_object_ms": local_cpu / total_objects * 1000,
        "processes_per_object": forks / total_objects,
        "round_trips": counters.round_trips + counters.hosts,
        "round_trips_per_host": (counters.round_trips + counters.hosts) / hosts,
        "round_trips_per_host_max": (per_host[-1] + 1) if per_host else 0,
        "batch_steps": counters.batch_steps,
        "max_command_bytes": counters.max_command_bytes,
        "bytes_sent": counters.bytes_in,
        "ideal_network_wall": (counters.round_trips + counters.hosts) * latency / parallel,
        "ideal_cpu_wall": (engine_cpu + local_cpu) / (os.cpu_count() or 1),
        "rss_before": rss_before,
        "peak_rss": peak,
        "rss_after": rss_after,
        "peak_rss_per_host_in_flight": (peak - rss_before) / in_flight,
        "retained_rss_per_host": (rss_after - rss_before) / hosts,
    }


def _run_child(hosts: int, options: argparse.Namespace, where: Path | None) -> dict[str, Any]:
    """One host count in a fresh child process; its scratch (the hosts' caches: gigabytes
    at 10,000 hosts) is removed afterwards, whatever the child did.

    The scratch holds the engine's work directories too (the child's ``$TMPDIR``): on one
    filesystem the cache is saved by renames, as with the defaults on most machines.  It
    goes under ``where`` (`local_dir`), else the default temporary directory."""
    scratch = tempfile.mkdtemp(prefix="cdist-trio-scale-", dir=where)
    (Path(scratch) / "tmp").mkdir()
    argv = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--child",
        str(hosts),
        "--scratch",
        scratch,
        "--objects",
        str(options.objects),
        "--latency-ms",
        str(options.latency_ms),
        "-p",
        str(options.parallel),
        "-j",
        str(options.jobs),
        "--workers",
        str(options.workers),
    ]
    env = {**os.environ, "TMPDIR": str(Path(scratch) / "tmp")}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"scale run of {hosts} hosts failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def local_dir(hosts: int, options: argparse.Namespace) -> Path | None:
    """Where a run of ``hosts`` keeps its local files: the tmpfs (see `localdir`) when it
    has room for them, else None (the default temporary directory, on the disk).

    On this machine's disk (ext4 without a journal) the engine's CPU per object depends
    on how many files were deleted in the minutes before: 200 hosts measured 1.36 ms
    per object on the tmpfs and 3.5, 4.5, then 8.8 ms in three runs on the disk."""
    if options.local_dir is not None:
        return Path(options.local_dir)
    if options.local_dir_on_disk:
        return None
    size, inodes = scratch_needs(hosts, options.objects)
    return local_tmpfs(min_free=size, min_inodes=inodes)


def scratch_needs(hosts: int, objects: int) -> tuple[int, int]:
    """Bytes and inodes a run of ``hosts`` leaves on its scratch (their caches), with
    a margin."""
    size = LOCAL_TMPFS_MIN_FREE + hosts * SCRATCH_PER_HOST
    return size, hosts * (INODES_PER_HOST_FIXED + INODES_PER_OBJECT * objects)


def extrapolate(measured: dict[str, Any], hosts: int) -> dict[str, Any]:
    """Linear in hosts for CPU and round trips; wall is the larger of CPU-bound and
    network-bound ideal, scaled by the measured efficiency against that ideal."""
    factor = hosts / measured["hosts"]
    cpu = (measured["engine_cpu"] + measured["local_process_cpu"]) * factor
    cpus = os.cpu_count() or 1
    network = measured["ideal_network_wall"] * factor
    ideal_then = max(measured["ideal_cpu_wall"], measured["ideal_network_wall"])
    efficiency = measured["wall"] / ideal_then if ideal_then > 0 else 1.0
    return {
        "hosts": hosts,
        "extrapolated_from": measured["hosts"],
        "engine_cpu": measured["engine_cpu"] * factor,
        "local_process_cpu": measured["local_process_cpu"] * factor,
        "ideal_network_wall": network,
        "ideal_cpu_wall": cpu / cpus,
        "wall": max(cpu / cpus, network) * efficiency,
    }


def render(rows: Sequence[dict[str, Any]], extrapolated: Sequence[dict[str, Any]]) -> str:
    headers = [
        "hosts",
        "wall s",
        "ideal net s",
        "ideal CPU s",
        "engine CPU ms/obj",
        "local procs CPU ms/obj",
        "procs/obj",
        "round trips/host",
        "peak MiB/host in flight",
        "kept KiB/host",
        "max cmd KiB",
        "failed",
    ]
    table = [
        [
            str(r["hosts"]),
            f"{r['wall']:.1f}",
            f"{r['ideal_network_wall']:.1f}",
            f"{r['ideal_cpu_wall']:.1f}",
            f"{r['engine_cpu_per_object_ms']:.2f}",
            f"{r['local_cpu_per_object_ms']:.2f}",
            f"{r['processes_per_object']:.1f}",
            f"{r['round_trips_per_host']:.1f}",
            f"{r['peak_rss_per_host_in_flight'] / 2**20:.2f}",
            f"{r['retained_rss_per_host'] / 2**10:.1f}",
            f"{r['max_command_bytes'] / 2**10:.0f}",
            str(r["failed_hosts"]),
        ]
        for r in rows
    ]
    for e in extrapolated:
        table.append(
            [
                f"{e['hosts']} (extrapolated)",
                f"~{e['wall']:.0f}",
                f"{e['ideal_network_wall']:.1f}",
                f"{e['ideal_cpu_wall']:.0f}",
                *["same"] * 7,
                "-",
            ]
        )
    return report.format_table(headers, table)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument(
        "--hosts",
        default=",".join(map(str, DEFAULT_HOSTS)),
        help="comma-separated host counts to measure (default 1000,10000: about 3 and 30 "
        "minutes on 2 cores; 50,200 for a first look)",
    )
    parser.add_argument("--objects", type=int, default=20, help="objects per host (default 20)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per round trip")
    parser.add_argument("-p", "--parallel", type=int, default=64)
    parser.add_argument("-j", "--jobs", type=int, default=4)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="engine processes (cdist-trio --workers; default 1): their CPU counts as the "
        "engine's, their peak RSS is added to the measuring process's",
    )
    parser.add_argument("--quick", action="store_true", help="measure 20 hosts only")
    parser.add_argument(
        "--local-dir",
        type=Path,
        default=None,
        help="keep the local files (work directories and caches) in this directory, e.g. "
        "a tmpfs mounted with room for 10,000 hosts (about 10 GiB and 4 million inodes: "
        "mount -t tmpfs -o size=12g,nr_inodes=0 tmpfs DIR)",
    )
    parser.add_argument(
        "--local-dir-on-disk",
        action="store_true",
        help=f"keep the work directories and caches on the disk instead of a tmpfs at "
        f"{LOCAL_TMPFS} (see benchmarks/README.md)",
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    latency = options.latency_ms / 1000
    if options.child is not None:
        if options.scratch is None:
            raise SystemExit("bench-scale: --child needs --scratch")
        data = measure_one(
            options.child,
            options.objects,
            latency,
            options.parallel,
            options.jobs,
            options.scratch,
            options.workers,
        )
        print(json.dumps(data))
        return 0
    counts = [20] if options.quick else [int(h) for h in options.hosts.split(",")]
    rows = []
    for hosts in counts:
        where = local_dir(hosts, options)
        on = f"on the tmpfs at {where}" if where is not None else "on the disk"
        if options.local_dir is not None:
            on = f"in {where}"
        elif where is None and not options.local_dir_on_disk:
            size, inodes = scratch_needs(hosts, options.objects)
            on += (
                f" (the tmpfs at {LOCAL_TMPFS} has not {size / 2**30:.1f} GiB and "
                f"{inodes:,} inodes free; see benchmarks/README.md for the disk's cost)"
            )
        print(
            f"bench-scale: {hosts} hosts x {options.objects} objects, local files {on} ...",
            flush=True,
        )
        row = _run_child(hosts, options, where)
        row["local_dir_on"] = "tmpfs" if where is not None else "disk"
        if options.local_dir is not None:
            row["local_dir_on"] = str(where)
        if row["max_command_bytes"] > MAX_ARG_STRLEN:
            print(
                f"bench-scale: warning: a command of {row['max_command_bytes']} bytes; "
                f"ssh cannot take one argument over {MAX_ARG_STRLEN} (E2BIG)"
            )
        if row["failed_hosts"]:
            print(f"bench-scale: {row['failed_hosts']} host(s) failed: {row['first_error']}")
        rows.append(row)
    largest = max(rows, key=lambda r: r["hosts"])
    extrapolated = [extrapolate(largest, h) for h in TARGET_HOSTS if h > largest["hosts"]]
    table = render(rows, extrapolated)
    data = {
        "kind": "bench-scale",
        "machine": report.machine(),
        "settings": {
            "objects": options.objects,
            "latency_ms": options.latency_ms,
            "parallel": options.parallel,
            "jobs": options.jobs,
            "workers": options.workers,
        },
        "measured": rows,
        "extrapolated": extrapolated,
    }
    path = report.write_json("scale", data, options.output)
    print("\n" + table)
    print(
        "\nMeasured rows ran for real (fake targets, real local processes); extrapolated "
        "rows scale the largest measured run linearly in hosts."
    )
    print(f"bench-scale: results written to {path}")
    return 1 if any(r["failed_hosts"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
