"""The emulator's command line (cdist-spec §6.2, §11.2), run in-process."""

from __future__ import annotations

import io
import random
from typing import TYPE_CHECKING

import pytest

from cdist_trio.emulator import arguments
from cdist_trio.model.cdist_type import CdistType, TypeRegistry

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


def _both(cdist_type: CdistType, argv: list[str]) -> tuple[object, object]:
    """The common-form parser's namespace, and argparse's (or its exit status)."""
    fast = arguments._parse_common(cdist_type, argv)
    parser = arguments.build_parser(cdist_type, err=io.StringIO())
    try:
        slow: object = vars(parser.parse_args(argv))
    except arguments.UsageError as error:
        slow = ("usage error", error.status)
    return fast, slow


def test_emulator_arguments_common_form_parses_as_argparse(
    site_with_types: EmulatorSite,
) -> None:
    """Whenever the common-form parser answers, argparse gives the same namespace; for
    anything else it steps aside.  Random command lines over a vocabulary of exact and
    abbreviated options, ``=`` forms, values that look like options, ``--``."""
    types = TypeRegistry(site_with_types.type_base)
    words = [
        "--name", "--tag", "--state", "--option", "--force", "--purge", "--nam", "--st",
        "--name=n", "--unknown", "--", "-", "-1", "-x", "", "x", "a b", "p", "--force=1",
        "value", "-n",
    ]  # fmt: skip
    rng = random.Random(7)
    answered = 0
    for type_name in ("__pkg", "__single"):
        cdist_type = types.get(type_name)
        for _ in range(3000):
            argv = [rng.choice(words) for _ in range(rng.randrange(0, 9))]
            fast, slow = _both(cdist_type, argv)
            if fast is not None:
                answered += 1
                assert fast == slow, argv
    assert answered > 50  # the vocabulary reaches the common form often enough


@pytest.mark.parametrize(
    ("type_name", "argv"),
    [
        ("__pkg", ["p", "--name", "n", "--tag", "t"]),
        ("__pkg", ["--name", "n", "--tag", "t", "--tag", "u", "p", "--force"]),
        ("__pkg", ["p", "--name", "", "--tag", "-", "--option", "a b", "--state", "x"]),
        ("__single", ["--value", "v"]),
        ("__single", []),
    ],
)
def test_emulator_arguments_common_form_is_taken(
    site_with_types: EmulatorSite, type_name: str, argv: list[str]
) -> None:
    """The usual type calls never build argparse's namespace (the emulator's hot path),
    and mean what argparse says they mean."""
    cdist_type = TypeRegistry(site_with_types.type_base).get(type_name)
    fast, slow = _both(cdist_type, argv)
    assert fast is not None
    assert fast == slow


@pytest.mark.parametrize(
    "argv",
    [
        ["p", "--name", "n"],  # a required multiple missing
        ["p", "q", "--name", "n", "--tag", "t"],  # two object ids
        ["--name", "n", "--tag", "t"],  # no object id
        ["p", "--name", "--tag", "t"],  # a value that is an option
        ["p", "--name", "n", "--tag", "t", "--nam", "m"],  # an abbreviation
        ["p", "--name=n", "--tag", "t"],
        ["p", "--name", "n", "--tag", "-1"],
        ["p", "--name", "n", "--tag", "t", "--"],
        ["p", "--name", "n", "--tag"],  # a value missing
    ],
)
def test_emulator_arguments_uncommon_forms_go_to_argparse(
    site_with_types: EmulatorSite, argv: list[str]
) -> None:
    cdist_type = TypeRegistry(site_with_types.type_base).get("__pkg")
    assert arguments._parse_common(cdist_type, argv) is None
