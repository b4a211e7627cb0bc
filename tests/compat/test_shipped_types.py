"""cdist 7.0.0's shipped types and global explorers, run unchanged by cdist-trio, and parity.

Each phase (`apply`, then `change`) is applied by cdist-trio (`-c <cdist's conf dir>`,
`--transport openssh`) to target-1 twice, and by cdist 7.0.0 itself to target-2, at the
same time. Then: the types did what they must (scenario.CHECKS), the second cdist-trio
run generated no code, and both targets hold the same files, modes, owners, users,
groups and packages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import Fleet

from .scenario import (
    CHECKS,
    MANIFESTS,
    SHIPPED_EXPLORERS,
    Run,
    Snapshot,
    diff,
    run_cdist_trio,
    snapshot,
    ssh_wrappers,
    start_cdist,
)

pytestmark = pytest.mark.integration

PHASES = ("apply", "change")
# __cdistmarker writes the date on every run, by design (cdist-spec §19.3).
ALWAYS_CODE = {"apply": ("__cdistmarker",), "change": ()}


@dataclasses.dataclass(frozen=True)
class Phase:
    trio: Run
    trio_again: Run
    cdist: Run
    trio_state: Snapshot
    cdist_state: Snapshot


@pytest.fixture(scope="module")
def phases(
    cdist_conf: Path,
    cdist_program: Path,
    debian_pair: Fleet,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Phase]:
    base = tmp_path_factory.mktemp("compat")
    ours, theirs = debian_pair[0], debian_pair[1]
    wrappers = ssh_wrappers(base / "bin", debian_pair.ssh_config)
    done: dict[str, Phase] = {}
    for name in PHASES:
        manifest = MANIFESTS / name
        wait_cdist = start_cdist(
            cdist_program, base / f"cdist-{name}", wrappers, theirs.name, manifest
        )
        try:
            trio = run_cdist_trio(
                base / f"trio-{name}", debian_pair.ssh_config, ours.name, manifest, [cdist_conf]
            )
            again = run_cdist_trio(
                base / f"trio-{name}-again",
                debian_pair.ssh_config,
                ours.name,
                manifest,
                [cdist_conf],
            )
        finally:
            cdist = wait_cdist()
        done[name] = Phase(trio, again, cdist, snapshot(ours), snapshot(theirs))
        print(
            f"\ncompat {name}: cdist-trio {trio.seconds:.1f} s, again {again.seconds:.1f} s;"
            f" cdist 7.0.0 {cdist.seconds:.1f} s"
        )
    return done


def _ok(run: Run, what: str) -> None:
    assert run.returncode == 0, f"{what} failed:\n{run.output}"


def test_shipped_global_explorers_run(phases: dict[str, Phase]) -> None:
    phase = phases["apply"]
    _ok(phase.trio, "cdist-trio")
    _ok(phase.cdist, "cdist 7.0.0")
    assert phase.trio.cache is not None
    assert phase.cdist.cache is not None
    ours = sorted(p.name for p in (phase.trio.cache / "explorer").iterdir())
    assert ours == sorted(SHIPPED_EXPLORERS)
    assert phase.trio.explorer("os") == "debian\n"
    assert phase.trio.explorer("os_version").startswith("12")
    assert phase.trio.explorer("init").strip()
    # Same outputs as cdist's on an identical target (their host names differ).
    for name in SHIPPED_EXPLORERS:
        if name != "hostname":
            assert phase.trio.explorer(name) == phase.cdist.explorer(name), name
    assert phase.trio.explorer("hostname") == "target-1\n"


@pytest.mark.parametrize("type_name", sorted(CHECKS))
def test_shipped_type_applied(phases: dict[str, Phase], type_name: str) -> None:
    _ok(phases["apply"].trio, "cdist-trio apply")
    CHECKS[type_name][0](phases["apply"].trio_state)


@pytest.mark.parametrize("type_name", sorted(CHECKS))
def test_shipped_type_changed(phases: dict[str, Phase], type_name: str) -> None:
    _ok(phases["change"].trio, "cdist-trio change")
    CHECKS[type_name][1](phases["change"].trio_state)


@pytest.mark.parametrize("name", PHASES)
def test_shipped_types_second_run_generates_no_code(phases: dict[str, Phase], name: str) -> None:
    again = phases[name].trio_again
    _ok(again, f"cdist-trio {name}, second run")
    assert again.code_objects == ALWAYS_CODE[name]
    assert again.messages == ()


@pytest.mark.parametrize("name", PHASES)
def test_parity_with_cdist_target_state(phases: dict[str, Phase], name: str) -> None:
    phase = phases[name]
    _ok(phase.trio, f"cdist-trio {name}")
    _ok(phase.cdist, f"cdist 7.0.0 {name}")
    # The cdist run's own checks hold too: the scenario describes cdist's behaviour.
    for applied, changed in CHECKS.values():
        (applied if name == "apply" else changed)(phase.cdist_state)
    problems = diff(phase.trio_state, phase.cdist_state)
    assert not problems, "cdist-trio's target != cdist's:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", PHASES)
def test_parity_with_cdist_messages(phases: dict[str, Phase], name: str) -> None:
    phase = phases[name]
    _ok(phase.trio, f"cdist-trio {name}")
    _ok(phase.cdist, f"cdist 7.0.0 {name}")
    assert sorted(phase.trio.messages) == sorted(phase.cdist.messages)
    assert phase.trio.code_objects == phase.cdist.code_objects
