"""An in-memory target for `bench-scale`: a `Remote` that answers the engine's commands
plausibly after a fixed latency per round trip, with no SSH and no target at all.

It recognises the engine's batch scripts (`cdist_trio.batch.build_script`) and answers
each step: global explorers with canned facts of a Debian host, type explorers with
"nothing there" (``type`` → ``none``, everything else empty, so every object generates
code), code-remote with success.  Any other command (setup, mkdir, uploads) succeeds
with no output.  It only ever sleeps: the fake costs CPU, never the network.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from cdist_trio.transport.base import Completed, Remote, RemoteStatistics, checked

GLOBAL_EXPLORERS = {
    "cpu_cores": "2",
    "hostname": "fake",
    "init": "systemd",
    "kernel_name": "Linux",
    "lsb_codename": "bookworm",
    "lsb_id": "Debian",
    "lsb_release": "12",
    "machine": "x86_64",
    "memory": "2000000",
    "os": "debian",
    "os_release": "",
    "os_version": "12.5",
}
TYPE_EXPLORERS = {"state": "type: none"}  # __file and __directory: nothing there yet

# One step of a batch script: "( export ...; COMMAND ) </dev/null; __cdist_trio_rc=$?; ...",
# where COMMAND is "/bin/sh -e SCRIPT" or "set -e; . SCRIPT"; the marker comes first.
_STEP = re.compile(r"^\( (?P<body>.*) \) </dev/null; __cdist_trio_rc=")
_SCRIPT = re.compile(r"(?: -e|; \.) '?(?P<path>[^' ]+)'?/(?P<name>[^/' ]+)$")
_MARKER = re.compile(r"^printf '%s\\n' (?P<marker>cdist-trio-[0-9a-f]+) >&2$", re.M)


@dataclass
class FakeCounters:
    """Round trips the engine made, shared by every fake Remote of one run."""

    hosts: int = 0
    runs: int = 0
    puts: int = 0
    batch_steps: int = 0
    bytes_in: int = 0
    max_command_bytes: int = 0
    """The longest command line: the SSH transports send it as one argv word (Linux
    refuses words over 128 KiB, MAX_ARG_STRLEN) or one exec request."""
    per_host: dict[str, int] = field(default_factory=dict)

    @property
    def round_trips(self) -> int:
        return self.runs + self.puts


def step_output(command: str) -> tuple[int, bytes]:
    """Exit status and stdout of one step, judged from the script it runs."""
    match = _SCRIPT.search(command)
    if match is None:
        return 0, b""
    path, name = match["path"], match["name"]
    if path.endswith("/conf/explorer"):
        value = GLOBAL_EXPLORERS.get(name, "")
    elif path.endswith("/explorer"):
        value = TYPE_EXPLORERS.get(name, "")
    else:  # code-remote and anything else: success, silence
        return 0, b""
    return 0, (value + "\n").encode() if value else b""


def answer_batch(script: str) -> tuple[bytes, bytes]:
    """The stdout and stderr a batch script would send back: each step's output, then
    the marker line."""
    found = _MARKER.search(script)
    if found is None:
        raise ValueError("not a batch script: no marker")
    marker = found["marker"].encode()
    stdout, stderr = [], [marker + b"\n"]
    for line in script.splitlines():
        match = _STEP.match(line)
        if match is None:
            continue
        # The body is "export K='v'; ... COMMAND"; the script is its last word group.
        rc, out = step_output(match["body"])
        stdout.append(out + b"\n" + marker + f" {rc}\n".encode())
        stderr.append(b"\n" + marker + b"\n")
    return b"".join(stdout), b"".join(stderr)


class FakeRemote(Remote):
    """One fake target; every `run` and `put` is one round trip of ``latency`` seconds."""

    def __init__(self, host: str, latency: float, counters: FakeCounters) -> None:
        self.host = host
        self.latency = latency
        self.counters = counters
        self._sessions = 0

    async def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Completed:
        self._round_trip(stdin)
        self.counters.runs += 1
        size = len(command.encode()) + sum(len(k) + len(v) + 10 for k, v in (env or {}).items())
        self.counters.max_command_bytes = max(self.counters.max_command_bytes, size)
        await trio.sleep(self.latency)
        if _MARKER.search(command):
            self.counters.batch_steps += command.count("</dev/null; __cdist_trio_rc=")
            stdout, stderr = answer_batch(command)
            return checked(Completed(command, 0, stdout, stderr), check)
        rc, out = step_output(command)
        return checked(Completed(command, rc, out, b""), check)

    async def put(self, sources: Sequence[Path], destination: str) -> None:
        if not sources:
            return
        self._round_trip(b"".join(p.read_bytes() for p in sources if p.is_file()))
        self.counters.puts += 1
        await trio.sleep(self.latency)

    def _round_trip(self, payload: bytes | None) -> None:
        self._sessions += 1
        self.counters.per_host[self.host] = self.counters.per_host.get(self.host, 0) + 1
        self.counters.bytes_in += len(payload or b"")

    def statistics(self) -> RemoteStatistics:
        return RemoteStatistics(connections_opened=1, sessions_opened=self._sessions)

    def exported_commands(self) -> tuple[str, str]:
        return "false", "false"  # the engine's relay stands in for these


def fake_open_remote(latency: float, counters: FakeCounters) -> Any:
    """A drop-in for `cdist_trio.transport.open_remote` that opens `FakeRemote`s."""

    @asynccontextmanager
    async def open_fake(host: str, **_: Any) -> AsyncIterator[Remote]:
        counters.hosts += 1
        await trio.sleep(latency)  # the connection's own round trip
        yield FakeRemote(host, latency, counters)

    return open_fake
