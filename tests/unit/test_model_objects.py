"""`CdistObject` files and their encodings, and `ObjectStore` naming and listing."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cdist_trio.errors import IllegalObjectIdError, InvalidTypeError, MissingObjectIdError
from cdist_trio.model import CdistObject, CdistType, ObjectStore, State, TypeRegistry
from cdist_trio.model.objects import DONE, PREPARED

MARKER = ".cdist-m0del_ok"


@pytest.fixture
def types(type_base: Path, make_type: Callable[..., Path]) -> TypeRegistry:
    make_type(
        "__file",
        required=["owner"],
        optional=["mode", "content"],
        optional_multiple=["line"],
        required_multiple=["tag"],
        boolean=["force"],
    )
    make_type("__single", singleton=True)
    return TypeRegistry(type_base)


@pytest.fixture
def store(tmp_path: Path, types: TypeRegistry) -> ObjectStore:
    return ObjectStore(tmp_path / "object", MARKER, types)


def _file_type(types: TypeRegistry) -> CdistType:
    return types.get("__file")


def test_cdist_object_paths(store: ObjectStore, tmp_path: Path) -> None:
    obj = store.object("__file", "/etc/motd")
    assert obj.object_id == "etc/motd"
    assert obj.name == "__file/etc/motd"
    assert obj.relative_path == f"__file/etc/motd/{MARKER}"
    assert obj.path == tmp_path / "object" / "__file" / "etc" / "motd" / MARKER
    assert obj.parameter_path == obj.path / "parameter"
    assert obj.explorer_path == obj.path / "explorer"
    assert obj.files_path == obj.path / "files"
    assert obj.stdout_path == obj.path / "stdout"
    assert obj.stderr_path == obj.path / "stderr"
    assert obj.stdin_path == obj.path / "stdin"
    assert obj.typeorder_path == obj.path / "typeorder"


def test_cdist_object_singleton_name_has_trailing_slash(store: ObjectStore, tmp_path: Path) -> None:
    obj = store.object("__single", "")
    assert obj.name == "__single/"
    assert obj.relative_path == f"__single/{MARKER}"
    assert obj.path == tmp_path / "object" / "__single" / MARKER


def test_cdist_object_create_makes_directories(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    assert not obj.exists()
    obj.create()
    assert obj.exists()
    for sub in ("parameter", "explorer", "stdout", "stderr"):
        assert (obj.path / sub).is_dir()
    obj.create()  # idempotent


def test_cdist_object_create_leaves_files_dir_to_the_type(store: ObjectStore) -> None:
    # cdist 7.0.0's __file and __block run `mkdir "$__object/files"` under sh -e.
    obj = store.object("__file", "x")
    obj.create()
    assert not obj.files_path.exists()


def test_cdist_object_write_parameters_encoding(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    obj.write_parameters(
        {"owner": "root", "mode": "0644\n", "force": "", "line": ["a", "b"], "tag": ["one"]}
    )
    files = {p.name: p.read_text() for p in obj.parameter_path.iterdir()}
    assert files == {
        "owner": "root\n",
        "mode": "0644\n",
        "force": "",
        "line": "a\nb\n",
        "tag": "one\n",
    }


def test_cdist_object_parameters_round_trip(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    params: dict[str, str | list[str]] = {
        "owner": "root",
        "force": "",
        "line": ["only"],
        "tag": ["a", "", "c"],
        "content": "",
    }
    obj.write_parameters(params)
    assert obj.parameters() == params


def test_cdist_object_parameters_boolean_reads_as_empty(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    (obj.parameter_path / "force").write_text("surprise\n")
    assert obj.parameters() == {"force": ""}


def test_cdist_object_parameters_multiline_scalar_reads_as_list(store: ObjectStore) -> None:
    """cdist's quirk, kept: a scalar holding a newline comes back as a list."""
    obj = store.object("__file", "x")
    obj.create()
    obj.write_parameters({"content": "line one\nline two"})
    assert (obj.parameter_path / "content").read_text() == "line one\nline two\n"
    assert obj.parameters() == {"content": ["line one", "line two"]}


