"""A `cdist_trio.worker` process for ``bench-scale --workers N``: the same fake targets
as the measuring process (`fake_remote`), and on exit what it measured, for the parent.

``python -m benchmarks.scale_worker LATENCY_S USAGE_DIR FD``: ``FD`` is what
`cdist_trio.workers` appends; ``USAGE_DIR/<pid>.json`` gets the fake targets' counters,
this process's own CPU (the engine's) and its peak RSS.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
from pathlib import Path

import cdist_trio.host
from cdist_trio import worker

from .fake_remote import FakeCounters, fake_open_remote


def main() -> None:
    latency, usage_dir, fd = sys.argv[1:4]
    counters = FakeCounters()
    cdist_trio.host.open_remote = fake_open_remote(float(latency), counters)  # type: ignore[attr-defined]
    worker.main([fd])
    own = resource.getrusage(resource.RUSAGE_SELF)
    usage = {
        "counters": dataclasses.asdict(counters),
        "cpu": own.ru_utime + own.ru_stime,
        "max_rss": own.ru_maxrss * 1024,
    }
    (Path(usage_dir) / f"{os.getpid()}.json").write_text(json.dumps(usage))


if __name__ == "__main__":
    main()
