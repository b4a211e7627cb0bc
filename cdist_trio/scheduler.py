"""The async object scheduler of one host: prepare and run objects as the graph allows.

Deciding is sync (`graph.Graph`, the object store); doing is async (explorers, manifests,
code), each job under the host's ``job_limiter``.  The first failure stops the host.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from .batch import StepResult
from .code import generate_code, run_code, run_code_local, run_code_remote_batch
from .context import HostContext
from .errors import CdistError, DependencyError, ObjectError
from .explorer import (
    explorer_key,
    run_type_explorers,
    run_type_explorers_batch,
    store_type_explorer_results,
    type_explorer_steps,
)
from .graph import Graph, Phase
from .manifest import object_error, run_type_manifest
from .model.objects import CdistObject
from .tasks import gather_first_error

VERBOSE = 15


@dataclass
class ObjectOutcome:
    """What happened to one object, for the host report."""

    name: str
    has_code: bool = False
    prepare_seconds: float = 0.0
    run_seconds: float = 0.0
    code_exit_status: int | None = None
    """0 when its code ran and succeeded; the failing step's exit status; else None."""
    error: str | None = None


@dataclass
class SchedulerResult:
    objects: dict[str, ObjectOutcome] = field(default_factory=dict)


class ObjectScheduler:
    """Owns the graph of one host run and drives it to completion."""

    def __init__(
        self, ctx: HostContext, *, on_object_done: Callable[[ObjectOutcome], None] | None = None
    ) -> None:
        self.ctx = ctx
        self._on_object_done = on_object_done
        self._done = 0
        self.graph = Graph()
        self.result = SchedulerResult()
        self._objects: dict[str, CdistObject] = {}
        self._typeorder_read = 0
        self._manifest_ran: set[str] = set()
        self._ignored: set[str] = set()
        self._wakeup_send, self._wakeup_receive = trio.open_memory_channel[None](float("inf"))
        self._in_flight = 0
        self._failure: BaseException | None = None
        self._nonparallel_running: set[str] = set()
        self._explored: dict[str, dict[str, StepResult]] = {}
        """Type explorer results of objects not prepared yet, run in the session of the
        code they waited for (`_run_code_remote`)."""

    def refresh(self) -> None:
        """Read objects defined since the last call, and the requirement lists that may
        have changed with them.

        The emulator appends every definition's name to ``$G/typeorder`` (re-definitions
        too, which may add requirements), so its new lines name the objects to read; the
        objects whose type manifest ran since (`manifest_ran`) may have new autorequires.
        """
        typeorder = self.ctx.workdir.path / "typeorder"
        try:
            with typeorder.open("rb") as handle:
                handle.seek(self._typeorder_read)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        complete = data[: data.rfind(b"\n") + 1]
        self._typeorder_read += len(complete)
        names = dict.fromkeys(complete.decode(errors="surrogateescape").splitlines())
        names.update(dict.fromkeys(self._manifest_ran))
        self._manifest_ran.clear()
        changed = []
        for name in sorted(names):  # a stable order, whatever order the manifests ran in
            obj = self._objects.get(name)
            if obj is None:
                obj = self.ctx.store.from_name(name)
                if obj.cdist_type.install:
                    if name not in self._ignored:
                        self._ignored.add(name)
                        self.ctx.log.debug("Ignoring install type object %s in config", name)
                    continue
                self._objects[name] = obj
            self.graph.update(name, obj.require, obj.autorequire)
            changed.append(name)
        # Requirement names must name valid types and ids (spec §5.10).
        for name in changed:
            for required in (*self.graph.node(name).require, *self.graph.node(name).autorequire):
                if required not in self._objects:
                    self.ctx.store.from_name(required)

    def manifest_ran(self, name: str) -> None:
        """Note that object ``name``'s type manifest ran (its autorequires may be new)."""
        self._manifest_ran.add(name)

    def statistics(self) -> tuple[int, int]:
        """Objects done, and objects known so far (it grows as manifests run)."""
        return self._done, len(self._objects)

    def parameters(self, name: str) -> dict[str, str | tuple[str, ...]] | None:
        """The parameter values of object ``name`` as saved, or None if unreadable."""
        obj = self._objects.get(name)
        if obj is None:
            return None
        try:
            values = obj.parameters()
        except OSError:
            return None
        return {k: v if isinstance(v, str) else tuple(v) for k, v in values.items()}

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
        prepare = self.graph.ready_to_prepare()
        for name in prepare:
            self.graph.set_phase(name, Phase.PREPARING)
        for group in self._groups(prepare):
            self._start(self._prepare, group)
        run = self._runnable(self.graph.ready_to_run())
        for name in run:
            self.graph.set_phase(name, Phase.RUNNING)
        for group in self._groups(run):
            self._start(self._run_objects, group)
        if self._in_flight == 0:
            if self.graph.all_done():
                return True
            raise DependencyError(self.graph.unresolved())
        return False

    def _groups(self, names: list[str]) -> list[list[CdistObject]]:
        """One batch of everything ready (one remote session), or one job per object
        when the transport keeps cdist's one-call-per-step convention."""
        objects = [self._objects[n] for n in names]
        if not objects:
            return []
        return [objects] if self.ctx.batching else [[o] for o in objects]

    def _runnable(self, names: list[str]) -> list[str]:
        """Leave out objects of a ``nonparallel`` type while one of that type runs."""
        chosen: list[str] = []
        for name in names:
            cdist_type = self._objects[name].cdist_type
            if cdist_type.nonparallel:
                if cdist_type.name in self._nonparallel_running:
                    continue
                self._nonparallel_running.add(cdist_type.name)
            chosen.append(name)
        return chosen

    def _start(
        self, job: Callable[[list[CdistObject]], Awaitable[None]], objects: list[CdistObject]
    ) -> None:
        self._in_flight += 1
        self._nursery.start_soon(self._guard, job, objects)

    async def _guard(
        self, job: Callable[[list[CdistObject]], Awaitable[None]], objects: list[CdistObject]
    ) -> None:
        try:
            await job(objects)
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
                if isinstance(exc, ObjectError):
                    self._record_failure(exc)
        finally:
            self._in_flight -= 1
            self._wakeup_send.send_nowait(None)

    async def _prepare(self, objects: list[CdistObject]) -> None:
        ctx = self.ctx
        started = trio.current_time()
        for obj in objects:
            _warn_deprecated(ctx, obj)
            ctx.log.log(VERBOSE, "Preparing object %s", obj.name)
            ctx.log.log(VERBOSE, "Running manifest and explorers for %s", obj.name)
        if ctx.batching:
            results: dict[str, StepResult] = {}
            explored, rest = [], []
            for obj in objects:
                found = self._explored.pop(obj.name, None)
                if found is None:
                    rest.append(obj)
                else:
                    explored.append(obj)
                    results.update(found)
            if explored:
                store_type_explorer_results(ctx, explored, results)
            async with ctx.job_limiter:
                await run_type_explorers_batch(ctx, rest)

        async def prepare_one(obj: CdistObject) -> None:
            async with ctx.job_limiter:
                if not ctx.batching:
                    await run_type_explorers(ctx, obj)
                await run_type_manifest(ctx, obj)
                self.manifest_ran(obj.name)
                try:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(obj.file("typeorder_dep"))
                    obj.state = "prepared"
                except OSError as exc:
                    raise object_error(obj, str(exc)) from exc
            outcome = self.result.objects.setdefault(obj.name, ObjectOutcome(obj.name))
            outcome.prepare_seconds = trio.current_time() - started
            self.graph.set_phase(obj.name, Phase.PREPARED)

        await gather_first_error(objects, prepare_one)

    async def _run_objects(self, objects: list[CdistObject]) -> None:
        ctx = self.ctx
        started = trio.current_time()
        dry_run = ctx.settings.dry_run
        try:

            async def generate_one(obj: CdistObject) -> None:
                outcome = self.result.objects.setdefault(obj.name, ObjectOutcome(obj.name))
                async with ctx.job_limiter:
                    ctx.log.log(VERBOSE, "Running object %s", obj.name)
                    if obj.state == "done":
                        raise CdistError(
                            f"Attempting to run an already finished object: {obj.name}"
                        )
                    outcome.has_code = await generate_code(ctx, obj)
                    if outcome.has_code:
                        ctx.log.info("Processing %s", obj.name)
                        if dry_run:
                            pass
                        elif ctx.batching:
                            await run_code_local(ctx, obj)
                        else:
                            await run_code(ctx, obj)

            await gather_first_error(objects, generate_one)
            if ctx.batching and not dry_run:
                await self._run_code_remote(objects)
        finally:
            for obj in objects:
                if obj.cdist_type.nonparallel:
                    self._nonparallel_running.discard(obj.cdist_type.name)
        for obj in objects:
            obj.state = "done"
            outcome = self.result.objects[obj.name]
            outcome.run_seconds = trio.current_time() - started
            if outcome.has_code and not dry_run:
                outcome.code_exit_status = 0
            self.graph.set_phase(obj.name, Phase.DONE)
            self._done += 1
            if self._on_object_done is not None:
                self._on_object_done(outcome)

    async def _run_code_remote(self, objects: list[CdistObject]) -> None:
        """The code-remote batch of ``objects``; the type explorers of the objects that
        wait only for these run in the same session, after every code-remote succeeded
        (when cdist would run them next).  Explorers only look, so results are dropped
        if such an object gained another requirement meanwhile."""
        ctx = self.ctx
        then = None
        names = {o.name for o in objects}
        if any(self.result.objects[o.name].has_code for o in objects):
            waiting = [
                self._objects[n]
                for n in self.graph.ready_once_done(names)
                if n not in self._explored
            ]
            then = type_explorer_steps(ctx, waiting, wait_for=None) if waiting else None
        async with ctx.job_limiter:
            results = await run_code_remote_batch(ctx, objects, then)
        if then is None:
            return
        self.refresh()  # what manifests defined meanwhile, as `_step` would see it next
        still_waiting = set(self.graph.ready_once_done(names))
        for obj in then.objects:
            keys = [explorer_key(obj, n) for n in obj.cdist_type.explorers]
            if obj.name in still_waiting and all(k in results for k in keys):
                self._explored[obj.name] = {k: results[k] for k in keys}

    def _record_failure(self, exc: ObjectError) -> None:
        """Note on the failed object which step failed and its exit status."""
        name = exc.report.params.get("name", "")
        if name not in self._objects:
            return
        outcome = self.result.objects.setdefault(name, ObjectOutcome(name))
        outcome.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        match = _STEP_STATUS.search(str(exc))
        if match is not None and match.group(1).startswith("code-"):
            outcome.code_exit_status = int(match.group(2))


# The messages of code.object_error calls: "...: code-remote exited with status 3".
_STEP_STATUS = re.compile(r"\b((?:gen)?code-(?:local|remote)) exited with status (-?\d+)")


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
