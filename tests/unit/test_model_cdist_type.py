"""Reading a type directory into a `CdistType`, and the `TypeRegistry`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cdist_trio.errors import InvalidTypeError
from cdist_trio.model import CdistType, TypeRegistry


def test_cdist_type_load_bare_directory_is_a_type(tmp_path: Path) -> None:
    (tmp_path / "__bare").mkdir()
    bare = CdistType.load(tmp_path, "__bare")
    assert bare.name == "__bare"
    assert bare.path == tmp_path / "__bare"
    assert bare.required == bare.optional == bare.boolean == ()
    assert bare.required_multiple == bare.optional_multiple == ()
    assert dict(bare.defaults) == dict(bare.deprecated_parameters) == {}
    assert not bare.singleton
    assert not bare.install
    assert not bare.nonparallel
    assert bare.deprecated is None
    assert bare.explorers == ()
    assert bare.manifest is bare.gencode_local is bare.gencode_remote is None


def test_cdist_type_load_reads_parameter_lists(
    make_type: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_type(
        "__t",
        base=tmp_path,
        required_multiple=["rm"],
        optional=["o1", "o2"],
        optional_multiple=["om"],
        boolean=["flag"],
    )
    (path / "parameter" / "required").write_text("  name  \n\n\t\nother\n   \nlast")
    loaded = CdistType.load(tmp_path, "__t")
    assert loaded.required == ("name", "other", "last")
    assert loaded.required_multiple == ("rm",)
    assert loaded.optional == ("o1", "o2")
    assert loaded.optional_multiple == ("om",)
    assert loaded.boolean == ("flag",)
    assert loaded.multiple_parameters == {"rm", "om"}


def test_cdist_type_load_ignores_parameter_list_that_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "__t" / "parameter" / "optional").mkdir(parents=True)
    assert CdistType.load(tmp_path, "__t").optional == ()


def test_cdist_type_load_keeps_raw_defaults_and_ignores_hidden(
    make_type: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_type(
        "__t",
        base=tmp_path,
        optional=["state", "empty"],
        optional_multiple=["lines"],
        defaults={"state": " present\n", "empty": "", "lines": "a\nb\n", ".hidden": "x"},
    )
    (path / "parameter" / "default" / "subdir").mkdir()
    loaded = CdistType.load(tmp_path, "__t")
    assert dict(loaded.defaults) == {"state": " present\n", "empty": "", "lines": "a\nb\n"}


def test_cdist_type_load_reads_deprecated_parameters(
    make_type: Callable[..., Path], tmp_path: Path
) -> None:
    make_type(
        "__t",
        base=tmp_path,
        optional=["old", "older"],
        deprecated_parameters={"old": "use --new\n", "older": "", ".x": "hidden"},
    )
    loaded = CdistType.load(tmp_path, "__t")
    assert dict(loaded.deprecated_parameters) == {"old": "use --new\n", "older": ""}


def test_cdist_type_load_reads_markers(make_type: Callable[..., Path], tmp_path: Path) -> None:
    make_type("__t", base=tmp_path, singleton=True, install=True, nonparallel=True, deprecated="")
    make_type("__u", base=tmp_path, deprecated="gone, use __v\n")
    t = CdistType.load(tmp_path, "__t")
    assert (t.singleton, t.install, t.nonparallel, t.deprecated) == (True, True, True, "")
    u = CdistType.load(tmp_path, "__u")
    assert (u.singleton, u.install, u.nonparallel) == (False, False, False)
    assert u.deprecated == "gone, use __v\n"


def test_cdist_type_load_lists_explorers_sorted_without_hidden(
    make_type: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_type(
        "__t", base=tmp_path, explorers={"state": "", "checksum": "", ".swp": "", "a": ""}
    )
    (path / "explorer" / ".hidden_dir").mkdir()
    loaded = CdistType.load(tmp_path, "__t")
    assert loaded.explorers == ("a", "checksum", "state")
    assert loaded.explorer_dir == path / "explorer"


def test_cdist_type_load_finds_scripts(make_type: Callable[..., Path], tmp_path: Path) -> None:
    path = make_type(
        "__t", base=tmp_path, scripts={"manifest": "true\n", "gencode-remote": "echo hi\n"}
    )
    loaded = CdistType.load(tmp_path, "__t")
    assert loaded.manifest == path / "manifest"
    assert loaded.gencode_remote == path / "gencode-remote"
    assert loaded.gencode_local is None


@pytest.mark.parametrize("name", ["__missing", "", ".hidden", "__a/b"])
def test_cdist_type_load_rejects_missing_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "__a" / "b").mkdir(parents=True)
    with pytest.raises(InvalidTypeError):
        CdistType.load(tmp_path, name)


def test_cdist_type_load_rejects_file_with_cdist_message(tmp_path: Path) -> None:
    (tmp_path / "__file_not_dir").write_text("")
    with pytest.raises(InvalidTypeError) as caught:
        CdistType.load(tmp_path, "__file_not_dir")
    path = tmp_path / "__file_not_dir"
    assert str(caught.value) == (
        f"Invalid type '__file_not_dir' at '{path}' defined at '{os.path.realpath(path)}'"
    )
    assert caught.value.type_name == "__file_not_dir"


def test_cdist_type_real_path_resolves_symlink(
    make_type: Callable[..., Path], tmp_path: Path
) -> None:
    real = make_type("__t", base=tmp_path / "confdir")
    base = tmp_path / "merged"
    base.mkdir()
    (base / "__t").symlink_to(real)
    loaded = CdistType.load(base, "__t")
    assert loaded.path == base / "__t"
    assert loaded.real_path == real.resolve()


def test_cdist_type_is_hashable_and_frozen(make_type: Callable[..., Path], tmp_path: Path) -> None:
    make_type("__t", base=tmp_path, defaults={"x": "1"})
    first, second = CdistType.load(tmp_path, "__t"), CdistType.load(tmp_path, "__t")
    assert first == second
    assert len({first, second}) == 1
    with pytest.raises(AttributeError):
        first.name = "__other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.defaults["x"] = "2"  # type: ignore[index]


def test_type_registry_get_caches(make_type: Callable[..., Path], tmp_path: Path) -> None:
    make_type("__t", base=tmp_path)
    registry = TypeRegistry(tmp_path)
    assert registry.get("__t") is registry.get("__t")
    with pytest.raises(InvalidTypeError):
        registry.get("__nope")


def test_type_registry_names_lists_visible_directories(tmp_path: Path) -> None:
    for name in ("__b", "__a", ".__hidden"):
        (tmp_path / name).mkdir()
    (tmp_path / "__file_entry").write_text("")
    assert TypeRegistry(tmp_path).names() == ["__a", "__b"]
    assert TypeRegistry(tmp_path / "absent").names() == []
