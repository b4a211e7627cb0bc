"""sshd tuning for targets and the SSH-banner readiness probe.

`SshdTuning` turns MaxSessions, MaxStartups, LoginGraceTime, LogLevel and any other option
into `-o` arguments given to sshd at container start (the image's sshd_config sets none).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable, Mapping

_MAX_STARTUPS = re.compile(r"^\d+(:\d+:\d+)?$")
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
LOG_LEVELS = frozenset(
    {"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"}
)
# Options the harness relies on; changing them would break host keys, login or logging.
_RESERVED = frozenset({"port", "hostkey", "pidfile", "authorizedkeysfile"})


@dataclasses.dataclass(frozen=True)
class SshdTuning:
    """sshd options for a target; `None` keeps sshd's default.

    `log_level` defaults to VERBOSE because the inspection helpers count connections and
    sessions from sshd's log. `options` adds any other `-o Name=value`.
    """

    max_sessions: int | None = None
    max_startups: str | None = None
    login_grace_time: int | str | None = None
    log_level: str = "VERBOSE"
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.max_sessions is not None and self.max_sessions < 0:
            raise ValueError(f"max_sessions must be >= 0, not {self.max_sessions}")
        if self.max_startups is not None and not _MAX_STARTUPS.match(self.max_startups):
            raise ValueError(
                f"max_startups must be N or start:rate:full, not {self.max_startups!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {sorted(LOG_LEVELS)}")
        for name, value in self.options:
            if not _OPTION_NAME.match(name) or name.lower() in _RESERVED:
                raise ValueError(f"sshd option {name!r} is not allowed here")
            if "\n" in value:
                raise ValueError(f"sshd option {name} has a newline in its value")

    @classmethod
    def with_options(cls, options: Mapping[str, str], **fields: object) -> SshdTuning:
        """Build a tuning from a mapping of extra options plus the named fields."""
        return cls(options=tuple(options.items()), **fields)  # type: ignore[arg-type]

    def sshd_args(self) -> list[str]:
        """The `-o Name=value` arguments for `sshd -D -e`, in a stable order."""
        pairs: list[tuple[str, str]] = [("LogLevel", self.log_level.upper())]
        if self.max_sessions is not None:
            pairs.append(("MaxSessions", str(self.max_sessions)))
        if self.max_startups is not None:
            pairs.append(("MaxStartups", self.max_startups))
        if self.login_grace_time is not None:
            pairs.append(("LoginGraceTime", str(self.login_grace_time)))
        pairs.extend(self.options)
        args: list[str] = []
        for name, value in pairs:
            args += ["-o", f"{name}={value}"]
        return args


def read_banner(host: str, port: int, *, timeout: float = 2.0) -> bytes | None:
    """Connect once and return sshd's identification line, or None if none came.

    docker-proxy accepts connections before sshd listens and then closes them, so an open
    port proves nothing; only the `SSH-2.0-` banner does.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            received = b""
            while b"\n" not in received and len(received) < 512:
                chunk = sock.recv(512)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return None
    line = received.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    return line if line.startswith(b"SSH-2.0-") else None


def poll_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Check `condition` until it holds; raise TimeoutError after `timeout` seconds.

    The interval only paces re-checks of a real condition; nothing waits a fixed time and
    hopes. Blocks the calling thread.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def wait_for_banner(host: str, port: int, *, timeout: float = 30.0) -> bytes:
    """Block until sshd on host:port sends its banner; return it."""
    banner: list[bytes] = []

    def answered() -> bool:
        line = read_banner(host, port, timeout=min(2.0, timeout))
        if line is not None:
            banner.append(line)
        return line is not None

    poll_until(answered, timeout=timeout, what=f"an SSH banner from {host}:{port}")
    return banner[0]
