"""Scenarios of spec §20 about what the emulator records, seen through a whole run:
defaults, boolean encoding, identical vs conflicting redefinition, CDIST_OVERRIDE and
stdin capture (spec §6.2, §6.3, §11.3), plus ``-i -``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.scenario_support import Scenario, q


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def test_params_defaults_apply_when_not_given(scenario: Scenario) -> None:
    cache = scenario.config("__params p --name n --member m1 --member m2\n").ok().cache()
    assert cache.parameters("__params/p") == {
        "blank": "",  # an empty default file gives an existing empty parameter
        "item": "one\ntwo\n",  # optional_multiple default: one value per line
        "member": "m1\nm2\n",
        "name": "n\n",
        "size": "medium\n",  # optional default, whitespace stripped
    }


def test_params_given_values_replace_defaults_and_booleans_are_empty_files(
    scenario: Scenario,
) -> None:
    cache = (
        scenario.config(
            "__params p --name n --member m --colour red --size large"
            " --tag a --tag b --item x --verbose --no-cache\n"
        )
        .ok()
        .cache()
    )
    assert cache.parameters("__params/p") == {
        "blank": "",
        "colour": "red\n",
        "item": "x\n",
        "member": "m\n",
        "name": "n\n",
        "no-cache": "",
        "size": "large\n",
        "tag": "a\nb\n",
        "verbose": "",
    }


def test_params_redefinition_identical_is_accepted(scenario: Scenario) -> None:
    # The second definition spells out the default: the parameter sets are equal.
    manifest = scenario.manifest(
        """
__params p --name n --member m --verbose
__params p --name n --member m --verbose --size medium
"""
    )
    cache = scenario.config(manifest).ok().cache()
    assert cache.lines("__params/p", "source") == [str(manifest), str(manifest)]
    assert cache.global_lines("typeorder") == ["__params/p", "__params/p"]
    assert cache.read("__params/p", "state") == "done\n"


def test_params_redefinition_conflicting_fails(scenario: Scenario) -> None:
    outcome = scenario.config(
        """
__params p --name n --member m
__params p --name other --member m
__step after
"""
    )
    assert outcome.status == 1
    assert "Object __params/p already exists with conflicting parameters:" in outcome.stderr
    assert "'name': 'n'" in outcome.stderr
    assert "'name': 'other'" in outcome.stderr
    assert "Error processing initial manifest" in outcome.stderr
    assert "ERROR: cdist: Failed to configure the following hosts: localhost" in outcome.stderr
    assert not outcome.has_cache()
    # The manifest stopped at the failing line (sh -e).
    assert (scenario.workdir() / "object" / "__params").is_dir()
    assert not (scenario.workdir() / "object" / "__step").exists()


def test_params_override_replaces_the_whole_parameter_set(scenario: Scenario) -> None:
    cache = (
        scenario.config(
            """
__params p --name n --member m --colour red --tag t --verbose
CDIST_OVERRIDE=yes __params p --name changed --member m2
"""
        )
        .ok()
        .cache()
    )
    # Not re-specified parameters are gone; defaults are applied again (spec §6.3 step 6).
    assert cache.parameters("__params/p") == {
        "blank": "",
        "item": "one\ntwo\n",
        "member": "m2\n",
        "name": "changed\n",
        "size": "medium\n",
    }


def test_stdin_is_captured_per_object(scenario: Scenario) -> None:
    cache = (
        scenario.config(
            """
