"""Defining objects through the emulator, in-process (cdist-spec §6.1, §6.3, §6.4, §6.6)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from cdist_trio.emulator import is_emulator_name
from cdist_trio.emulator.environment import REQUIRED_VARIABLES

if TYPE_CHECKING:
    from conftest import EmulatorSite


@pytest.fixture
def site_with_types(site: EmulatorSite) -> EmulatorSite:
    site.add_type("__file", optional=["mode", "content"], boolean=["force"])
    site.add_type("__line", optional_multiple=["line"], defaults={"line": "first\n"})
    site.add_type("__single", singleton=True, optional=["value"])
    site.add_type("__pkg", required=["name"])
    return site


INIT = "/conf/manifest/init"


@pytest.mark.parametrize("variable", REQUIRED_VARIABLES)
def test_emulator_missing_environment_variable(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    assert site_with_types.run("__file", "x", env={variable: None}) == 1
    out, err = capsys.readouterr()
    host = "cdist" if variable == "__target_host" else "target.example"
    assert err == (
        f"ERROR: {host}: Emulator requires the environment variable {variable} to be setup\n"
    )
    assert out == ""
    assert not site_with_types.object("__file/x").exists()


def test_emulator_unknown_type(site: EmulatorSite, capsys: pytest.CaptureFixture[str]) -> None:
    assert site.run("__nope", "x") == 1
    path = site.type_base / "__nope"
    assert capsys.readouterr().err == (
        f"ERROR: target.example: Invalid type '__nope' at '{path}' defined at '{path}'\n"
    )


def test_emulator_creates_object(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__file", "/etc/motd", "--mode", "0644", env={"__cdist_manifest": INIT}) == 0
    obj = site.object("__file/etc/motd")
    for sub in ("parameter", "explorer", "stdout", "stderr"):
        assert (obj.path / sub).is_dir()
    assert obj.parameters() == {"mode": "0644"}
    assert obj.source == [INIT]
    assert site.lines("typeorder") == ["__file/etc/motd"]
    assert obj.require == []
    assert obj.parents == []
    assert obj.children == []
    assert not (obj.path / "autorequire").exists()
    assert [p.name for p in site.object_base.iterdir()] == ["__file"]  # lock removed


def test_emulator_identical_redefinition_is_accepted(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__file", "x", "--force", "--mode", "1", env={"__cdist_manifest": "/a"}) == 0
    assert site.run("__file", "/x/", "--mo", "1", "--fo", env={"__cdist_manifest": "/b"}) == 0
    assert site.run("__line", "l") == 0
    assert site.run("__line", "l", "--line", "first") == 0
    assert site.object("__file/x").source == ["/a", "/b"]
    assert site.lines("typeorder") == ["__file/x", "__file/x", "__line/l", "__line/l"]


def test_emulator_conflicting_redefinition_fails(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_with_types
    assert site.run("__file", "x", "--mode", "1", "--force", env={"__cdist_manifest": "/a"}) == 0
    assert site.run("__file", "x", "--force", "--mode=1", env={"__cdist_manifest": "/b"}) == 0
    assert site.run("__file", "x", "--mode", "2", env={"__cdist_manifest": "/c"}) == 1
    assert capsys.readouterr().err == (
        "ERROR: target.example: Object __file/x already exists with conflicting parameters:\n"
        "/a /b: {'force': '', 'mode': '1'}\n"
        "/c: {'mode': '2'}\n"
    )
    assert site.object("__file/x").parameters() == {"force": "", "mode": "1"}


def test_emulator_multiple_values_compare_in_order(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__line", "l", "--line", "a", "--line", "b") == 0
    assert site.run("__line", "l", "--line", "b", "--line", "a") == 1
    assert site.run("__line", "l", "--line", "a", "--line", "b") == 0


def test_emulator_multiline_scalar_redefinition_conflicts(site_with_types: EmulatorSite) -> None:
    """cdist's quirk (§6.3 step 5): the file reads back as a list, so it never matches."""
    site = site_with_types
    assert site.run("__file", "x", "--content", "a\nb") == 0
    assert site.run("__file", "x", "--content", "a\nb") == 1


