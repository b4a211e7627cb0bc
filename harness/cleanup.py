"""Removing the harness's containers by label: at fleet exit, at interpreter exit, on
SIGTERM/SIGHUP, and in the end-of-session check (testcontainers' reaper is disabled here).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Mapping
from types import FrameType
from typing import Any

HARNESS_LABEL = "cdist-trio.harness"
SESSION_LABEL = "cdist-trio.harness.session"
FLEET_LABEL = "cdist-trio.harness.fleet"

#: Labels every container of this process; a parent may set it to find our containers.
SESSION_ID = os.environ.get("CDIST_TRIO_HARNESS_SESSION") or uuid.uuid4().hex[:12]

_lock = threading.Lock()
_installed = False


def session_labels() -> dict[str, str]:
    return {HARNESS_LABEL: "1", SESSION_LABEL: SESSION_ID}


def containers_started() -> bool:
    """Whether this process started (or tried to start) any container."""
    return _installed


def started() -> None:
    """Note that this process starts containers: arm the exit and signal clean-up once."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(remove_session_containers)
    if threading.current_thread() is not threading.main_thread():
        # signal.signal only works on the main thread; ask it to install the handlers.
        return
    _install_signal_handlers()


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt (so `finally` and atexit run).

    Ctrl-C already raises KeyboardInterrupt. Handlers someone else installed are kept.
    Call from the main thread; the fleet calls it before starting its worker threads.
    """
    if threading.current_thread() is threading.main_thread():
        _install_signal_handlers()


def _install_signal_handlers() -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _exit_on_signal)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Like Ctrl-C: pytest stops the run and tears fixtures down; `with Fleet` unwinds.
    raise KeyboardInterrupt(f"signal {signum}")


def _client() -> Any:
    import docker

    return docker.from_env()


def list_containers(labels: Mapping[str, str] | None = None) -> list[Any]:
    """Containers (also stopped ones) carrying all `labels`; this session's by default."""
    wanted = labels if labels is not None else {SESSION_LABEL: SESSION_ID}
    filters = {"label": [f"{key}={value}" for key, value in wanted.items()]}
    client = _client()
    try:
        return list(client.containers.list(all=True, filters=filters))
    finally:
        client.close()


def remove_containers(labels: Mapping[str, str]) -> int:
    """Force-remove every container carrying all `labels`; returns how many were found."""
    import docker.errors

    found = list_containers(labels)
    for container in found:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)
    return len(found)


def remove_session_containers() -> int:
    """Remove whatever this session left behind; safe to call any number of times."""
    with contextlib.suppress(Exception):
        return remove_containers({SESSION_LABEL: SESSION_ID})
    return 0


def child_processes() -> list[tuple[int, str]]:
    """Live (non-zombie) child processes of this process: (pid, command name)."""
    children: list[tuple[int, str]] = []
    task_dir = f"/proc/{os.getpid()}/task"
    with contextlib.suppress(OSError):
        for task in os.listdir(task_dir):
            with contextlib.suppress(OSError), open(f"{task_dir}/{task}/children") as handle:
                for pid in handle.read().split():
                    try:
                        with open(f"/proc/{pid}/stat") as stat:
                            text = stat.read()
                    except OSError:
                        continue
                    comm = text[text.find("(") + 1 : text.rfind(")")]
                    if text[text.rfind(")") + 2 :].split()[:1] != ["Z"]:
                        children.append((int(pid), comm))
    return children
