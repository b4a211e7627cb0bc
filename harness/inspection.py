"""Inspection of a target's real state: files, processes and sshd's own log.

Tests assert on what is on the target (read through `docker exec`, not over SSH) and on how
many connections and sessions a run used (counted from sshd's VERBOSE log).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Any

from .sshd import poll_until

# What sshd 9.2 logs at LogLevel VERBOSE (`sshd -D -e`, so the container's log):
_COUNTED = {
    # One per TCP connection that reached sshd, including banner probes.
    "connections": re.compile(r"^Connection from \S+ port \d+ on "),
    # One per successful authentication.
    "logins": re.compile(r"^Accepted publickey for "),
    # One per session channel (command, shell or subsystem) that started.
    "sessions": re.compile(r"^Starting session: "),
    # A session channel beyond MaxSessions on one connection.
    "refused_sessions": re.compile(r"no more sessions"),
    # A handshake dropped because of MaxStartups.
    "dropped_startups": re.compile(r"^drop connection #\d+ .* past MaxStartups"),
}


@dataclasses.dataclass(frozen=True)
class SshdCounts:
    """Events counted in sshd's log; subtract two snapshots to get what happened between."""

    connections: int = 0
    logins: int = 0
    sessions: int = 0
    refused_sessions: int = 0
    dropped_startups: int = 0

    def __sub__(self, other: SshdCounts) -> SshdCounts:
        return SshdCounts(
            **{
                field.name: getattr(self, field.name) - getattr(other, field.name)
                for field in dataclasses.fields(self)
            }
        )


def count_sshd_log(log: str) -> SshdCounts:
    """Count connections, logins, sessions, refusals and drops in an sshd log text."""
    totals = dict.fromkeys(_COUNTED, 0)
    for line in log.splitlines():
        for name, pattern in _COUNTED.items():
            if pattern.search(line):
                totals[name] += 1
    return SshdCounts(**totals)


@dataclasses.dataclass(frozen=True)
class FileStat:
    """What `stat` says about a path on the target."""

    path: str
    kind: str  # "regular file", "directory", "symbolic link", ...
    mode: int  # permission bits, e.g. 0o644
    uid: int
    gid: int
    user: str
    group: str
    size: int


@dataclasses.dataclass(frozen=True)
class Process:
    """One process on the target, from /proc."""

    pid: int
    ppid: int
    state: str  # "S", "R", "Z", ...
    comm: str
    args: str


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """A command run in the target with `docker exec`."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class ExecError(RuntimeError):
    """A `docker exec` command failed; carries its result."""

    def __init__(self, argv: list[str], result: ExecResult) -> None:
        self.result = result
        stderr = result.stderr.decode(errors="replace").strip()
        super().__init__(f"{shlex.join(argv)} exited {result.exit_code}: {stderr}")


# Lists /proc without procps (not in Debian minbase); skips this script and its children.
_PROCESS_SCRIPT = r"""
self=$$
for d in /proc/[0-9]*; do
    stat=$(cat "$d/stat" 2>/dev/null) || continue
    args=$(tr '\0\n' '  ' <"$d/cmdline" 2>/dev/null) || continue
    printf '%s\t%s\t%s\n' "${d#/proc/}" "$stat" "$args"
done
echo "self $self"
"""


class Inspection:
    """Mixin for a target: reads its state through `docker exec` and `docker logs`.

    Every method blocks the calling thread for one Docker API round trip or a few.
    """

    def docker_container(self) -> Any:
        """The docker-py container object; provided by the target class."""
        raise NotImplementedError

    def exec(self, argv: list[str], *, check: bool = True) -> ExecResult:
        """Run `argv` in the container as root (not over SSH) and return its output."""
        result = self.docker_container().exec_run(argv, demux=True)
        stdout, stderr = result.output if result.output is not None else (None, None)
        completed = ExecResult(result.exit_code, stdout or b"", stderr or b"")
        if check and completed.exit_code != 0:
            raise ExecError(argv, completed)
        return completed

    def shell(self, script: str, *, check: bool = True) -> ExecResult:
        """Run a `/bin/sh -c` script in the container."""
        return self.exec(["/bin/sh", "-c", script], check=check)

    def read_file(self, path: str) -> bytes:
        """The content of a file on the target; ExecError if it cannot be read."""
        return self.exec(["cat", "--", path]).stdout

    def read_text(self, path: str) -> str:
        return self.read_file(path).decode()

    def exists(self, path: str) -> bool:
        return self.exec(["test", "-e", path], check=False).exit_code == 0

    def stat(self, path: str) -> FileStat | None:
        """`stat` of a path (not following a final symlink), or None if it does not exist."""
        result = self.exec(["stat", "-c", "%F|%a|%u|%g|%U|%G|%s", "--", path], check=False)
        if result.exit_code != 0:
            if self.exists(path):
                raise ExecError(["stat", path], result)
            return None
        kind, mode, uid, gid, user, group, size = result.text.strip().split("|")
        return FileStat(path, kind, int(mode, 8), int(uid), int(gid), user, group, int(size))

    def processes(self, *, include_zombies: bool = False) -> list[Process]:
        """The target's processes, without the probe's own."""
        found: list[Process] = []
        own = set[int]()
        lines = self.shell(_PROCESS_SCRIPT).text.splitlines()
        for line in lines:
            if line.startswith("self "):
                own.add(int(line.split()[1]))
                continue
            fields = line.split("\t", 2)
            if len(fields) < 2 or not fields[0].isdigit():
                continue  # a process that exited while being read
            pid, stat, args = [*fields, ""][:3]
            comm = stat[stat.find("(") + 1 : stat.rfind(")")]
            state, ppid = stat[stat.rfind(")") + 2 :].split()[:2]
            found.append(Process(int(pid), int(ppid), state, comm, args.strip()))
        return [
            p
            for p in sorted(found, key=lambda p: p.pid)
            if p.pid not in own and p.ppid not in own and (include_zombies or p.state != "Z")
        ]

    def sshd_log(self) -> str:
        """Everything the container printed: the entrypoint's lines and sshd's log."""
        logs: bytes = self.docker_container().logs(stdout=True, stderr=True)
        return logs.decode(errors="replace")

    def sshd_counts(self) -> SshdCounts:
        """Connections, logins, sessions, refusals and drops since the container started."""
        return count_sshd_log(self.sshd_log())

    def wait_for_log(self, pattern: str, *, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Block until `count` log lines match the regex `pattern`; return those lines.

        Docker copies the log asynchronously, so a line sshd wrote a moment ago may take a
        few milliseconds to show up.
        """
        regex = re.compile(pattern)
        matched: list[str] = []

        def enough() -> bool:
            matched[:] = [line for line in self.sshd_log().splitlines() if regex.search(line)]
            return len(matched) >= count

        poll_until(enough, timeout=timeout, what=f"{count} log line(s) matching {pattern!r}")
        return matched
