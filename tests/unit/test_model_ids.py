"""Object names and the object id rules of cdist-spec §7."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cdist_trio.errors import IllegalObjectIdError, MissingObjectIdError
from cdist_trio.model import CdistType, split_object_name, validate_object_id

MARKER = ".cdist-ab12_x9z"


@pytest.fixture
def plain(tmp_path: Path, make_type: Callable[..., Path]) -> CdistType:
    make_type("__plain", base=tmp_path)
    return CdistType.load(tmp_path, "__plain")


@pytest.fixture
def single(tmp_path: Path, make_type: Callable[..., Path]) -> CdistType:
    make_type("__single", base=tmp_path, singleton=True)
    return CdistType.load(tmp_path, "__single")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("__file/etc/x", ("__file", "etc/x")),
        ("__file//etc/x", ("__file", "/etc/x")),
        ("__single", ("__single", "")),
        ("__single/", ("__single", "")),
        ("__x/a/", ("__x", "a/")),
    ],
)
def test_split_object_name_splits_at_first_slash(name: str, expected: tuple[str, str]) -> None:
    assert split_object_name(name) == expected


@pytest.mark.parametrize(
    ("given", "sanitised"),
    [
        ("etc/passwd", "etc/passwd"),
        ("/etc/passwd", "etc/passwd"),
        ("etc/dir/", "etc/dir"),
        ("/a/", "a"),
        ("x", "x"),
        ("..", ".."),
        ("a/../b", "a/../b"),
        ("with space", "with space"),
        (".cdist", ".cdist"),
        (f"x{MARKER}y", f"x{MARKER}y"),
        ("$(echo hi);", "$(echo hi);"),
    ],
)
def test_validate_object_id_accepts_and_sanitises(
    plain: CdistType, given: str, sanitised: str
) -> None:
    assert validate_object_id(plain, given, MARKER) == sanitised


@pytest.mark.parametrize("object_id", ["a//b", "//x", "x//", "/a//"])
def test_validate_object_id_rejects_double_slash(plain: CdistType, object_id: str) -> None:
    with pytest.raises(IllegalObjectIdError) as caught:
        validate_object_id(plain, object_id, MARKER)
    assert str(caught.value) == f"Illegal object id: object_id may not contain //: {object_id}"


@pytest.mark.parametrize("object_id", [".", "/"])
def test_validate_object_id_rejects_dot_and_slash(plain: CdistType, object_id: str) -> None:
    with pytest.raises(IllegalObjectIdError) as caught:
        validate_object_id(plain, object_id, MARKER)
    assert str(caught.value) == f"Illegal object id: object_id may not be a {object_id}"


@pytest.mark.parametrize("object_id", [MARKER, f"a/{MARKER}", f"{MARKER}/b", f"a/{MARKER}/b"])
def test_validate_object_id_rejects_marker_component(plain: CdistType, object_id: str) -> None:
    with pytest.raises(IllegalObjectIdError) as caught:
        validate_object_id(plain, object_id, MARKER)
    assert str(caught.value) == (
        f"Illegal object id: object_id may not contain '{MARKER}': {object_id}"
    )


def test_validate_object_id_rejects_missing_id(plain: CdistType) -> None:
    with pytest.raises(MissingObjectIdError) as caught:
        validate_object_id(plain, "", MARKER)
    assert str(caught.value) == "Type __plain requires object id (is not a singleton type)"


def test_validate_object_id_singleton_has_empty_id(single: CdistType) -> None:
    assert validate_object_id(single, "", MARKER) == ""


def test_validate_object_id_singleton_rejects_id(single: CdistType) -> None:
    with pytest.raises(IllegalObjectIdError) as caught:
        validate_object_id(single, "x", MARKER)
    assert str(caught.value) == "Illegal object id: singleton objects can't have an object_id"


@pytest.mark.parametrize("object_id", ["a\nb", "a\0b", "x\n"])
def test_validate_object_id_rejects_newline_and_nul(plain: CdistType, object_id: str) -> None:
    with pytest.raises(IllegalObjectIdError, match="newline or NUL") as caught:
        validate_object_id(plain, object_id, MARKER)
    assert repr(object_id) in str(caught.value)
