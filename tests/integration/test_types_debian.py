"""Our core types on a real Debian target through `--transport openssh`.

The compatibility scenario (tests/compat/manifests: `apply`, then `change`) is applied with
cdist-trio's own conf dir to a Debian target that has a local apt repository. Per type:
present (after `apply`), change and absent (after `change`), an idempotent second run of
each phase (no code generated), and a bad parameter giving a clear error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Fleet
from harness.plugin import FleetFactory
from tests.compat.debrepo import debian_repo_image
from tests.compat.scenario import CHECKS, MANIFESTS, Run, Snapshot, run_cdist_trio, snapshot

pytestmark = pytest.mark.integration

# __cdistmarker writes the date on every run, by design (cdist-spec §19.3).
ALWAYS_CODE = {"apply": ("__cdistmarker",), "change": ()}


@dataclasses.dataclass(frozen=True)
class Phase:
    first: Run
    again: Run
    state: Snapshot


@pytest.fixture(scope="module")
def debian_target(fleet: FleetFactory) -> Iterator[Fleet]:
    """One Debian target with the local apt repository (`fleet` checks Docker answers)."""
    with Fleet(1, flavour="debian", image=debian_repo_image()) as own:
        yield own


@pytest.fixture(scope="module")
def phases(debian_target: Fleet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Phase]:
    base = tmp_path_factory.mktemp("types-debian")
    host = debian_target.hosts[0]
    done: dict[str, Phase] = {}
    for name in ("apply", "change"):
        runs = [
            run_cdist_trio(base / f"{name}-{i}", debian_target.ssh_config, host, MANIFESTS / name)
            for i in (1, 2)
        ]
        done[name] = Phase(runs[0], runs[1], snapshot(debian_target[0]))
    return done


def _ok(run: Run, what: str) -> None:
    assert run.returncode == 0, f"{what} failed:\n{run.output}"


@pytest.mark.parametrize("type_name", sorted(CHECKS))
def test_type_present(phases: dict[str, Phase], type_name: str) -> None:
    _ok(phases["apply"].first, "apply")
    CHECKS[type_name][0](phases["apply"].state)


@pytest.mark.parametrize("type_name", sorted(CHECKS))
def test_type_change_and_absent(phases: dict[str, Phase], type_name: str) -> None:
    _ok(phases["change"].first, "change")
    CHECKS[type_name][1](phases["change"].state)


@pytest.mark.parametrize("name", ["apply", "change"])
def test_types_second_run_generates_no_code(phases: dict[str, Phase], name: str) -> None:
    again = phases[name].again
    _ok(again, f"{name}, second run")
    assert again.code_objects == ALWAYS_CODE[name]
    assert again.messages == ()


# type → (a manifest line with a bad parameter, what the error must say)
BAD_PARAMETERS = {
    "__directory": (
        "__directory /opt/bad --state bogus",
        ["Error processing object '__directory/opt/bad'", "unknown state 'bogus'"],
    ),
    "__file": (
        "__file /opt/bad --source /nonexistent/source",
        ["__file /opt/bad: source '/nonexistent/source' does not exist"],
    ),
    "__link": (
        "__link /opt/bad --source /etc/hostname",
        ["__link: error: the following arguments are required: --type"],
    ),
    "__line": (
        "__line /etc/hostname --line x --state bogus",
        ["Error processing object '__line/etc/hostname'", "unknown state 'bogus'"],
    ),
    "__block": (
        "__block /etc/hostname --file /etc/hostname",
        ["__block: error: the following arguments are required: --text"],
    ),
    "__key_value": (
        "__key_value k --file /etc/hostname --delimiter =",
        ["__key_value k: --value is required with --state present"],
    ),
    "__user": ("__user bad --bogus x", ["__user: error: unrecognized arguments: --bogus x"]),
    "__group": (
        "__group bad --state bogus",
        ["Error processing object '__group/bad'", "unknown state 'bogus'"],
    ),
    "__package": (
        "__package hello --type nosuchtype",
        ["__package hello: there is no type __package_nosuchtype"],
    ),
    "__cdistmarker": (
        "__cdistmarker some-id",
        ["__cdistmarker: error: unrecognized arguments: some-id"],
    ),
    "__check_messages": (
        "__check_messages x --pattern p",
        ["__check_messages: error: the following arguments are required: --execute"],
    ),
}


@pytest.mark.parametrize("type_name", sorted(BAD_PARAMETERS))
def test_type_bad_parameter_is_a_clear_error(
    debian_target: Fleet, tmp_path: Path, type_name: str
) -> None:
    line, expected = BAD_PARAMETERS[type_name]
    manifest = tmp_path / "init"
    manifest.write_text(line + "\n")
    run = run_cdist_trio(
        tmp_path / "home", debian_target.ssh_config, debian_target.hosts[0], manifest
    )
    assert run.returncode == 1, run.output
    for fragment in expected:
        assert fragment in run.output, f"{fragment!r} not in:\n{run.output}"
