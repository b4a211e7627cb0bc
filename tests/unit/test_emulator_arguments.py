"""The emulator's command line (cdist-spec §6.2, §11.2), run in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import EmulatorSite


@pytest.fixture
def site_with_types(site: EmulatorSite) -> EmulatorSite:
    site.add_type(
        "__pkg",
        required=["name"],
        required_multiple=["tag"],
        optional=["state", "version", "empty", "nodefault"],
        optional_multiple=["option", "extra", "blank"],
        boolean=["force", "purge"],
        defaults={
            "state": "  present\n\n",
            "empty": "",
            "option": "a\nb\n",
            "extra": "x",
            "blank": "",
        },
    )
    site.add_type("__single", singleton=True, optional=["value"])
    return site


def _params(site: EmulatorSite, name: str) -> dict[str, str | list[str]]:
    return site.object(name).parameters()


def test_emulator_arguments_defaults_and_absent_optionals(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__pkg", "p", "--name", "n", "--tag", "t") == 0
    assert _params(site, "__pkg/p") == {
        "name": "n",
        "tag": ["t"],
        "state": "present",
        "empty": "",
        "option": ["a", "b"],
        "extra": ["x"],
        "blank": [""],
    }
    parameter = site.object("__pkg/p").parameter_path
    assert (parameter / "state").read_text() == "present\n"
    assert (parameter / "empty").read_text() == ""
    assert not (parameter / "nodefault").exists()
    assert not (parameter / "force").exists()


def test_emulator_arguments_last_single_value_wins(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    args = ("p", "--name", "one", "--name", "two", "--tag", "t", "--state", "a", "--state", "b")
    assert site.run("__pkg", *args) == 0
    params = _params(site, "__pkg/p")
    assert params["name"] == "two"
    assert params["state"] == "b"


def test_emulator_arguments_multiple_values_replace_default(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    args = ("p", "--name", "n", "--tag", "t1", "--tag", "t2", "--option", "c", "--option", "a")
    assert site.run("__pkg", *args) == 0
    params = _params(site, "__pkg/p")
    assert params["tag"] == ["t1", "t2"]
    assert params["option"] == ["c", "a"]


def test_emulator_arguments_boolean_is_empty_value(site_with_types: EmulatorSite) -> None:
    site = site_with_types
    assert site.run("__pkg", "p", "--name", "n", "--tag", "t", "--force") == 0
    params = _params(site, "__pkg/p")
    assert params["force"] == ""
    assert "purge" not in params
    assert (site.object("__pkg/p").parameter_path / "force").read_text() == ""


def test_emulator_arguments_prefix_abbreviation_and_equals_form(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__pkg", "--na=n", "--ta", "t", "--fo", "--ver=-1.0", "p") == 0
    params = _params(site, "__pkg/p")
    assert (params["name"], params["tag"], params["force"]) == ("n", ["t"], "")
    assert params["version"] == "-1.0"


def test_emulator_arguments_options_and_object_id_in_any_order(
    site_with_types: EmulatorSite,
) -> None:
    site = site_with_types
    assert site.run("__pkg", "--tag", "t", "/opt/p", "--name", "n") == 0
    assert site.object("__pkg/opt/p").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["p", "--tag", "t"], "the following arguments are required: --name"),
        (["p"], "the following arguments are required: --name, --tag"),
        (["--name", "n", "--tag", "t"], "the following arguments are required: object_id"),
        (["p", "--name", "n", "--tag", "t", "--bogus", "x"], "unrecognized arguments: --bogus x"),
        (["p", "--name", "n", "--tag", "t", "--force", "yes"], "unrecognized arguments: yes"),
        (["p", "--name", "-n", "--tag", "t"], "argument --name: expected one argument"),
        (["p", "q", "--name", "n", "--tag", "t"], "unrecognized arguments: q"),
        (["p", "--name", "n", "--tag", "t", "--e", "x"], "ambiguous option: --e could match"),
        (["p", "--name", "n", "--tag", "t", "-h"], "unrecognized arguments: -h"),
    ],
)
def test_emulator_arguments_errors_in_argparse_form(
    site_with_types: EmulatorSite,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    error: str,
) -> None:
    assert site_with_types.run("__pkg", *args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    usage, message = err.rstrip("\n").split("\n")[0], err.rstrip("\n").split("\n")[-1]
    assert usage.startswith("usage: __pkg ")
    assert message.startswith(f"__pkg: error: {error}")
    assert not site_with_types.object_base.joinpath("__pkg").exists()


def test_emulator_arguments_usage_line(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site_with_types.add_type("__small", required=["name"], boolean=["flag"])
    assert site_with_types.run("__small") == 2
    assert capsys.readouterr().err == (
        "usage: __small --name NAME [--flag] object_id\n"
        "__small: error: the following arguments are required: --name, object_id\n"
    )


def test_emulator_arguments_singleton_takes_no_object_id(
    site_with_types: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_with_types
    assert site.run("__single", "x") == 2
    assert capsys.readouterr().err.endswith("__single: error: unrecognized arguments: x\n")
    assert site.run("__single", "--value", "v") == 0
    assert _params(site, "__single") == {"value": "v"}


def test_emulator_arguments_duplicate_parameter_definition_is_user_error(
    site: EmulatorSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.add_type("__dup", optional=["x"], boolean=["x"])
    assert site.run("__dup", "a") == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: target.example: Invalid parameter definition of type __dup:")
