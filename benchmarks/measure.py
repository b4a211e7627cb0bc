"""Measuring one tool run: wall time, CPU and peak memory of its whole process tree.

CPU is the ``RUSAGE_CHILDREN`` delta around the run; this process is made a child
subreaper first, so ssh ControlMasters that daemonise are reparented to us, reaped by
us, and counted.  Peak memory is sampled from /proc (sum of the tree's RSS).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
SAMPLE_INTERVAL = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measurement:
    """One run of one command line."""

    wall: float
    """Seconds from spawn to the exit of the top process."""
    user: float
    system: float
    """CPU seconds of the whole tree (every descendant reaped during the run)."""
    peak_tree_rss: int
    """Largest sampled sum of RSS over the live tree, bytes (sampled every 50 ms)."""
    peak_tree_private: int
    """Largest sampled sum of anonymous RSS over the live tree, bytes: RSS without the
    pages mapped from files (program and library code, counted again in every process
    that maps it; 20 ssh masters are 8 MiB of RSS each, 1.4 MiB of it their own)."""
    max_process_rss: int
    """The largest single process's RSS, bytes: the top process's own peak (``wait4``
    rusage) or the largest sample of any descendant."""
    processes: int
    """Distinct pids seen in the tree by the sampler (a lower bound: short ones are missed)."""
    returncode: int | None
    """None when the run was killed at its timeout."""
    output: str = ""
    """The tail of the combined stdout/stderr, for error messages."""

    @property
    def cpu(self) -> float:
        return self.user + self.system

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


_subreaper = False


def become_subreaper() -> bool:
    """Make orphaned descendants (daemonised ssh masters) our children; Linux only.

    Only for a process that runs nothing else: from then on `run_measured` reaps (and
    after a grace period kills) every child it did not start itself.
    """
    global _subreaper
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def _children_map() -> dict[int, list[tuple[int, int]]]:
    """ppid -> [(pid, rss bytes)] for every process on the machine."""
    tree: dict[int, list[tuple[int, int]]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = raw[raw.rfind(b")") + 2 :].split()
        ppid, rss_pages = int(fields[1]), int(fields[21])
        tree.setdefault(ppid, []).append((int(entry.name), rss_pages * _PAGE))
    return tree


def _has_children_files() -> bool:
    """Whether /proc lists each task's children (``CONFIG_PROC_CHILDREN``)."""
    return os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a child belongs to the thread that
    forked it, or to the one it was reparented to)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def _rss(pid: int) -> tuple[int, int] | None:
    """RSS and its anonymous part (resident minus resident file-backed pages), bytes."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            fields = handle.read().split()
        return int(fields[1]) * _PAGE, (int(fields[1]) - int(fields[2])) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _tree_rss(root: int, seen: set[int]) -> tuple[int, int, int]:
    """The summed and the largest RSS of every descendant of ``root``, and the sum of
    their anonymous RSS.

    Walks the tree through each task's children file: reading only the tree, not every
    process on the machine (the targets' sshd, docker-proxy, ...), keeps the sampler's
    own CPU, which competes with the measured run, at a fraction of a full /proc scan.
    """
    if not _CHILDREN_FILES:
        return _tree_rss_from_scan(root, seen)
    total = single = private = 0
    stack = [root]
    while stack:
        for child in _children(stack.pop()):
            sizes = _rss(child)
            if sizes is None:
                continue
            seen.add(child)
            total += sizes[0]
            single = max(single, sizes[0])
            private += sizes[1]
            stack.append(child)
    return total, single, private


def _tree_rss_from_scan(root: int, seen: set[int]) -> tuple[int, int, int]:
    tree = _children_map()
    total = single = private = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        for child, rss in tree.get(pid, ()):
            seen.add(child)
            total += rss
            single = max(single, rss)
            sizes = _rss(child)
            private += sizes[1] if sizes is not None else rss
            stack.append(child)
    return total, single, private


_CHILDREN_FILES = _has_children_files()


class _Sampler(threading.Thread):
    """Samples the RSS of everything below ``root`` until stopped."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.peak_private = 0
        self.max_single = 0
        self.seen: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            # root is this process; its children are the tool and reparented orphans.
            total, single, private = _tree_rss(self.root, self.seen)
            self.peak = max(self.peak, total)
            self.peak_private = max(self.peak_private, private)
            self.max_single = max(self.max_single, single)
            self._stop_event.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def reap_orphans(deadline: float = 10.0) -> None:
    """Wait for reparented descendants (ssh masters on their way out) and reap them;
    a no-op unless `become_subreaper` succeeded."""
    if not _subreaper:
        return
    end = time.monotonic() + deadline
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left
        if pid == 0:
            if time.monotonic() > end:
                _kill_children()
                end = time.monotonic() + 5
            time.sleep(0.02)


def _kill_children() -> None:
    for pid, _ in _children_map().get(os.getpid(), []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
) -> Measurement:
    """Run ``argv`` to completion (or ``timeout``) and measure its process tree.

    Blocks.  The child gets its own session, so a timeout kills the whole group.
    Orphans it leaves behind are waited for (and counted) before this returns.
    """
    reap_orphans()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = _Sampler(os.getpid())
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sampler.start()
    chunks: list[bytes] = []
    reader = threading.Thread(target=_pump, args=(process, stdin, chunks), daemon=True)
    reader.start()
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill) if timeout is not None else None
    if timer is not None:
        timer.start()
    # wait4, not Popen.wait: its rusage is the top process's own peak RSS.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if timer is not None:
        timer.cancel()
    reader.join()
    sampler.stop()
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = b"".join(chunks).decode(errors="replace")
    return Measurement(
        wall=wall,
        user=after.ru_utime - before.ru_utime,
        system=after.ru_stime - before.ru_stime,
        peak_tree_rss=sampler.peak,
        peak_tree_private=sampler.peak_private,
        max_process_rss=max(sampler.max_single, usage.ru_maxrss * 1024),
        processes=len(sampler.seen),
        returncode=None if killed.is_set() else process.returncode,
        output=text[-4000:],
    )


def _pump(process: subprocess.Popen[bytes], stdin: bytes | None, chunks: list[bytes]) -> None:
    if stdin is not None and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(stdin)
        process.stdin.close()
    assert process.stdout is not None
    while chunk := process.stdout.read(65536):
        chunks.append(chunk)
    process.stdout.close()
