"""Defining one object: conflict check, typeorder, source, stdin and relations (§6.3–§6.6).

All of it runs under the object's lock; shared files are written by single appends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import CdistError, InvalidRequirementError, ObjectConflictError
from ..model.lines import append_lines, read_lines
from ..model.objects import CdistObject, ObjectStore, ParameterValue
from .environment import EmulatorEnv
from .lock import in_process_lock, lock_path, object_lock
from .log import EmulatorLog

TYPE_CHECKING = False  # keep typing out of the emulator process (start-up time)
if TYPE_CHECKING:
    from typing import BinaryIO

_STDIN_CHUNK = 64 * 1024


def define_object(
    env: EmulatorEnv,
    store: ObjectStore,
    cdist_object: CdistObject,
    params: Mapping[str, ParameterValue],
    stdin: BinaryIO,
    log: EmulatorLog,
    *,
    in_engine: bool = False,
) -> None:
    """Create or re-define ``cdist_object`` with ``params`` and record its relations.

    ``in_engine``: the call is served by the engine, which serialises definitions of one
    object in memory (`in_process_lock`) rather than with the lock file.

    The parent (``__object_name``) and the ``require`` entries are resolved before any
    file is touched, so a bad name leaves no half-defined object behind.
    """
    parent = store.from_name(env.parent_name) if env.parent_name else None
    requirements = resolve_requirements(store, cdist_object, env.require)
    path = lock_path(
        store.object_base, cdist_object.cdist_type.name, cdist_object.object_id, store.marker
    )
    with (in_process_lock if in_engine else object_lock)(path):
        order_dependency = update_order_dep_state(env)
        fresh = _store_parameters(env, cdist_object, params)
        append_lines(env.global_path / "typeorder", [cdist_object.name])
        if parent is not None:
            parent.add_typeorder(cdist_object.name)
        if order_dependency:
            context = context_list_path(env, parent)
            append_lines(context, [cdist_object.name])
            if not env.override:
                previous = injected_requirement(read_lines(context), env.require)
                if previous is not None:
                    log.debug(f"Object {cdist_object.name}: order dependency on {previous}")
                    requirements.append(previous)
        cdist_object.add_source(env.manifest)
        if not _is_tty(stdin):
            _save_stdin(cdist_object.file("stdin"), stdin, fresh=fresh)
        cdist_object.add_require(requirements)
        if parent is not None:
            if parent.name not in cdist_object.require:
                parent.add_autorequire([cdist_object.name])
            parent.add_child(cdist_object.name)
            cdist_object.add_parent(parent.name)


def resolve_requirements(store: ObjectStore, cdist_object: CdistObject, require: str) -> list[str]:
    """Normalised object names of the ``require`` string (split on whitespace, §6.4).

    Each entry must name a valid object (existing type, legal id); it need not exist yet.
    """
    names = []
    for entry in require.split():
        try:
            names.append(store.from_name(entry).name)
        except CdistError as error:
            raise InvalidRequirementError(
                f"Object {cdist_object.name} requires '{entry}', which is not a valid "
                f"object name: {error}"
            ) from None
    return names


def update_order_dep_state(env: EmulatorEnv) -> bool:
    """Open or close the order-dependency context (§6.5); True while one is open.

    ``$G/order_dep_state`` exists while the previous call saw CDIST_ORDER_DEPENDENCY;
    closing the context also removes the global context list ``$G/typeorder_dep``.
    """
    state = env.global_path / "order_dep_state"
    if env.order_dependency:
        if not state.exists():
            state.touch()
        return True
    if state.exists():
        state.unlink(missing_ok=True)
        (env.global_path / "typeorder_dep").unlink(missing_ok=True)
    return False


def context_list_path(env: EmulatorEnv, parent: CdistObject | None) -> Path:
    """The list of objects of the current order-dependency context."""
    if parent is not None:
        return parent.typeorder_dep_path
    return env.global_path / "typeorder_dep"


def injected_requirement(context: list[str], require: str) -> str | None:
    """The object the new one must follow: the context's second-to-last entry, unless
    it already occurs (as a substring, like cdist) in the ``require`` string."""
    if len(context) < 2:
        return None
    previous = context[-2]
    return None if previous in require else previous


def _store_parameters(
    env: EmulatorEnv, cdist_object: CdistObject, params: Mapping[str, ParameterValue]
) -> bool:
    """Create the object, accept an identical re-definition, or fail on a conflict;
    True when the object was created.

    With CDIST_OVERRIDE the whole parameter set is replaced, defaults re-applied.
    """
    if not cdist_object.exists():
        cdist_object.create()
        cdist_object.write_parameters(params, fresh=True)
        return True
    if env.override:
        cdist_object.write_parameters(params)
    else:
        existing = cdist_object.parameters()
        if existing != dict(params):
            sources = " ".join(cdist_object.source)
            raise ObjectConflictError(
                f"Object {cdist_object.name} already exists with conflicting parameters:\n"
                f"{sources}: {_render(existing)}\n"
                f"{env.manifest}: {_render(params)}"
            )
    return False


def _render(params: Mapping[str, ParameterValue]) -> str:
    """A parameter set as a dict repr with sorted keys: readable and deterministic."""
    return repr(dict(sorted(params.items())))


def _is_tty(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _save_stdin(path: str, stdin: BinaryIO, *, fresh: bool) -> None:
    """Copy all of stdin to ``<objdir>/stdin``, replacing an earlier copy (even if empty).

    Mode 0600 whatever the process umask (cdist writes it under umask 077): `__file
    --source -` uploads this file, and the copy keeps its mode.  ``fresh``: the object
    was just created, so there is no earlier copy to remove.
    """
    if not fresh:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        while chunk := stdin.read(_STDIN_CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
