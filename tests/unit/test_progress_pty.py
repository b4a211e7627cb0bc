"""The progress display as a user sees it: ``cdist-trio config`` on a pseudo-terminal,
20 hosts over the ``local`` transport; and ``--no-progress`` giving plain log lines."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tests.unit.scenario_support import CONF

COLOURS = re.compile(rb"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07")
CURSOR = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r")
HOSTS = [f"h{i}" for i in range(1, 21)]


def plain(data: bytes) -> str:
    """The text drawn, a cursor movement read as a line break (the display is redrawn
    in place, and log lines are printed where it was)."""
    data = COLOURS.sub(b"", data).replace(b"\r\n", b"\n")
    return CURSOR.sub(b"\n", data).decode(errors="replace")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    drop = ("NO_COLOR", "COLUMNS", "LINES")
    values = {
        k: v for k, v in os.environ.items() if not k.startswith(("CDIST_", "__")) and k not in drop
    }
    return {**values, "HOME": str(home), "TERM": "xterm-256color"}


def argv(tmp_path: Path, manifest: str, *options: str, hosts: list[str]) -> list[str]:
    path = tmp_path / "manifest"
    path.write_text(manifest)
    return [
        sys.executable, "-m", "cdist_trio", "config", "--transport", "local",
        "-r", str(tmp_path / "remote" / "%N"), "-c", str(CONF), "-i", str(path),
        *options, "--", *hosts,
    ]  # fmt: skip


class Terminal:
    """A child process on a pseudo-terminal of ``rows`` x ``cols``; ``output`` is what it
    drew, escape sequences included."""

    def __init__(self, rows: int = 40, cols: int = 120) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = bytearray()
        self.stream = trio.lowlevel.FdStream(self.master)

    async def start(self, args: list[str], env: dict[str, str]) -> trio.Process:
        try:
            return await trio.lowlevel.open_process(
                args, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env
            )
        finally:
            os.close(self.slave)

    async def read_until(self, done: Callable[[str], bool]) -> None:
        """Read until ``done(text so far)`` holds; EOF (EIO on a pty) ends it too."""
        while not done(plain(bytes(self.output))):
            try:
                chunk = await self.stream.receive_some()
            except trio.BrokenResourceError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.output += chunk


def host_lines(text: str, stage: str) -> set[str]:
    return set(re.findall(rf"^(h\d+)\s+{stage}\s", text, re.MULTILINE))


async def test_progress_pty_twenty_hosts(tmp_path: Path, env: dict[str, str]) -> None:
    gate = tmp_path / "gate"
    manifest = (
        f"while [ ! -e {gate} ]; do sleep 0.02; done\n"
        f"__step one --value v --log {tmp_path}/log-$__target_host\n"
        'if [ "$__target_host" = h7 ]; then echo "manifest: broken" >&2; exit 1; fi\n'
    )
    terminal = Terminal()
    process = await terminal.start(argv(tmp_path, manifest, "-p", "20", "-v", hosts=HOSTS), env)
    try:
        with trio.fail_after(60):
            # Every host waits in its initial manifest, each on a line of its own.
            await terminal.read_until(lambda text: len(host_lines(text, "manifest")) >= 20)
            gate.touch()
            await terminal.read_until(lambda text: "Total processing time" in text)
            await terminal.read_until(lambda text: False)
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        await terminal.stream.aclose()
    text = plain(bytes(terminal.output))
    assert process.returncode == 1, text
    assert re.search(r"━+\s+0/20 hosts\s+0 objects applied \(0 changed\)\s+0 failed", text)
    # Log lines are whole lines of their own, never drawn into the display.
    assert re.search(r"^INFO: h\d+: Starting configuration run$", text, re.MULTILINE)
    assert re.search(r"^ERROR: h7: .*: initial manifest exited with status 1$", text, re.M)
    table = text[text.rindex("Host ") :]
    rows = re.findall(r"^(h\d+)\s+│\s+(\S+)", table, re.MULTILINE)
    assert rows[0] == ("h7", "failed")
    assert sorted(host for host, status in rows[1:]) == sorted(h for h in HOSTS if h != "h7")
    assert {status for _, status in rows[1:]} == {"ok"}
    assert re.search(r"^h7: .*\n    full report: /\S+/error$", table, re.MULTILINE)
    assert table.rstrip().splitlines()[-1].startswith("Total processing time for 20 host(s): ")


def _normalised(text: str) -> list[str]:
    text = re.sub(r"\d+\.\d+", "N", text.replace("\r\n", "\n"))
    return sorted(text.splitlines())


async def test_progress_pty_no_progress_is_plain_logs(tmp_path: Path, env: dict[str, str]) -> None:
    manifest = f"__step one --value v --log {tmp_path}/log-$__target_host\n"
    options = ("-vv", "--colors", "never")
    with trio.fail_after(60):
        piped = await trio.run_process(
            argv(tmp_path, manifest, *options, hosts=HOSTS[:3]),
            env=env,
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=True,
        )
    terminal = Terminal()
    process = await terminal.start(
        argv(tmp_path, manifest, *options, "--no-progress", hosts=HOSTS[:3]), env
    )
    try:
        with trio.fail_after(60):
            await terminal.read_until(lambda text: False)
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        await terminal.stream.aclose()
    assert process.returncode == 0
    assert b"\x1b" not in terminal.output
    ours = bytes(terminal.output).decode()
    assert "Total processing time for 3 host(s)" in ours
    assert _normalised(ours) == _normalised(piped.stdout.decode())


async def test_progress_pty_terminal_gone_run_goes_on(tmp_path: Path, env: dict[str, str]) -> None:
    """The terminal closes mid-run (writes then fail with EIO; it is not the run's
    controlling terminal, so no SIGHUP): the display goes quiet, every host finishes."""
    gate = tmp_path / "gate"
    manifest = (
        f"while [ ! -e {gate} ]; do sleep 0.02; done\n"
        f"__step one --log {tmp_path}/log-$__target_host\n"
    )
    hosts = HOSTS[:5]
    terminal = Terminal()
    process = await terminal.start(argv(tmp_path, manifest, "-p", "5", "-v", hosts=hosts), env)
    try:
        with trio.fail_after(60):
            await terminal.read_until(lambda text: len(host_lines(text, "manifest")) >= 5)
            await terminal.stream.aclose()  # the terminal is gone
            gate.touch()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0
    for host in hosts:
        assert (tmp_path / f"log-{host}").read_text() == "local __step/one\nremote __step/one\n"