def test_emulator_override_replaces_whole_parameter_set(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__file", "x", "--mode", "1", "--force") == 0
    assert site.run("__line", "l", "--line", "a") == 0
    assert site.run("__file", "x", "--content", "c", env={"CDIST_OVERRIDE": ""}) == 0
    assert site.run("__line", "l", env={"CDIST_OVERRIDE": "yes"}) == 0
    assert site.object("__file/x").parameters() == {"content": "c"}
    assert site.object("__line/l").parameters() == {"line": ["first"]}
    assert site.object("__file/x").source == [site.environ()["__cdist_manifest"]] * 2


def test_emulator_require_is_normalised_and_accumulates(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__file", "a", env={"require": "  __single\t__file/etc/x/ \n __pkg/p "}) == 0
    assert site.run("__file", "a", env={"require": "__pkg/q __single/"}) == 0
    assert site.run("__file", "a", env={"require": ""}) == 0
    assert site.object("__file/a").require == [
        "__single/",
        "__file/etc/x",
        "__pkg/p",
        "__pkg/q",
        "__single/",
    ]


def test_emulator_require_accepts_missing_objects_and_literal_patterns(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__file", "a", env={"require": "__file/etc/* __pkg/never-defined"}) == 0
    assert site.object("__file/a").require == ["__file/etc/*", "__pkg/never-defined"]
    assert not site.object("__pkg/never-defined").exists()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("__nope/x", "Invalid type '__nope'"),
        ("__pkg", "Type __pkg requires object id (is not a singleton type)"),
        ("__single/x", "singleton objects can't have an object_id"),
        ("__file//etc", "object_id may not contain //"),
        ("__file/.", "object_id may not be a ."),
    ],
)
def test_emulator_require_invalid_entry_fails_before_defining(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str], entry: str, reason: str
) -> None:
    site = site_with_types
    assert site.run("__file", "a", env={"require": f"__single {entry}"}) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"ERROR: target.example: Object __file/a requires '{entry}', which is not a valid "
        "object name: "
    )
    assert reason in err
    assert err.count("\n") == 1
    assert not site.object("__file/a").exists()
    assert not (site.global_path / "typeorder").exists()


@pytest.mark.parametrize(
    ("object_id", "message"),
    [
        ("a//b", "Illegal object id: object_id may not contain //: a//b"),
        (".", "Illegal object id: object_id may not be a ."),
        ("/", "Illegal object id: object_id may not be a /"),
        ("a/.cdist-t3st_mrk", "Illegal object id: object_id may not contain '.cdist-t3st_mrk'"),
    ],
)
def test_emulator_illegal_object_id(
    site_with_types: EmulatorSite,
    capsys: pytest.CaptureFixture[str],
    object_id: str,
    message: str,
) -> None:
    assert site_with_types.run("__file", object_id) == 1
    assert capsys.readouterr().err.startswith(f"ERROR: target.example: {message}")


def test_emulator_rejects_newline_in_object_id(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert site_with_types.run("__file", "a\nb") == 1
    assert "newline or NUL: 'a\\nb'" in capsys.readouterr().err


def test_emulator_singleton_object(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__single", "--value", "v") == 0
    assert site.run("__single", "--value", "v") == 0
    obj = site.object("__single")
    assert obj.path == site.object_base / "__single" / site.marker
    assert site.lines("typeorder") == ["__single/", "__single/"]
    assert site.run("__single", "--value", "w") == 1


def test_emulator_autorequire_parents_and_children(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__pkg", "parent", "--name", "p") == 0
    in_parent = {"__object_name": "__pkg/parent", "__cdist_manifest": "/types/__pkg/manifest"}
    assert site.run("__file", "c1", env=in_parent) == 0
    assert site.run("__single", env=in_parent) == 0
    assert site.run("__file", "c1", env=in_parent) == 0  # redefinition
    parent = site.object("__pkg/parent")
    assert parent.autorequire == ["__file/c1", "__single/", "__file/c1"]
    assert parent.children == ["__file/c1", "__single/"]
    assert parent.typeorder == ["__file/c1", "__single/", "__file/c1"]
    assert site.object("__file/c1").parents == ["__pkg/parent"]
    assert site.object("__single").parents == ["__pkg/parent"]
    assert site.object("__file/c1").source == ["/types/__pkg/manifest"] * 2
    assert site.lines("typeorder") == ["__pkg/parent", "__file/c1", "__single/", "__file/c1"]


def test_emulator_autorequire_skipped_when_child_requires_parent(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__pkg", "parent", "--name", "p") == 0
    env = {"__object_name": "__pkg/parent", "require": "__pkg/parent"}
    assert site.run("__file", "c", env=env) == 0
    parent = site.object("__pkg/parent")
    assert parent.autorequire == []
    assert parent.children == ["__file/c"]
    assert site.object("__file/c").parents == ["__pkg/parent"]


def test_emulator_invalid_parent_name(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert site_with_types.run("__file", "c", env={"__object_name": "__nope/x"}) == 1
    assert "Invalid type '__nope'" in capsys.readouterr().err
    assert not site_with_types.object("__file/c").exists()


def test_emulator_stdin_captured_and_overwritten(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    big = os.urandom(200_000)
    assert site.run("__file", "x", stdin=big) == 0
    stdin_path = site.object("__file/x").stdin_path
    assert stdin_path.read_bytes() == big
    assert site.run("__file", "x", stdin=b"second\n") == 0
    assert stdin_path.read_bytes() == b"second\n"
    assert site.run("__file", "x", stdin=b"") == 0
    assert stdin_path.exists()
    assert stdin_path.read_bytes() == b""


def test_emulator_stdin_not_read_from_a_tty(site_with_types: EmulatorSite) -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "rb", buffering=0, closefd=False) as tty:
            assert site_with_types.run("__file", "x", stdin=tty) == 0
    finally:
        os.close(master)
        os.close(slave)
    assert not site_with_types.object("__file/x").stdin_path.exists()


def test_emulator_debug_log_goes_to_stdout(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_with_types
    env = {"CDIST_ORDER_DEPENDENCY": "1", "__cdist_log_level": "10"}
    assert site.run("__file", "a", env=env) == 0
    assert site.run("__file", "b", env=env) == 0
    out, err = capsys.readouterr()
    assert "DEBUG: target.example: Object __file/b: order dependency on __file/a\n" in out
    assert err == ""


def test_emulator_colored_error(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"__cdist_colored_log": "true", "__cdist_log_level": "not-a-number"}
    assert site_with_types.run("__file", "a//b", env=env) == 1
    assert capsys.readouterr().err.startswith("\033[0;31mERROR: target.example: Illegal")


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [("__file", True), ("/g/bin/__file", True), ("cdist", False), ("/x/__a/cdist", False)],
)
def test_emulator_is_emulator_name(argv0: str, expected: bool) -> None:
    assert is_emulator_name(argv0) is expected
