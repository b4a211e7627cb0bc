"""The command line of a type, built with argparse from its parameter files (spec §6.2).

argparse gives cdist's exact forms: unique-prefix abbreviations, ``--opt=value`` and errors.
"""

from __future__ import annotations

import argparse
import sys
import threading

from ..errors import UserError
from ..model.cdist_type import CdistType
from ..model.objects import ParameterValue

TYPE_CHECKING = False  # keep typing out of the emulator process (start-up time)
if TYPE_CHECKING:
    from typing import Any, NoReturn, TextIO

_OBJECT_ID = "\0object_id"  # a dest no parameter name can collide with


class UsageError(Exception):
    """argparse rejected the arguments; its usage and error lines are already on stderr."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises `UsageError` instead of exiting the process, and
    writes its usage and errors to ``err`` (the caller's stderr when served in-process)."""

    def __init__(self, *args: Any, err: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._err = err

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self._err or file or sys.stderr).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            (self._err or sys.stderr).write(message)
        raise UsageError(status)


def build_parser(cdist_type: CdistType, err: TextIO | None = None) -> _Parser:
    """The parser for ``cdist_type``: no ``-h``; ``prog`` is the type name.

    Defaults are applied after parsing (see `parse_arguments`), because argparse's
    ``append`` would add user values to a default list instead of replacing it.
    """
    parser = _Parser(prog=cdist_type.name, add_help=False, err=err)
    try:
        for name in cdist_type.required:
            parser.add_argument(f"--{name}", dest=name, metavar=name.upper(), required=True)
        for name in cdist_type.required_multiple:
            parser.add_argument(
                f"--{name}", dest=name, metavar=name.upper(), required=True, action="append"
            )
        for name in cdist_type.optional:
            parser.add_argument(f"--{name}", dest=name, metavar=name.upper())
        for name in cdist_type.optional_multiple:
            parser.add_argument(f"--{name}", dest=name, metavar=name.upper(), action="append")
        for name in cdist_type.boolean:
            parser.add_argument(f"--{name}", dest=name, action="store_const", const="")
    except argparse.ArgumentError as error:
        raise UserError(
            f"Invalid parameter definition of type {cdist_type.name}: {error}"
        ) from None
    if not cdist_type.singleton:
        parser.add_argument(_OBJECT_ID, metavar="object_id", nargs=1)
    return parser


_PARSER_LOCK = threading.Lock()


_SINGLE, _MULTIPLE, _BOOLEAN = range(3)
_Options = dict[str, tuple[str, int]]
_CACHE_SIZE = 512
_parsers: dict[tuple[object, ...], tuple[_Parser, _Options]] = {}


def _cached_parser(cdist_type: CdistType) -> tuple[_Parser, _Options]:
    """The parser of ``cdist_type`` and its `_options`, built once per definition: the
    same type in every host's copy of the conf dir shares them (keyed by what the
    command line depends on, not by the type's path)."""
    key = (
        cdist_type.name,
        cdist_type.required,
        cdist_type.required_multiple,
        cdist_type.optional,
        cdist_type.optional_multiple,
        cdist_type.boolean,
        cdist_type.singleton,
    )
    found = _parsers.get(key)
    if found is None:
        if len(_parsers) >= _CACHE_SIZE:
            _parsers.clear()
        # The parser first: it refuses conflicting definitions.
        found = _parsers[key] = (build_parser(cdist_type), _options(cdist_type))
    return found


def _options(cdist_type: CdistType) -> _Options:
    """``--name`` → (dest, kind) of every parameter."""
    options = {}
    for names, kind in (
        (cdist_type.required, _SINGLE),
        (cdist_type.required_multiple, _MULTIPLE),
        (cdist_type.optional, _SINGLE),
        (cdist_type.optional_multiple, _MULTIPLE),
        (cdist_type.boolean, _BOOLEAN),
    ):
        for name in names:
            options[f"--{name}"] = (name, kind)
    return options


def _parse_common(cdist_type: CdistType, argv: list[str]) -> dict[str, Any] | None:
    """argparse's namespace for the common command line, or None to let argparse decide.

    Common: every option word is a parameter's exact name, each value is the next word
    and does not start with ``-`` (``-`` itself is a value), at most one object id, and
    every required parameter given.  Anything else (abbreviations, ``--name=value``,
    ``--``, values that look like options or negative numbers, errors) goes to argparse,
    whose rules for those are subtle; for the common form the result is the same
    (tests/unit/test_emulator_arguments.py compares the two).
    """
    options = _cached_parser(cdist_type)[1]
    namespace: dict[str, Any] = {dest: None for dest, _ in options.values()}
    object_id: str | None = None
    index, count = 0, len(argv)
    while index < count:
        word = argv[index]
        index += 1
        if not word.startswith("-"):
            if object_id is not None or cdist_type.singleton:
                return None
            object_id = word
            continue
        option = options.get(word)
        if option is None:
            return None
        dest, kind = option
        if kind == _BOOLEAN:
            namespace[dest] = ""
            continue
        if index == count:
            return None
        value = argv[index]
        index += 1
        if value.startswith("-") and value != "-":
            return None
        if kind == _MULTIPLE:
            values = namespace[dest]
            if values is None:
                namespace[dest] = [value]
            else:
                values.append(value)
        else:
            namespace[dest] = value
    if not cdist_type.singleton:
        if object_id is None:
            return None
        namespace[_OBJECT_ID] = [object_id]
    for name in (*cdist_type.required, *cdist_type.required_multiple):
        if namespace[name] is None:
            return None
    return namespace


def parse_arguments(
    cdist_type: CdistType, argv: list[str], err: TextIO | None = None
) -> tuple[str, dict[str, ParameterValue]]:
    """Parse ``argv`` into ``(object_id as given, parameters)``; `UsageError` on bad input.

    Parameters hold every parsed value that is not None, defaults included (§6.3 step 4):
    an optional's default is its file stripped, an optional_multiple's the stripped file
    split on newlines; a boolean given is ``""``.
    """
    namespace = _parse_common(cdist_type, argv)
    if namespace is None:
        parser = _cached_parser(cdist_type)[0]
        # One parser per type definition, shared by every call (building one costs more
        # than parsing); its message stream is the caller's, so one call at a time.
        with _PARSER_LOCK:
            parser._err = err
            try:
                namespace = vars(parser.parse_args(argv))
            finally:
                parser._err = None
    object_id_list = namespace.pop(_OBJECT_ID, None)
    object_id = object_id_list[0] if object_id_list else ""
    defaults = cdist_type.defaults
    for name in cdist_type.optional:
        if namespace.get(name) is None and name in defaults:
            namespace[name] = defaults[name].strip()
    for name in cdist_type.optional_multiple:
        if namespace.get(name) is None and name in defaults:
            namespace[name] = defaults[name].strip().split("\n")
    params: dict[str, ParameterValue] = {
        name: value for name, value in namespace.items() if value is not None
    }
    return object_id, params
