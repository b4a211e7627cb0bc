"""Object names and the object id rules of cdist-spec §7.

An object name is ``<type>/<object_id>``; ids are checked as given, then sanitised.
"""

from __future__ import annotations

from ..errors import IllegalObjectIdError, MissingObjectIdError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the emulator must not import typing

if TYPE_CHECKING:
    from .cdist_type import CdistType


def split_object_name(name: str) -> tuple[str, str]:
    """Split ``__file/etc/x`` into ``("__file", "etc/x")``.

    A bare type name or one with a trailing slash (``__single``, ``__single/``) gives an
    empty id.  The id is returned as written: validate it before use.
    """
    type_name, _, object_id = name.partition("/")
    return type_name, object_id


def validate_object_id(cdist_type: CdistType, object_id: str, marker: str) -> str:
    """Check ``object_id`` for ``cdist_type`` and return it sanitised.

    The rules of cdist-spec §7 are applied to the id as given; then one leading and one
    trailing ``/`` are removed.  Beyond cdist we also reject ids containing a newline or a
    NUL byte: cdist's line-based files (``require``, ``typeorder``) cannot hold them.
    """
    if cdist_type.singleton:
        if object_id:
            raise IllegalObjectIdError(
                "Illegal object id: singleton objects can't have an object_id"
            )
        return ""
    if not object_id:
        raise MissingObjectIdError(cdist_type.name)
    if marker and marker in object_id.split("/"):
        raise IllegalObjectIdError(
            f"Illegal object id: object_id may not contain '{marker}': {object_id}"
        )
    if "//" in object_id:
        raise IllegalObjectIdError(f"Illegal object id: object_id may not contain //: {object_id}")
    if object_id in (".", "/"):
        raise IllegalObjectIdError(f"Illegal object id: object_id may not be a {object_id}")
    if "\n" in object_id or "\0" in object_id:
        raise IllegalObjectIdError(
            f"Illegal object id: object_id may not contain a newline or NUL: {object_id!r}"
        )
    if object_id.startswith("/"):
        object_id = object_id[1:]
    if object_id.endswith("/"):
        object_id = object_id[:-1]
    return object_id
