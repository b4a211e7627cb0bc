"""The run scope: one host scope per host, admitted by ``host_limiter`` (-p).

One host's failure never cancels another: the host scope turns it into its report.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from .host import configure_host
from .hosts import HostSpec
from .report import HostReport, RunReport
from .settings import Settings
from .transport import TransportResources

VERBOSE = 15


async def run_config(hosts: Sequence[HostSpec], settings: Settings) -> RunReport:
    """Configure every host; returns a report with one HostReport per host, in order."""
    started = time.monotonic()
    home = os.environ.get("HOME")
    if settings.out_dir is not None:
        base_root = settings.out_dir
        base_root.mkdir(parents=True, exist_ok=True)
    else:
        base_root = Path(tempfile.mkdtemp(prefix="cdist-trio."))
    host_limiter = trio.CapacityLimiter(settings.parallel)
    reports: dict[int, HostReport] = {}

    async def one_host(index: int, spec: HostSpec) -> None:
        async with host_limiter:
            reports[index] = await configure_host(spec, settings, base_root, home, resources)

    resources = TransportResources()
    try:
        async with trio.open_nursery() as nursery:
            for index, spec in enumerate(hosts):
                nursery.start_soon(one_host, index, spec)
    finally:
        resources.close()

    report = RunReport(
        hosts=tuple(reports[i] for i in range(len(hosts))),
        duration=time.monotonic() - started,
    )
    config_log = logging.getLogger("cdist_trio.config")
    config_log.log(VERBOSE, "Total processing time for %d host(s): %s", len(hosts), report.duration)
    if report.failed_hosts:
        logging.getLogger("cdist_trio.cdist").error(
            "Failed to configure the following hosts: %s", " ".join(report.failed_hosts)
        )
    elif settings.out_dir is None:
        shutil.rmtree(base_root, ignore_errors=True)
    return report
