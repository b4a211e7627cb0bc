"""`python -m benchmarks.transport_bench` (`nox -s bench-transport`): what one remote
command costs on each SSH transport against a `minimal` sshd target.

Measures, per transport: the first command on a fresh Remote (connection set-up plus
one command; connections are opened lazily, so this is the handshake as the engine
pays it), commands per second one at a time and with 16 in flight, and this process's
CPU (including its ssh children) per command.
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from cdist_trio.transport import TransportResources, open_remote
from harness import Fleet

from . import report

TRANSPORTS = ("openssh", "asyncssh")
COMMAND = "true"


@dataclass(frozen=True)
class TransportResult:
    transport: str
    first_command_ms: float
    """Median over fresh Remotes: connect (handshake, auth) plus one command."""
    sequential_ms: float
    """Median latency of one command, one at a time, on a warm connection."""
    sequential_per_s: float
    concurrent_per_s: float
    """Commands per second with ``concurrency`` in flight on one Remote."""
    concurrency: int
    cpu_ms_per_command: float
    """CPU of this process and its children (ssh masters, reaped at close) per
    command, over the concurrent phase and the close."""
    connections: int
    sessions: int
    refused: int

    @property
    def handshake_ms(self) -> float:
        return max(self.first_command_ms - self.sequential_ms, 0.0)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def bench_transport(
    fleet: Fleet, transport: str, *, handshakes: int, sequential: int, concurrent: int, width: int
) -> TransportResult:
    host = fleet.hosts[0]
    resources = TransportResources()
    try:
        firsts = []
        for _ in range(handshakes):
            async with open_remote(
                host, transport=transport, resources=resources, ssh_config=fleet.ssh_config
            ) as remote:
                started = time.perf_counter()
                await remote.run(COMMAND)
                firsts.append(time.perf_counter() - started)
        async with open_remote(
            host, transport=transport, resources=resources, ssh_config=fleet.ssh_config
        ) as remote:
            for _ in range(5):  # warm-up
                await remote.run(COMMAND)
            latencies = []
            started = time.perf_counter()
            for _ in range(sequential):
                one = time.perf_counter()
                await remote.run(COMMAND)
                latencies.append(time.perf_counter() - one)
            sequential_wall = time.perf_counter() - started

            remaining = concurrent

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await remote.run(COMMAND)

            cpu_before = _cpu()
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(width):
                    nursery.start_soon(worker)
            concurrent_wall = time.perf_counter() - started
            stats = remote.statistics()
        # After the close, so that the ssh masters are reaped and their CPU counted.
        cpu = _cpu() - cpu_before
    finally:
        resources.close()
    return TransportResult(
        transport=transport,
        first_command_ms=statistics.median(firsts) * 1000,
        sequential_ms=statistics.median(latencies) * 1000,
        sequential_per_s=sequential / sequential_wall,
        concurrent_per_s=concurrent / concurrent_wall,
        concurrency=width,
        cpu_ms_per_command=cpu / concurrent * 1000,
        connections=stats.connections_opened,
        sessions=stats.sessions_opened,
        refused=stats.sessions_refused,
    )


def render(results: Sequence[TransportResult]) -> str:
    headers = [
        "transport",
        "first cmd ms",
        "handshake ms",
        "1 cmd ms",
        "seq cmd/s",
        "concurrent cmd/s",
        "CPU ms/cmd",
        "conns",
        "refused",
    ]
    rows = [
        [
            r.transport,
            f"{r.first_command_ms:.1f}",
            f"{r.handshake_ms:.1f}",
            f"{r.sequential_ms:.2f}",
            f"{r.sequential_per_s:.0f}",
            f"{r.concurrent_per_s:.0f} (x{r.concurrency})",
            f"{r.cpu_ms_per_command:.2f}",
            str(r.connections),
            str(r.refused),
        ]
        for r in results
    ]
    return report.format_table(headers, rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transport_bench")
    parser.add_argument("--quick", action="store_true", help="fewer commands")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    scale = 1 if options.quick else 4
    counts = {
        "handshakes": 5 * scale // 2 or 5,
        "sequential": 100 * scale,
        "concurrent": 200 * scale,
    }
    results: list[TransportResult] = []
    with Fleet(1, flavour="minimal") as fleet:
        for transport in options.transports.split(","):
            work = functools.partial(
                bench_transport, fleet, transport, width=options.concurrency, **counts
            )
            result = trio.run(work)
            results.append(result)
            print(f"bench-transport: {transport} done", flush=True)
    table = render(results)
    data: dict[str, Any] = {
        "kind": "bench-transport",
        "machine": report.machine(),
        "settings": {**counts, "concurrency": options.concurrency, "command": COMMAND},
        "results": [asdict(r) | {"handshake_ms": r.handshake_ms} for r in results],
    }
    path = report.write_json("transport", data, options.output)
    print("\n" + table)
    print(f"\nbench-transport: results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