def test_cdist_object_parameters_ignore_hidden_files(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    (obj.parameter_path / ".owner.swp").write_text("junk")
    obj.write_parameters({"owner": "me"})
    assert obj.parameters() == {"owner": "me"}


def test_cdist_object_write_parameters_replaces_whole_set(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    obj.write_parameters({"owner": "root", "mode": "0600", "force": ""})
    obj.write_parameters({"owner": "nobody"})
    assert obj.parameters() == {"owner": "nobody"}
    assert sorted(p.name for p in obj.parameter_path.iterdir()) == ["owner"]


def test_cdist_object_relation_files_append(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    assert obj.require == obj.autorequire == obj.source == obj.typeorder == []
    obj.add_require(["__file/a", "__single/"])
    obj.add_require(["__file/a"])
    obj.add_require([])
    obj.add_autorequire(["__file/b"])
    obj.add_source("/m/init")
    obj.add_source("/m/init")
    obj.add_typeorder("__file/c")
    assert obj.require == ["__file/a", "__single/", "__file/a"]
    assert (obj.path / "require").read_text() == "__file/a\n__single/\n__file/a\n"
    assert obj.autorequire == ["__file/b"]
    assert obj.source == ["/m/init", "/m/init"]
    assert obj.typeorder == ["__file/c"]


def test_cdist_object_parents_and_children_recorded_once(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    for _ in range(3):
        obj.add_parent("__single/")
        obj.add_child("__file/y")
    obj.add_child("__file/z")
    assert obj.parents == ["__single/"]
    assert obj.children == ["__file/y", "__file/z"]


def test_cdist_object_state_values(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    assert obj.state == State.UNDEFINED == ""
    obj.state = PREPARED
    assert obj.state == "prepared"
    assert (obj.path / "state").read_text() == "prepared\n"
    obj.state = DONE
    assert obj.state == State.DONE
    obj.state = ""
    assert not (obj.path / "state").exists()
    with pytest.raises(ValueError, match="running"):
        obj.state = "running"


def test_cdist_object_write_code_rules(store: ObjectStore) -> None:
    obj = store.object("__file", "x")
    obj.create()
    obj.write_code("code-remote", "touch /x")
    path = obj.path / "code-remote"
    assert path.read_text() == "touch /x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert obj.code_remote == "touch /x"
    obj.write_code("remote", "")
    assert not path.exists()
    assert obj.code_remote == ""
    obj.write_code("local", "echo hi\n\n\n")
    assert (obj.path / "code-local").read_text() == "echo hi\n\n\n"
    assert obj.code_local == "echo hi"
    obj.write_code("code-local", "\n\n")
    assert obj.code_local == ""
    with pytest.raises(ValueError, match="code kind"):
        obj.write_code("code-elsewhere", "x")


def test_cdist_object_equality_by_path(store: ObjectStore, types: TypeRegistry) -> None:
    first = store.object("__file", "/etc/x")
    second = CdistObject(_file_type(types), "etc/x", store.object_base, MARKER)
    assert first == second
    assert len({first, second}) == 1
    assert repr(first) == "<CdistObject __file/etc/x>"


def test_object_store_object_validates_ids(store: ObjectStore) -> None:
    with pytest.raises(IllegalObjectIdError):
        store.object("__file", "a//b")
    with pytest.raises(MissingObjectIdError):
        store.object("__file", "")
    with pytest.raises(IllegalObjectIdError):
        store.object("__single", "x")
    with pytest.raises(InvalidTypeError):
        store.object("__nope", "x")


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("__single", "__single/"),
        ("__single/", "__single/"),
        ("__file/etc/x", "__file/etc/x"),
        ("__file/etc/x/", "__file/etc/x"),
        ("__file/etc/*", "__file/etc/*"),
    ],
)
def test_object_store_from_name_normalises(store: ObjectStore, name: str, normalised: str) -> None:
    assert store.from_name(name).name == normalised


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("__file//etc/x", IllegalObjectIdError),
        ("__file", MissingObjectIdError),
        ("__file/", MissingObjectIdError),
        ("__single/x", IllegalObjectIdError),
        ("__nope/x", InvalidTypeError),
        (f"__file/a/{MARKER}", IllegalObjectIdError),
    ],
)
def test_object_store_from_name_rejects(
    store: ObjectStore, name: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.from_name(name)


def test_object_store_list_objects_finds_marker_dirs(store: ObjectStore) -> None:
    for name in ("__file/etc/ssh/sshd_config", "__file/etc", "__file/.hidden/x", "__single"):
        store.from_name(name).create()
    # intermediate dirs, another run's marker, a lock file: none is an object
    (store.object_base / "__file" / "var" / "lib").mkdir(parents=True)
    (store.object_base / "__file" / "old" / ".cdist-otherrun").mkdir(parents=True)
    (store.object_base / ".__filex_.cdist-m0del_ok.lock").write_text("")
    names = [obj.name for obj in store.list_objects()]
    assert names == [
        "__file/.hidden/x",
        "__file/etc",
        "__file/etc/ssh/sshd_config",
        "__single/",
    ]
    listed = store.list_objects()[2]
    assert listed == store.from_name("__file/etc/ssh/sshd_config")
    assert listed.cdist_type is store.types.get("__file")


def test_object_store_list_objects_empty(tmp_path: Path, types: TypeRegistry) -> None:
    assert ObjectStore(tmp_path / "missing", MARKER, types).list_objects() == []
