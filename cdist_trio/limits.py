"""Open files: about how many a run needs, and this process's soft limit raised to that.

Each host in flight holds descriptors: its control socket or connection, the emulator
socket, the manifest's FIFOs, and per running job a session's pipes and a local
script's.  Measured here: 164 at ``-p 20 -j 4`` (openssh; 131 asyncssh), 41 for one
host at ``-j 16``.  Many systems start programs with a soft limit of 1024 and a far
higher hard limit (systemd: 524288), so ``-p 200`` would fail hosts with "Too many open
files" that the system would allow: the command line raises the soft limit up to what
the run may need, as far as the hard limit lets it.  Library callers keep their own
limits.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from .transport import local_process_limit

PER_HOST = 8
"""Descriptors a host holds with no job running (about 8 measured, see above)."""
PER_JOB = 2
"""A running job's share: sessions, pipes (generous: measured 1 at -j 16)."""
BASE = 64
"""The process itself: Python, Trio's wakeup and signal descriptors, logs, the report."""


def open_files_needed(hosts_at_once: int, jobs: int) -> int:
    """About how many descriptors a run of ``hosts_at_once`` hosts at ``-j jobs`` may
    hold at its peak (2 to 3 times what was measured, see the module docstring)."""
    shells = 3 * local_process_limit()  # pooled local shells: two pipes each, and a spare
    return BASE + shells + hosts_at_once * (PER_HOST + PER_JOB * jobs)


@dataclass(frozen=True)
class OpenFiles:
    """The soft limit before and after `ensure_open_files`, and the hard limit."""

    before: int
    after: int
    hard: int

    @property
    def raised(self) -> bool:
        return self.after > self.before


def _finite(value: int) -> float:
    return float("inf") if value == resource.RLIM_INFINITY else value


def ensure_open_files(needed: int) -> OpenFiles:
    """Raise the soft open-files limit to ``needed`` if it is lower, up to the hard
    limit (never lowered)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _finite(soft) >= needed:
        return OpenFiles(soft, soft, hard)
    target = needed if _finite(hard) >= needed else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        return OpenFiles(soft, soft, hard)
    return OpenFiles(soft, target, hard)
