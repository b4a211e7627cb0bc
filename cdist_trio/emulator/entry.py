"""The emulator's entry point: environment, type, arguments, then the object definition.

Exit codes: 0 ok, 1 cdist error (one ERROR line, no traceback), 2 argument error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import CdistError
from ..model.cdist_type import TypeRegistry
from ..model.objects import ObjectStore
from .arguments import UsageError, parse_arguments
from .define import define_object
from .environment import EmulatorEnv
from .log import EmulatorLog

TYPE_CHECKING = False  # keep typing out of the emulator process (start-up time)
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO


def is_emulator_name(argv0: str) -> bool:
    """True when the program was called by a type's name (basename starts with ``__``)."""
    return os.path.basename(argv0).startswith("__")


def main(
    type_name: str,
    argv: Sequence[str],
    environ: Mapping[str, str],
    stdin: BinaryIO,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    types: TypeRegistry | None = None,
    *,
    in_engine: bool = False,
) -> int:
    """Run one type call, ``<type_name> [object_id] [--param value ...]``.

    Writes ``$G/object/...`` as cdist-spec §6 says and returns the exit code.  Errors
    other than `CdistError` and `OSError` are bugs and propagate with their traceback.
    ``types``, when it reads the same type base, saves loading the type again (the
    engine passes its own registry).  ``in_engine``: the engine serves the call in its own
    process (see `define_object`).
    """
    log = EmulatorLog.from_environ(environ, stdout, stderr)
    try:
        env = EmulatorEnv.from_environ(environ)
        if types is None or types.type_base != env.type_base:
            types = TypeRegistry(env.type_base)
        cdist_type = types.get(type_name)
        object_id, params = parse_arguments(cdist_type, list(argv), stderr)
        store = ObjectStore(env.object_base, env.marker, types)
        cdist_object = store.object(type_name, object_id)
        define_object(env, store, cdist_object, params, stdin, log, in_engine=in_engine)
    except UsageError as error:
        return error.status
    except CdistError as error:
        log.error(str(error))
        return 1
    except OSError as error:
        log.error(f"{type_name}: {error}")
        return 1
    return 0
