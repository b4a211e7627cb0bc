"""The live progress display and the end-of-run table: folding events, drawing only the
hosts in flight, the summary order, and log lines routed through the display's console."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from cdist_trio import (
    HostFinished,
    HostReport,
    HostStarted,
    HostStatus,
    ObjectDone,
    ObjectReport,
    RunFinished,
    RunReport,
    RunStarted,
    Settings,
    StageChanged,
    TransportChanged,
)
from cdist_trio.events import Emitter, _Seen, transport_state
from cdist_trio.progress import (
    ConsoleStream,
    ProgressState,
    open_progress,
    render_progress,
    summary_table,
)
from cdist_trio.transport.base import RemoteStatistics


def render(renderable: object, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, soft_wrap=False)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def _ok(host: str, changed: int = 1) -> HostReport:
    objects = tuple(ObjectReport(f"__o/{i}", i < changed, 0, 0) for i in range(3))
    return HostReport(host, HostStatus.OK, 1.0, objects=objects)


def test_progress_state_folds_events() -> None:
    state = ProgressState()
    state.handle(RunStarted(("a", "b", "c"), Settings()))
    for host in ("a", "b"):
        state.handle(HostStarted(host))
    state.handle(StageChanged("a", "objects"))
    state.handle(ObjectDone("a", "__o/1", True, 1, 4))
    state.handle(ObjectDone("a", "__o/2", False, 2, 5))
    state.handle(TransportChanged("b", "retrying", retries=2))
    state.handle(HostFinished("b", HostReport("b", HostStatus.FAILED, 1.0, error="x")))
    assert state.total == 3
    assert (state.finished, state.failed) == (1, 1)
    assert (state.objects_done, state.objects_changed) == (2, 1)
    assert list(state.in_flight) == ["a"]
    assert state.in_flight["a"].stage_text() == "objects 2/5"


def test_progress_draws_hosts_in_flight_only() -> None:
    state = ProgressState()
    state.handle(RunStarted(tuple(f"h{i}" for i in range(1000)), Settings()))
    for i in range(1000):
        state.handle(HostStarted(f"h{i}"))
        if i < 990:
            state.handle(HostFinished(f"h{i}", _ok(f"h{i}")))
    state.handle(StageChanged("h995", "global explorers"))
    state.handle(TransportChanged("h996", "limited", refused=3))
    state.handle(TransportChanged("h997", "connecting"))
    state.handle(TransportChanged("h998", "retrying", retries=1))
    text = render(render_progress(state, now=time.monotonic(), max_lines=40))
    assert "990/1000 hosts" in text
    lines = text.splitlines()
    assert len(lines) == 11  # the overall line and the ten hosts in flight
    assert "h989" not in text
    assert any("h995" in line and "explorers" in line for line in lines)
    assert any("h996" in line and "sessions limited (3 refused)" in line for line in lines)
    assert any("h997" in line and "connecting" in line for line in lines)
    assert any("h998" in line and "retrying after a drop (1)" in line for line in lines)


def test_progress_caps_lines_to_the_terminal() -> None:
    state = ProgressState()
    for i in range(100):
        state.handle(HostStarted(f"h{i}"))
    text = render(render_progress(state, now=time.monotonic(), max_lines=10))
    assert len(text.splitlines()) == 11
    assert "… and 91 more hosts in flight" in text


def test_progress_render_is_cheap_with_many_hosts() -> None:
    state = ProgressState()
    for i in range(1000):
        state.handle(HostStarted(f"h{i}"))
    started = time.perf_counter()
    for _ in range(10):
        render(render_progress(state, now=time.monotonic(), max_lines=40))
    assert (time.perf_counter() - started) / 10 < 0.1


def test_progress_summary_failed_first_and_total_line() -> None:
    failed = HostReport(
        "web-9",
        HostStatus.FAILED,
        3.0,
        error="manifest exited 1",
        error_report="/tmp/x/error",
        statistics=RemoteStatistics(sessions_refused=4, handshakes_retried=2),
    )
    timed_out = HostReport("web-5", HostStatus.TIMED_OUT, 5.0, error="timed out after 5 s")
    report = RunReport((_ok("web-1"), timed_out, failed, _ok("web-2", 2)), 7.25)
    lines = render(summary_table(report)).splitlines()
    rows = [line for line in lines if line.startswith("web-")]
    assert [row.split()[0] for row in rows[:4]] == ["web-9", "web-5", "web-1", "web-2"]
    cells = [cell.strip() for cell in rows[0].split("│")]
    assert cells == ["web-9", "failed", "0", "0", "3.0 s", "4", "2"]
    assert "web-9: manifest exited 1" in lines
    assert "    full report: /tmp/x/error" in lines
    assert "web-5: timed out after 5 s" in lines
    assert lines[-1] == "Total processing time for 4 host(s): 7.25"


def test_progress_summary_caps_ok_rows() -> None:
    report = RunReport(tuple(_ok(f"h{i}") for i in range(60)), 1.0)
    text = render(summary_table(report, max_ok_rows=50))
    assert "h49 " in text
    assert "h50 " not in text
    assert "… and 10 more hosts ok" in text


def test_progress_console_stream_prints_whole_lines() -> None:
    console = Console(file=io.StringIO(), width=20, color_system=None)
    stream = ConsoleStream(console)
    stream.write("WARNING: a-long-host-name: ")
    assert isinstance(console.file, io.StringIO)
    assert console.file.getvalue() == ""
    stream.write("a message longer than the width\nnext")
    stream.flush()
    assert console.file.getvalue() == (
        "WARNING: a-long-host-name: a message longer than the width\nnext\n"
    )


def test_progress_transport_state_from_samples() -> None:
    seen = _Seen()
    assert transport_state(seen, 0, 0, 0) == "connecting"
    assert transport_state(seen, 1, 0, 0) == "retrying"
    seen.state, seen.retries = "retrying", 1
    assert transport_state(seen, 1, 0, 0) == "retrying"  # still no connection
    assert transport_state(seen, 1, 0, 1) == "connected"
    assert transport_state(seen, 1, 2, 1) == "limited"


async def test_progress_display_redraws_and_ends_with_the_table() -> None:
    file = io.StringIO()
    console = Console(file=file, width=100, height=20, force_terminal=True, color_system=None)
    report = RunReport((_ok("h1"),), 0.5)
    async with open_progress(console) as display:
        emit = Emitter(display.handle)
        emit(RunStarted(("h1",), Settings()))
        emit(HostStarted("h1"))
        emit(StageChanged("h1", "initial manifest"))
        display.refresh()
        assert re.search(r"h1\s+manifest", file.getvalue())
        emit(HostFinished("h1", report.hosts[0]))
        emit(RunFinished(report))
    display.print_summary(report)
    out = file.getvalue()
    assert "0/1 hosts" in out
    assert "Total processing time for 1 host(s): 0.5" in out
