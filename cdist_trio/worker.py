"""One worker process of a run with ``--workers N`` (see `cdist_trio.workers`).

``python -m cdist_trio.worker FD``: FD is its end of the socket pair.  The first message
is the `WorkerSetup`; then ``("host", index, spec)`` starts a host scope and
``("cancel", index, reason)`` cancels one; the end of the stream cancels every host
left.  What goes back, in batches (one pickle per batch): ``("event", index, event)``,
``("log", record)`` and, once per host, ``("report", index, report)``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections import deque
from contextlib import suppress

import trio

from .events import POOLED_TRANSPORTS, Emitter, Event, watch_transports
from .host import HostRun, configure_host_in_time, interrupted_report
from .hosts import HostSpec
from .log import LOGGER_NAME, route_python_warnings
from .process import LOCAL_UMASK
from .run import fewer_collections
from .shellpool import ShellPool, pool_shell_available
from .transport import TransportResources
from .workers import MessageStream, WorkerSetup

_PARENT_GONE = "the cdist-trio process that started this worker is gone"
_TERMINATED = "its worker process got SIGTERM"


class Outbox:
    """Messages to the parent, sent in batches by `pump`; `put` may be called from any
    thread (log records), and never waits."""

    def __init__(self, messages: MessageStream) -> None:
        self._messages = messages
        self._items: deque[object] = deque()
        self._token = trio.lowlevel.current_trio_token()
        self._wakeup = trio.Event()
        self._closing = False
        self._done = trio.Event()

    def put(self, item: object) -> None:
        self._items.append(item)
        self._token.run_sync_soon(self._wake, idempotent=True)

    def _wake(self) -> None:
        self._wakeup.set()

    async def pump(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                while self._items:
                    batch = []
                    while self._items:
                        batch.append(self._items.popleft())
                    await self._messages.send(batch)
                if self._closing:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._items.clear()  # the parent is gone: nobody to tell
        finally:
            self._done.set()

    async def close(self) -> None:
        """Send what is queued, then end `pump`."""
        self._closing = True
        self._wakeup.set()
        await self._done.wait()


class _ForwardingHandler(logging.Handler):
    """Sends this process's ``cdist_trio`` records to the parent, which logs them."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self._outbox.put(("log", record))
        except Exception:
            self.handleError(record)


async def serve(fd: int) -> None:
    os.set_inheritable(fd, False)  # no script or ssh of ours may hold the parent's socket
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
    messages = MessageStream(trio.SocketStream(sock))
    setup = await messages.receive()
    if not isinstance(setup, WorkerSetup):
        raise SystemExit(f"cdist-trio worker: expected the run's setup first, not {setup!r}")
    outbox = Outbox(messages)
    logger = logging.getLogger(LOGGER_NAME)
    handler = _ForwardingHandler(outbox)
    logger.addHandler(handler)
    logger.setLevel(setup.log_level)
    logger.propagate = False
    # Nobody reads this process's warnings: they become DEBUG records, sent on like the rest.
    route_python_warnings()
    try:
        with fewer_collections():
            await _serve(setup, messages, outbox)
    finally:
        # A record from a thread after this would find no Trio run to send it.
        logger.removeHandler(handler)


async def _serve(setup: WorkerSetup, messages: MessageStream, outbox: Outbox) -> None:
    settings = setup.settings
    runs: dict[int, HostRun] = {}
    scopes: dict[int, trio.CancelScope] = {}
    reasons: dict[int, str] = {}
    shells = ShellPool(umask=LOCAL_UMASK) if pool_shell_available() else None
    resources = TransportResources(setup.connect_limit, local_shells=shells)
    resources.local_processes.total_tokens = setup.local_processes

    def forward(index: int) -> Emitter | None:
        if not setup.events:
            return None
        return Emitter(lambda event: outbox.put(("event", index, event)))

    async def one_host(index: int, spec: HostSpec) -> None:
        emit = forward(index)
        run = runs[index] = HostRun(spec.name, emit=emit, report_values=setup.report_values)
        report = None
        with scopes[index]:
            report = await configure_host_in_time(
                spec, settings, setup.base_root, setup.home, resources, run
            )
        if report is None:
            report = interrupted_report(run, reasons.get(index, "interrupted"))
        run.finish()
        del runs[index], scopes[index]
        outbox.put(("report", index, report))

    def transport_event(event: Event) -> None:
        index = next((i for i, run in runs.items() if run.host == getattr(event, "host", None)), -1)
        outbox.put(("event", index, event))

    try:
        async with trio.open_nursery() as background:
            background.start_soon(outbox.pump)
            if shells is not None and setup.prestart:
                background.start_soon(shells.prestart, setup.prestart)
            if setup.events and settings.transport in POOLED_TRANSPORTS:
                background.start_soon(watch_transports, runs.values(), Emitter(transport_event))
            receiving = trio.CancelScope()
            stop_reason = _PARENT_GONE

            async def on_sigterm() -> None:
                nonlocal stop_reason
                with trio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop_reason = _TERMINATED
                        receiving.cancel()
                        return

            background.start_soon(on_sigterm)
            async with trio.open_nursery() as hosts:
                with (
                    receiving,
                    suppress(trio.BrokenResourceError, trio.ClosedResourceError, EOFError),
                ):
                    while (message := await messages.receive()) is not None:
                        assert isinstance(message, tuple)
                        if message[0] == "host":
                            _, index, spec = message
                            scopes[index] = trio.CancelScope()
                            hosts.start_soon(one_host, index, spec)
                        elif message[0] == "cancel":
                            _, index, reason = message
                            if index in scopes:
                                reasons.setdefault(index, reason)
                                scopes[index].cancel()
                for index, scope in scopes.items():
                    reasons.setdefault(index, stop_reason)
                    scope.cancel()
            await outbox.close()
            background.cancel_scope.cancel()
    finally:
        resources.close()
        if shells is not None:
            with trio.CancelScope(shield=True):
                await shells.aclose()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # Ctrl-C is the parent's: it cancels this worker's hosts by message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    trio.run(serve, int(argv[0]))


if __name__ == "__main__":
    main()
