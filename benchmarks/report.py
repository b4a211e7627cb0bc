"""Plain-text tables and JSON files for the benchmark sessions."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned first column, right-aligned numbers, columns as wide as needed."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def ratio(value: float | None, baseline: float | None) -> str:
    """``value / baseline`` as ``0.35x``; ``-`` when either is unknown."""
    if value is None or baseline is None or baseline <= 0:
        return "-"
    return f"{value / baseline:.2f}x"


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def seconds(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(name: str, data: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``data`` to ``path`` or ``benchmarks/results/<name>.json``; returns the path."""
    target = path or RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return target
