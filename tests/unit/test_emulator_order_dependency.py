"""CDIST_ORDER_DEPENDENCY contexts (cdist-spec §6.5), run in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cdist_trio.emulator.define import injected_requirement

if TYPE_CHECKING:
    from conftest import EmulatorSite

ON = {"CDIST_ORDER_DEPENDENCY": "on"}


@pytest.fixture
def site_with_types(site: EmulatorSite) -> EmulatorSite:
    site.add_type("__a", optional=["value"])
    site.add_type("__parent")
    return site


def _requirements(site: EmulatorSite, ids: str) -> dict[str, list[str]]:
    return {
        f"__a/{object_id}": site.object(f"__a/{object_id}").require
        for object_id in ids
        if site.object(f"__a/{object_id}").require
    }


def test_emulator_order_dependency_context_table(site_with_types: EmulatorSite) -> None:
    """A; set; B C D; unset; E F; set; G H; unset; I  ⇒  C→B, D→C, H→G and nothing else."""
    site = site_with_types
    script = [("A", False), ("B", True), ("C", True), ("D", True), ("E", False), ("F", False)]
    script += [("G", True), ("H", True), ("I", False)]
    for object_id, enabled in script:
        assert site.run("__a", object_id, env=ON if enabled else None) == 0
    assert _requirements(site, "ABCDEFGHI") == {
        "__a/C": ["__a/B"],
        "__a/D": ["__a/C"],
        "__a/H": ["__a/G"],
    }
    assert not (site.global_path / "order_dep_state").exists()
    assert not (site.global_path / "typeorder_dep").exists()


def test_emulator_order_dependency_state_files(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__a", "x", env=ON) == 0
    assert (site.global_path / "order_dep_state").exists()
    assert site.lines("typeorder_dep") == ["__a/x"]
    assert site.run("__a", "y", env=ON) == 0
    assert site.lines("typeorder_dep") == ["__a/x", "__a/y"]
    assert site.run("__a", "z") == 0
    assert not (site.global_path / "order_dep_state").exists()
    assert not (site.global_path / "typeorder_dep").exists()


def test_emulator_order_dependency_adds_to_explicit_require(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__a", "x", env=ON) == 0
    assert site.run("__a", "y", env={**ON, "require": "__parent/p"}) == 0
    assert site.object("__a/y").require == ["__parent/p", "__a/x"]


def test_emulator_order_dependency_skips_substring_of_require(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__a", "x", env=ON) == 0
    assert site.run("__a", "y", env={**ON, "require": "__a/x"}) == 0
    assert site.object("__a/y").require == ["__a/x"]
    # cdist's check is a substring test: "__a/y" occurs inside "__a/yz"
    assert site.run("__a", "w", env={**ON, "require": "__a/yz"}) == 0
    assert site.object("__a/w").require == ["__a/yz"]


def test_emulator_order_dependency_not_injected_with_override(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__a", "x", env=ON) == 0
    assert site.run("__a", "y", env={**ON, "CDIST_OVERRIDE": ""}) == 0
    assert site.object("__a/y").require == []
    assert site.lines("typeorder_dep") == ["__a/x", "__a/y"]


def test_emulator_order_dependency_redefinition_requires_previous(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    for object_id in ("x", "y", "x"):
        assert site.run("__a", object_id, env=ON) == 0
    assert site.object("__a/x").require == ["__a/y"]
    assert site.object("__a/y").require == ["__a/x"]


def test_emulator_order_dependency_in_type_manifest_uses_parent_list(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__parent", "p") == 0
    in_parent = {**ON, "__object_name": "__parent/p"}
    assert site.run("__a", "c1", env=in_parent) == 0
    assert site.run("__a", "c2", env=in_parent) == 0
    parent = site.object("__parent/p")
    assert parent.typeorder_dep_path.read_text() == "__a/c1\n__a/c2\n"
    assert not (site.global_path / "typeorder_dep").exists()
    assert site.object("__a/c2").require == ["__a/c1"]
    # c2 requires c1, not the parent: both are autorequired by the parent
    assert parent.autorequire == ["__a/c1", "__a/c2"]


@pytest.mark.parametrize(
    ("context", "require", "expected"),
    [
        ([], "", None),
        (["__a/x"], "", None),
        (["__a/x", "__a/y"], "", "__a/x"),
        (["__a/w", "__a/x", "__a/y"], "", "__a/x"),
        (["__a/x", "__a/y"], "__b/1 __a/x", None),
        (["__a/x", "__a/y"], "__a/xyz", None),
    ],
)
def test_emulator_injected_requirement_rule(
    context: list[str], require: str, expected: str | None
) -> None:
    assert injected_requirement(context, require) == expected