printf 'first\\n' | __stdin piped
printf 'line one\\nline two\\n' | __stdin piped
__stdin quiet
"""
        )
        .ok()
        .cache()
    )
    # Overwritten by every definition; created empty when stdin is not a terminal.
    assert cache.read("__stdin/piped", "stdin") == "line one\nline two\n"
    assert cache.read("__stdin/quiet", "stdin") == ""


def test_initial_manifest_from_stdin(scenario: Scenario) -> None:
    outcome = scenario.config_process(
        "-", "-v", stdin=f"__step from-stdin --log {q(scenario.log)}\n".encode()
    ).ok()
    cache = outcome.cache()
    assert cache.object_names() == ["__step/from-stdin"]
    source = cache.lines("__step/from-stdin", "source")
    assert len(source) == 1
    assert Path(source[0]).name.startswith("cdist.stdin.")
    assert not Path(source[0]).exists()  # the temp copy is removed at exit
    assert scenario.log_lines() == ["local __step/from-stdin", "remote __step/from-stdin"]
    assert "INFO: localhost: Finished successful run in" in outcome.stdout


def test_initial_manifest_from_a_pipe_for_several_hosts(scenario: Scenario) -> None:
    # `-i <(generate)` or `-i /dev/stdin`: a pipe can be read once, and every host reads
    # the initial manifest; it used to fail each host with "Initial manifest missing".
    outcome = scenario.config_process(
        Path("/dev/stdin"),
        stdin=f"__step piped --log {q(scenario.log)}-$__target_host\n".encode(),
        hosts=("h1", "h2"),
    ).ok()
    for host in ("h1", "h2"):
        log = Path(f"{scenario.log}-{host}")
        assert log.read_text().splitlines() == ["local __step/piped", "remote __step/piped"]
    assert "Initial manifest missing" not in outcome.stdout + outcome.stderr
    # standard input cannot be both the manifest and the hosts file
    both = scenario.config_process(Path("/dev/stdin"), "-f", "-", stdin=b"h3\n")
    assert both.status == 1
    assert "Cannot read both, manifest and host file, from stdin" in both.stderr


@pytest.mark.parametrize(
    ("object_id", "message"),
    [
        ("//x", "Illegal object id: object_id may not contain //: //x"),
        (".", "Illegal object id: object_id may not be a ."),
    ],
)
def test_illegal_object_id_fails_the_manifest(
    scenario: Scenario, object_id: str, message: str
) -> None:
    outcome = scenario.config(f"__step {q(object_id)}\n")
    assert outcome.status == 1
    assert message in outcome.stderr
    assert "Error processing initial manifest" in outcome.stderr


def test_object_id_slashes_are_stripped(scenario: Scenario) -> None:
    cache = scenario.config("__step /etc/x/\n").ok().cache()
    assert cache.object_names() == ["__step/etc/x"]


def test_deprecated_type_and_parameters_warn(scenario: Scenario) -> None:
    outcome = scenario.config("__old o --colour red --size 1\n").ok()
    lines = outcome.stdout.splitlines()
    assert "WARNING: localhost: Type __old is deprecated: use __step instead" in lines
    assert (
        "WARNING: localhost: colour parameter of type __old is deprecated: colour is going away"
        in lines
    )
    assert "WARNING: localhost: size parameter of type __old is deprecated." in lines


def test_params_argument_forms(scenario: Scenario) -> None:
    # Unique-prefix abbreviations, --opt=value (also for dash-leading values) and the
    # object id after the options, as argparse accepts them in cdist (spec §6.2).
    cache = scenario.config("__params --na n --member=m --colour=-dark p --verb\n").ok().cache()
    parameters = cache.parameters("__params/p")
    assert parameters["name"] == "n\n"
    assert parameters["member"] == "m\n"
    assert parameters["colour"] == "-dark\n"
    assert parameters["verbose"] == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("p --name n --member m --bogus x", "__params: error: unrecognized arguments: --bogus x"),
        ("p --member m", "__params: error: the following arguments are required: --name"),
        ("p --name n --member m --verbose yes", "unrecognized arguments: yes"),
    ],
)
def test_params_argument_errors_fail_the_manifest(
    scenario: Scenario, arguments: str, message: str
) -> None:
    outcome = scenario.config(f"__params {arguments}\n")
    assert outcome.status == 1
    report = outcome.stderr[outcome.stderr.index("Error processing initial manifest") :]
    assert message in report
    assert "usage: __params" in report
