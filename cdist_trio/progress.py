"""Live progress of a run on a terminal (rich) and the end-of-run summary table.

`ProgressState` folds the run's events into counters (sync, O(1) per event); a Trio
task redraws the display from it a few times a second, so the engine never waits for
the terminal.  Log lines go through the same console, above the display.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TextIO, cast

import trio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .events import (
    Event,
    HostFinished,
    HostStarted,
    ObjectDone,
    RunFinished,
    RunStarted,
    StageChanged,
    TransportChanged,
)
from .log import output_gone
from .report import HostReport, HostStatus, RunReport

__all__ = [
    "ConsoleStream",
    "ProgressDisplay",
    "ProgressState",
    "open_progress",
    "progress_console",
    "render_progress",
    "summary_table",
]

REFRESH_PER_SECOND = 8
CPU_BUDGET = 0.01
"""The share of the run's thread the display may take: slower redraws when a busy
machine makes drawing expensive."""
BAR_WIDTH = 30
MAX_OK_ROWS = 50
"""Ok hosts shown in the summary table; failures are always all shown."""

_STAGE_NAMES = {"global explorers": "explorers", "initial manifest": "manifest"}
_STATUS_STYLES = {
    HostStatus.OK: "green",
    HostStatus.FAILED: "bold red",
    HostStatus.TIMED_OUT: "bold yellow",
    HostStatus.INTERRUPTED: "yellow",
}


@dataclass
class HostLine:
    """What the display shows for one host in flight."""

    host: str
    started: float
    stage: str = "starting"
    done: int = 0
    known: int = 0
    transport: TransportChanged | None = None

    def stage_text(self) -> str:
        if self.stage == "objects" and self.known:
            return f"objects {self.done}/{self.known}"
        return _STAGE_NAMES.get(self.stage, self.stage)

    def transport_text(self) -> str:
        t = self.transport
        if t is None or t.state == "connected":
            return ""
        if t.state == "retrying":
            return f"retrying after a drop ({t.retries})"
        if t.state == "limited":
            return f"sessions limited ({t.refused} refused)"
        return "connecting"


@dataclass
class ProgressState:
    """The run so far, folded from its events; no I/O, no checkpoint."""

    total: int = 0
    finished: int = 0
    failed: int = 0
    objects_done: int = 0
    objects_changed: int = 0
    started: float = field(default_factory=time.monotonic)
    in_flight: dict[str, HostLine] = field(default_factory=dict)
    report: RunReport | None = None
    version: int = 0
    """Counts the events folded in, so a display redraws only after a change."""

    def handle(self, event: Event) -> None:
        self.version += 1
        if isinstance(event, RunStarted):
            self.total = len(event.hosts)
            self.started = time.monotonic()
        elif isinstance(event, HostStarted):
            self.in_flight[event.host] = HostLine(event.host, time.monotonic())
        elif isinstance(event, StageChanged):
            line = self.in_flight.get(event.host)
            if line is not None:
                line.stage = event.stage
        elif isinstance(event, ObjectDone):
            self.objects_done += 1
            self.objects_changed += event.has_code
            line = self.in_flight.get(event.host)
            if line is not None:
                line.done, line.known = event.done, event.known
        elif isinstance(event, TransportChanged):
            line = self.in_flight.get(event.host)
            if line is not None:
                line.transport = event
        elif isinstance(event, HostFinished):
            self.in_flight.pop(event.host, None)
            self.finished += 1
            self.failed += not event.report.ok
        elif isinstance(event, RunFinished):
            self.report = event.report


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_progress(state: ProgressState, *, now: float, max_lines: int) -> Text:
    """The overall bar and at most ``max_lines`` lines of hosts in flight (oldest first).

    Plain padded text rather than rich tables: it is drawn several times a second.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    filled = BAR_WIDTH * state.finished // max(state.total, 1)
    text.append("━" * filled, style="green" if not state.failed else "red")
    text.append("━" * (BAR_WIDTH - filled), style="grey23")
    text.append(f"  {state.finished}/{state.total} hosts")
    text.append(f"  {state.objects_done} objects applied ({state.objects_changed} changed)")
    text.append(f"  {state.failed} failed", style="bold red" if state.failed else "")
    text.append(f"  {_elapsed(now - state.started)}")
    lines = list(state.in_flight.values())
    shown = lines if len(lines) <= max_lines else lines[: max(max_lines - 1, 0)]
    host_width = min(max((len(line.host) for line in shown), default=0), 40)
    for line in shown:
        text.append("\n")
        text.append(_fit(line.host, host_width).ljust(host_width), style="bold")
        text.append(f"  {line.stage_text():<18}  ")
        text.append(_elapsed(now - line.started), style="dim")
        transport = line.transport_text()
        if transport:
            text.append(f"  {transport}", style="yellow")
    if len(shown) < len(lines):
        text.append(f"\n… and {len(lines) - len(shown)} more hosts in flight", style="dim")
    return text


