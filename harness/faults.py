"""Faults a test can inflict on a target mid-run: hang, kill sshd, kill sessions, restart,
slow link. Each is a method on the target (this mixin) and returns once it took effect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

from .inspection import Inspection
from .sshd import poll_until

_SSHD_PIDFILE = "/run/cdist-trio-sshd.pid"
_CONTROL_FIFO = "/run/cdist-trio-control"


class FaultUnavailable(RuntimeError):
    """This machine cannot inflict the fault (e.g. no root for `tc netem`)."""


class Faults(Inspection):
    """Mixin for a target: faults through the Docker API and `docker exec`.

    All methods block the calling thread until the fault is in place (or removed), checked
    by a real condition: the container state, the process table, a banner.
    """

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until sshd answers; provided by the target class."""
        raise NotImplementedError

    # -- a hang --------------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze every process of the target (cgroup freezer): connections hang, nothing
        is refused. docker-proxy still accepts TCP connections on the published port.
        """
        container = self.docker_container()
        container.pause()
        poll_until(lambda: self._status() == "paused", timeout=10, what="the pause")

    def unpause(self) -> None:
        """Thaw a paused target; its processes carry on where they stopped."""
        container = self.docker_container()
        container.unpause()
        poll_until(lambda: self._status() == "running", timeout=10, what="the unpause")

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """`with target.paused(): ...` hangs the target for the block's duration."""
        self.pause()
        try:
            yield
        finally:
            self.unpause()

    def _status(self) -> str:
        container = self.docker_container()
        container.reload()
        return str(container.status)

    # -- sshd and its sessions -----------------------------------------------------------

    def sshd_pid(self) -> int | None:
        """PID of the listening sshd, or None while it is not running."""
        result = self.exec(["cat", _SSHD_PIDFILE], check=False)
        if result.exit_code != 0 or not result.text.strip():
            return None
        pid = int(result.text.strip())
        alive = [p for p in self.processes() if p.pid == pid and p.comm == "sshd"]
        return pid if alive else None

    def kill_sshd(self) -> None:
        """SIGKILL the listening sshd. New connections then fail (docker-proxy accepts and
        closes them); sessions already open keep running, as on a real server.
        """
        pid = self.sshd_pid()
        if pid is None:
            return
        self.exec(["kill", "-KILL", str(pid)])
        poll_until(lambda: self.sshd_pid() is None, timeout=10, what="sshd to die")

    def start_sshd(self, *, timeout: float = 30.0) -> None:
        """Start sshd again after `kill_sshd` (same options); block until it answers."""
        if self.sshd_pid() is None:
            self.shell(f"echo start >{_CONTROL_FIFO}")
        self.wait_ready(timeout=timeout)

    def session_pids(self) -> list[int]:
        """PIDs of the per-connection sshd processes (everything sshd but the listener)."""
        listener = self.sshd_pid()
        return [p.pid for p in self.processes() if p.comm == "sshd" and p.pid != listener]

    def kill_sessions(self) -> int:
        """SIGKILL every per-connection sshd process: live connections drop at once.

        Commands those sessions started are left running (without a pty nothing signals
        them), as when a server's sshd children die. Returns how many were killed.
        """
        pids = self.session_pids()
        if pids:
            self.exec(["kill", "-KILL", *map(str, pids)], check=False)
            poll_until(
                lambda: not set(pids) & set(self.session_pids()),
                timeout=10,
                what="sshd session processes to die",
            )
        return len(pids)

    def restart(self, *, timeout: float = 30.0) -> None:
        """Kill and start the whole container again, like a reboot: all processes and
        connections die; files, the host key and the published port are kept.
        """
        self.docker_container().restart(timeout=0)
        self.wait_ready(timeout=timeout)

    # -- the network ---------------------------------------------------------------------

    def slow_link(
        self,
        delay_ms: int = 0,
        *,
        rate_kbit: int | None = None,
        jitter_ms: int = 0,
        loss_percent: float = 0.0,
    ) -> None:
        """Slow every packet the target sends, established connections included.

        `rate_kbit` alone caps the bandwidth with `tc tbf` (in every kernel we met);
        `delay_ms`, `jitter_ms` and `loss_percent` need `tc netem`, which some kernels
        lack (FaultUnavailable then). tc runs from the host in the container's network
        namespace (needs root, `nsenter`, `tc`; the image needs neither tc nor NET_ADMIN).
        Replaces any earlier setting.
        """
        if not (delay_ms or jitter_ms or loss_percent or rate_kbit):
            raise ValueError("slow_link needs a delay, a rate, jitter or loss")
        if rate_kbit is not None and not (delay_ms or jitter_ms or loss_percent):
            # burst: one full frame; latency: how long a packet may queue before a drop.
            qdisc = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "1600", "latency", "60s"]
        else:
            qdisc = ["netem", "delay", f"{delay_ms}ms"]
            if jitter_ms:
                qdisc.append(f"{jitter_ms}ms")
            if loss_percent:
                qdisc += ["loss", f"{loss_percent}%"]
            if rate_kbit is not None:
                qdisc += ["rate", f"{rate_kbit}kbit"]
        self._tc(["qdisc", "replace", "dev", "eth0", "root", *qdisc])

    def clear_link(self) -> None:
        """Remove `slow_link`'s setting; a no-op when there is none."""
        shown = self._tc(["qdisc", "show", "dev", "eth0"])
        if "qdisc netem" in shown or "qdisc tbf" in shown:
            self._tc(["qdisc", "del", "dev", "eth0", "root"])

    @contextlib.contextmanager
    def slowed_link(self, delay_ms: int = 0, *, rate_kbit: int | None = None) -> Iterator[None]:
        """`with target.slowed_link(rate_kbit=32): ...` slows the link for the block."""
        self.slow_link(delay_ms, rate_kbit=rate_kbit)
        try:
            yield
        finally:
            self.clear_link()

    def _tc(self, args: list[str]) -> str:
        missing = [tool for tool in ("nsenter", "tc") if shutil.which(tool) is None]
        if missing:
            raise FaultUnavailable(f"slow_link needs {missing} on this machine (iproute2)")
        if os.geteuid() != 0:
            raise FaultUnavailable("slow_link needs root to enter the container's netns")
        container = self.docker_container()
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        command = ["nsenter", "-t", str(pid), "-n", "tc", *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise FaultUnavailable(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout
