"""The async object scheduler of one host: prepare and run objects as the graph allows.

Deciding is sync (`graph.Graph`, the object store); doing is async (explorers, manifests,
code), each job under the host's ``job_limiter``.  The first failure stops the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from .code import generate_code, run_code
from .context import HostContext
from .errors import CdistError, DependencyError
from .explorer import run_type_explorers
from .graph import Graph, Phase
from .manifest import object_error, run_type_manifest
from .model.objects import CdistObject

VERBOSE = 15


@dataclass
class ObjectOutcome:
    """What happened to one object, for the host report."""

    name: str
    has_code: bool = False
    prepare_seconds: float = 0.0
    run_seconds: float = 0.0


@dataclass
class SchedulerResult:
    objects: dict[str, ObjectOutcome] = field(default_factory=dict)


class ObjectScheduler:
    """Owns the graph of one host run and drives it to completion."""

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.graph = Graph()
        self.result = SchedulerResult()
        self._objects: dict[str, CdistObject] = {}
        self._typeorder_size = -1
        self._wakeup_send, self._wakeup_receive = trio.open_memory_channel[None](float("inf"))
        self._in_flight = 0
        self._failure: BaseException | None = None

    def refresh(self) -> None:
        """Read new objects and requirement lists from the store if any manifest defined one.

        The emulator appends to ``$G/typeorder`` on every definition, so an unchanged
        size means nothing new to read.
        """
        typeorder = self.ctx.workdir.path / "typeorder"
        size = typeorder.stat().st_size if typeorder.exists() else 0
        if size == self._typeorder_size:
            return
        self._typeorder_size = size
        for obj in self.ctx.store.list_objects():
            if obj.cdist_type.install:
                if obj.name not in self._objects:
                    self.ctx.log.debug("Ignoring install type object %s in config", obj.name)
                continue
            self._objects[obj.name] = obj
            self.graph.update(obj.name, obj.require, obj.autorequire)
        # Requirement names must name valid types and ids (spec §5.10).
        for name in self.graph.names():
            for required in (*self.graph.node(name).require, *self.graph.node(name).autorequire):
                if required not in self._objects:
                    self.ctx.store.from_name(required)

    async def run(self) -> SchedulerResult:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while self._failure is None:
                try:
                    if self._step():
                        break
                except CdistError as exc:
                    self._failure = exc
                    break
                await self._wakeup_receive.receive()
            nursery.cancel_scope.cancel()
        if self._failure is not None:
            raise self._failure
        return self.result

    def _step(self) -> bool:
        """Start everything that is ready; True when every object is done."""
        self.refresh()
        cycle = self.graph.find_cycle()
        if cycle is not None:
            raise DependencyError(
                "Cycle detected in object dependencies:\n" + " -> ".join(cycle) + "!"
            )
        for name in self.graph.ready_to_prepare():
            self.graph.set_phase(name, Phase.PREPARING)
            self._start(self._prepare, name)
        for name in self.graph.ready_to_run():
            self.graph.set_phase(name, Phase.RUNNING)
            self._start(self._run_object, name)
        if self._in_flight == 0:
            if self.graph.all_done():
                return True
            raise DependencyError(self.graph.unresolved())
        return False

    def _start(self, job: object, name: str) -> None:
        self._in_flight += 1
        self._nursery.start_soon(self._guard, job, name)

    async def _guard(self, job: object, name: str) -> None:
        try:
            await job(self._objects[name])  # type: ignore[operator]
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
        finally:
            self._in_flight -= 1
            self._wakeup_send.send_nowait(None)

    async def _prepare(self, obj: CdistObject) -> None:
        ctx = self.ctx
        outcome = self.result.objects.setdefault(obj.name, ObjectOutcome(obj.name))
        async with ctx.job_limiter:
            started = trio.current_time()
            _warn_deprecated(ctx, obj)
            ctx.log.log(VERBOSE, "Preparing object %s", obj.name)
            ctx.log.log(VERBOSE, "Running manifest and explorers for %s", obj.name)
            await run_type_explorers(ctx, obj)
            await run_type_manifest(ctx, obj)
            try:
                (obj.path / "typeorder_dep").unlink(missing_ok=True)
                obj.state = "prepared"
            except OSError as exc:
                raise object_error(obj, str(exc)) from exc
            outcome.prepare_seconds = trio.current_time() - started
        self.graph.set_phase(obj.name, Phase.PREPARED)

    async def _run_object(self, obj: CdistObject) -> None:
        ctx = self.ctx
        outcome = self.result.objects.setdefault(obj.name, ObjectOutcome(obj.name))
        lock = ctx.type_lock(obj.cdist_type.name) if obj.cdist_type.nonparallel else None
        async with ctx.job_limiter:
            if lock is not None:
                await lock.acquire()
            try:
                started = trio.current_time()
                ctx.log.log(VERBOSE, "Running object %s", obj.name)
                if obj.state == "done":
                    raise CdistError(f"Attempting to run an already finished object: {obj.name}")
                outcome.has_code = await generate_code(ctx, obj)
                if outcome.has_code:
                    ctx.log.info("Processing %s", obj.name)
                    if not ctx.settings.dry_run:
                        await run_code(ctx, obj)
                obj.state = "done"
                outcome.run_seconds = trio.current_time() - started
            finally:
                if lock is not None:
                    lock.release()
        self.graph.set_phase(obj.name, Phase.DONE)


def _warn_deprecated(ctx: HostContext, obj: CdistObject) -> None:
    cdist_type = obj.cdist_type
    if cdist_type.deprecated is not None:
        if cdist_type.deprecated:
            ctx.log.warning("Type %s is deprecated: %s", cdist_type.name, cdist_type.deprecated)
        else:
            ctx.log.warning("Type %s is deprecated.", cdist_type.name)
    if cdist_type.deprecated_parameters:
        present = obj.parameters()
        for param, message in cdist_type.deprecated_parameters.items():
            if param in present:
                if message:
                    ctx.log.warning(
                        "%s parameter of type %s is deprecated: %s",
                        param,
                        cdist_type.name,
                        message,
                    )
                else:
                    ctx.log.warning(
                        "%s parameter of type %s is deprecated.", param, cdist_type.name
                    )