def summary_table(report: RunReport, *, max_ok_rows: int = MAX_OK_ROWS) -> RenderableType:
    """The end-of-run table, failed hosts first, then each failure's one-line reason and
    the path of its full error report, ending with cdist's total time line."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Host", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for name in ("Changed", "Objects", "Duration", "Refused", "Retries"):
        table.add_column(name, justify="right", no_wrap=True)
    hosts = report.by_severity()
    ok_shown = 0
    for host in hosts:
        if host.ok:
            if ok_shown == max_ok_rows:
                continue
            ok_shown += 1
        table.add_row(*_summary_row(host))
    rows: list[RenderableType] = [table]
    hidden = len(hosts) - len(report.failed_hosts) - ok_shown
    if hidden > 0:
        rows.append(Text(f"… and {hidden} more hosts ok (--report FILE lists every host)"))
    for host in hosts:
        if not host.ok:
            line = Text(f"{host.host}: ", style="bold")
            line.append(host.error or host.status.value, style=_STATUS_STYLES[host.status])
            if host.error_report:
                line.append(f"\n    full report: {host.error_report}")
            rows.append(line)
    rows.append(Text(f"Total processing time for {len(report.hosts)} host(s): {report.duration}"))
    return Group(*rows)


def _summary_row(host: HostReport) -> list[RenderableType]:
    stats = host.statistics
    return [
        Text(host.host, style="bold"),
        Text(host.status.value, style=_STATUS_STYLES[host.status]),
        str(host.objects_changed),
        str(len(host.objects)),
        f"{host.duration:.1f} s",
        str(stats.sessions_refused),
        str(stats.handshakes_retried),
    ]


# --- the terminal side ------------------------------------------------------------------


class _Console(Console):
    """A console that, when its output is gone, goes quiet and lets the run go on."""

    def on_broken_pipe(self) -> None:
        # rich's own ends the process (SystemExit): hosts would stop half-configured.
        _console_gone(self)


def _console_gone(console: Console) -> None:
    """Nobody reads ``console`` any more: draw nothing, and let writes to its stream
    succeed (`log.output_gone`)."""
    console.quiet = True
    output_gone(console.file)


def progress_console(*, force: bool = False, file: TextIO | None = None) -> Console:
    """The console the display and the log lines share (stdout unless ``file``)."""
    return _Console(
        file=file if file is not None else sys.stdout,
        force_terminal=True if force else None,
        highlight=False,
        soft_wrap=True,
    )


class ConsoleStream(io.TextIOBase):
    """A text stream for log handlers that prints whole lines through ``console``.

    While a display holds it (`hold`), lines wait for the display's next redraw and are
    printed above it in one go: one redraw per tick however many lines are logged.
    """

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self._pending = ""
        self._held: list[str] | None = None

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            if self._held is not None:
                self._held.append(lines)
            else:
                self._print(lines)
        return len(text)

    def flush(self) -> None:
        if self._pending and self._held is None:
            lines, self._pending = self._pending, ""
            self._print(lines)

    def isatty(self) -> bool:
        return self._console.is_terminal

    def as_text_io(self) -> TextIO:
        return cast(TextIO, self)

    def hold(self) -> None:
        """Keep lines until `print_held` (called by the display at each redraw)."""
        if self._held is None:
            self._held = []

    def print_held(self) -> bool:
        """Print the lines held so far; True if there were any."""
        if not self._held:
            return False
        lines, self._held = self._held, []
        self._print("\n".join(lines))
        return True

    def release(self) -> None:
        """Print what is held and print lines as they come again."""
        self.print_held()
        self._held = None

    def _print(self, lines: str) -> None:
        try:
            self._console.print(Text.from_ansi(lines), soft_wrap=True, highlight=False)
        except OSError:  # EIO from a terminal that went away (rich handles EPIPE)
            _console_gone(self._console)


class ProgressDisplay:
    """A live display fed by `handle` (pass it as the run's ``events``)."""

    def __init__(self, console: Console, live: Live, logs: ConsoleStream | None = None) -> None:
        self.console = console
        self.state = ProgressState()
        self._live = live
        self._logs = logs
        self._drawn: tuple[int, int] | None = None

    def handle(self, event: Event) -> None:
        self.state.handle(event)

    def refresh(self) -> None:
        """Print held log lines, and redraw if anything changed (or a second passed)."""
        printed = self._logs is not None and self._logs.print_held()
        now = time.monotonic()
        drawn = (self.state.version, int(now - self.state.started))
        if drawn == self._drawn and not printed:
            return
        self._drawn = drawn
        max_lines = max(self.console.size.height - 4, 3)
        self._live.update(render_progress(self.state, now=now, max_lines=max_lines), refresh=True)

    def print_summary(self, report: RunReport) -> None:
        self.console.print(summary_table(report))


@asynccontextmanager
async def open_progress(
    console: Console,
    *,
    logs: ConsoleStream | None = None,
    refresh_per_second: float = REFRESH_PER_SECOND,
) -> AsyncIterator[ProgressDisplay]:
    """Show the live display on ``console`` while the block runs; it is redrawn up to
    ``refresh_per_second`` times a second (less often if drawing took more than
    `CPU_BUDGET` of the time) by a task of its own, and erased on exit.
    ``logs``, the stream the log handlers write to, is held meanwhile (see
    `ConsoleStream.hold`)."""
    live = Live(
        console=console,
        auto_refresh=False,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    display = ProgressDisplay(console, live, logs)

    async def redraw() -> None:
        while True:
            started = time.perf_counter()
            try:
                display.refresh()
            except OSError:  # EIO from a terminal that went away (rich handles EPIPE)
                _console_gone(console)
            cost = time.perf_counter() - started
            await trio.sleep(max(1 / refresh_per_second, cost / CPU_BUDGET - cost))

    with live:
        if logs is not None:
            logs.hold()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(redraw)
                try:
                    yield display
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            if logs is not None:
                logs.release()
