"""Scenarios of spec §20 about ordering: require, CDIST_ORDER_DEPENDENCY, autorequire,
cycles, unresolvable and invalid requirements, -j and nonparallel (spec §5.7–§5.10, §6.4–
§6.6, §16).  Every object of type ``__step`` appends ``local <name>`` (code-local) and
``remote <name>`` (code-remote) to a shared log, so the log is the order code ran in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.scenario_support import CONF, Cache, Scenario, q


@pytest.fixture
def scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Scenario:
    return Scenario(tmp_path, monkeypatch, capfd)


def local_order(lines: list[str]) -> list[str]:
    """Object names in the order their code-local ran."""
    return [line.removeprefix("local ") for line in lines if line.startswith("local ")]


def before(lines: list[str], first: str, second: str) -> bool:
    order = local_order(lines)
    return order.index(first) < order.index(second)


def test_order_dependency_context_table(scenario: Scenario) -> None:
    # A; set; B C D; unset; E F; set; G H; unset; I  =>  C->B, D->C, H->G, nothing else.
    log = q(scenario.log)
    outcome = scenario.config(
        f"""
__step a --log {log}
export CDIST_ORDER_DEPENDENCY=on
__step b --log {log}
__step c --log {log}
__step d --log {log}
unset CDIST_ORDER_DEPENDENCY
__step e --log {log}
__step f --log {log}
export CDIST_ORDER_DEPENDENCY=on
__step g --log {log}
__step h --log {log}
unset CDIST_ORDER_DEPENDENCY
__step i --log {log}
"""
    ).ok()
    cache = outcome.cache()
    requires = {name: cache.lines(name, "require") for name in cache.object_names()}
    assert requires == {
        "__step/a": [],
        "__step/b": [],
        "__step/c": ["__step/b"],
        "__step/d": ["__step/c"],
        "__step/e": [],
        "__step/f": [],
        "__step/g": [],
        "__step/h": ["__step/g"],
        "__step/i": [],
    }
    lines = scenario.log_lines()
    assert before(lines, "__step/b", "__step/c")
    assert before(lines, "__step/c", "__step/d")
    assert before(lines, "__step/g", "__step/h")
    # The context files are transient (spec §5.2, §5.12).
    assert not (cache.path / "order_dep_state").exists()
    assert not (cache.path / "typeorder_dep").exists()


def test_order_dependency_in_type_manifest_and_autorequire(scenario: Scenario) -> None:
    outcome = scenario.config(f"__chain x --log {q(scenario.log)}\n").ok()
    cache = outcome.cache()
    children = ["__step/x/first", "__step/x/second", "__step/x/third", "__step/x/free"]
    assert cache.object_names() == sorted(["__chain/x", *children])
    assert cache.lines("__step/x/first", "require") == []
    assert cache.lines("__step/x/second", "require") == ["__step/x/first"]
    assert cache.lines("__step/x/third", "require") == ["__step/x/second"]
    assert cache.lines("__step/x/free", "require") == []
    # The parent autorequires its children and runs after them (spec §5.7, §6.6).
    assert cache.lines("__chain/x", "autorequire") == children
    assert cache.lines("__chain/x", "children") == children
    assert cache.lines("__chain/x", "typeorder") == children
    for child in children:
        assert cache.lines(child, "parents") == ["__chain/x"]
    assert not (cache.object("__chain/x") / "typeorder_dep").exists()
    order = local_order(scenario.log_lines())
    assert order[-1] == "__chain/x"
    assert order.index("__step/x/first") < order.index("__step/x/second")
    assert order.index("__step/x/second") < order.index("__step/x/third")


def test_require_union_on_redefinition(scenario: Scenario) -> None:
    log = q(scenario.log)
    manifest = scenario.manifest(
        f"""
require="__step/z1" __step a --log {log}
require="__step/z2" __step a --log {log}
__step z1 --log {log}
__step z2 --log {log}
"""
    )
    cache = scenario.config(manifest).ok().cache()
    assert cache.lines("__step/a", "require") == ["__step/z1", "__step/z2"]
    assert cache.lines("__step/a", "source") == [str(manifest), str(manifest)]
    # Without its requirements "a" would come first: it is defined first and sorts first.
    assert local_order(scenario.log_lines())[-1] == "__step/a"


def test_require_singleton_without_id(scenario: Scenario) -> None:
    log = q(scenario.log)
    outcome = scenario.config(
        f"""
require="__single" __step a --log {log}
__single --log {log}
"""
    ).ok()
    cache = outcome.cache()
    assert cache.object_names() == ["__single/", "__step/a"]
    assert cache.lines("__step/a", "require") == ["__single/"]
    assert (cache.path / "object" / "__single" / cache.marker).is_dir()
    assert local_order(scenario.log_lines()) == ["__single/", "__step/a"]
    assert "__single/" in cache.global_lines("typeorder")


def test_require_non_singleton_without_id_fails(scenario: Scenario) -> None:
    outcome = scenario.config('require="__step" __step a\n')
    assert outcome.status == 1
    assert "Type __step requires object id (is not a singleton type)" in outcome.stderr
    assert "Error processing initial manifest" in outcome.stderr
    assert not outcome.has_cache()


def test_require_unknown_type_fails(scenario: Scenario) -> None:
    outcome = scenario.config('require="__nosuch/x" __step a\n')
    assert outcome.status == 1
    assert "Invalid type '__nosuch'" in outcome.stderr
    assert "Error processing initial manifest" in outcome.stderr
    assert "init:stderr" in outcome.stderr
    assert "ERROR: cdist: Failed to configure the following hosts: localhost" in outcome.stderr
    assert not outcome.has_cache()


@pytest.mark.parametrize("jobs", ["1", "8"])
def test_cycle_is_reported_with_its_path(scenario: Scenario, jobs: str) -> None:
    log = q(scenario.log)
    outcome = scenario.config(
        f"""
require="__step/b" __step a --log {log}
require="__step/a" __step b --log {log}
__step c --log {log}
""",
        "-j",
        jobs,
    )
    assert outcome.status == 1
    assert re.search(
        r"Cycle detected in object dependencies:\n"
        r"(__step/a -> __step/b -> __step/a|__step/b -> __step/a -> __step/b)!",
        outcome.stderr,
    ), outcome.stderr
    assert "ERROR: cdist: Failed to configure the following hosts: localhost" in outcome.stderr
    # Detected before any object ran.
    assert scenario.log_lines() == []
    assert not outcome.has_cache()


@pytest.mark.parametrize("jobs", ["1", "8"])
def test_unresolvable_requirement_lists_the_objects(scenario: Scenario, jobs: str) -> None:
    log = q(scenario.log)
    outcome = scenario.config(
        f"""
require="__step/ghost" __step a --log {log}
__step b --log {log}
""",
        "-j",
        jobs,
    )
    assert outcome.status == 1
    expected = (
        "The requirements of the following objects could not be resolved:\n"
        "__step/a requires:\n"
        "        __step/ghost\n"
        "__step/a autorequires:\n"
        "        \n"
    )
    assert expected in outcome.stderr
    block = outcome.stderr[outcome.stderr.index("could not be resolved") :]
    assert "__step/b requires" not in block
    # Independent objects are still applied; the blocked one never is.
    assert local_order(scenario.log_lines()) == ["__step/b"]
    assert not outcome.has_cache()


def test_code_local_runs_before_code_remote(scenario: Scenario) -> None:
    log = q(scenario.log)
    scenario.config("".join(f"__step {n} --log {log}\n" for n in "abc")).ok()
    lines = scenario.log_lines()
    assert sorted(lines) == sorted(
        f"{kind} __step/{n}" for kind in ("local", "remote") for n in "abc"
    )
    for n in "abc":
        assert lines.index(f"local __step/{n}") < lines.index(f"remote __step/{n}")


def chain_manifest(log: Path) -> str:
    """A require chain c5 -> ... -> c1 defined backwards, independents, a __chain."""
    lines = [f'require="__step/c{i - 1}" __step c{i} --log {q(log)}' for i in range(5, 1, -1)]
    lines.append(f"__step c1 --log {q(log)}")
    lines += [f"__step free{i} --log {q(log)}" for i in range(4)]
    lines.append(f"__chain k --log {q(log)}")
    return "\n".join(lines) + "\n"


def snapshot(cache: Cache) -> dict[str, tuple[object, ...]]:
    """Everything about each object that must not depend on -j."""
    return {
        name: (
            cache.parameters(name),
            cache.lines(name, "require"),
            sorted(cache.lines(name, "autorequire")),
            cache.lines(name, "parents"),
            cache.read(name, "state"),
            cache.read(name, "code-local"),
            cache.read(name, "code-remote"),
        )
        for name in cache.object_names()
    }


def assert_chain_order(lines: list[str]) -> None:
    order = local_order(lines)
    assert [n for n in order if n.startswith("__step/c")] == [f"__step/c{i}" for i in range(1, 6)]
    assert order.index("__step/k/first") < order.index("__step/k/second")
    assert order.index("__step/k/second") < order.index("__step/k/third")
    for child in ("first", "second", "third", "free"):
        assert order.index(f"__step/k/{child}") < order.index("__chain/k")
    for name in order:
        if not name.startswith("__chain"):
            assert lines.index(f"local {name}") < lines.index(f"remote {name}")


def test_jobs_give_the_same_result_and_order_as_sequential(scenario: Scenario) -> None:
    sequential_log = scenario.tmp / "sequential.log"
    parallel_log = scenario.tmp / "parallel.log"
    sequential = snapshot(scenario.config(chain_manifest(sequential_log), "-j", "1").ok().cache())
    parallel = snapshot(scenario.config(chain_manifest(parallel_log), "-j", "8").ok().cache())

    def normalised(snap: dict[str, tuple[object, ...]], log: Path) -> str:
        return repr(snap).replace(str(log), "LOG")

    assert normalised(parallel, parallel_log) == normalised(sequential, sequential_log)
    seq_lines = sequential_log.read_text().splitlines()
    par_lines = parallel_log.read_text().splitlines()
    assert sorted(par_lines) == sorted(seq_lines)
    assert_chain_order(seq_lines)
    assert_chain_order(par_lines)


def test_jobs_run_independent_code_concurrently(scenario: Scenario) -> None:
    # The writer's code blocks until the reader's code opens the fifo: it only
    # finishes when both run at the same time (timeout 20 guards a regression).
    fifo = scenario.tmp / "fifo"
    outcome = scenario.config(
        f"""
mkfifo {q(fifo)}
__meet writer --fifo {q(fifo)} --role writer
__meet reader --fifo {q(fifo)} --role reader
""",
        "-j",
        "8",
    ).ok()
    cache = outcome.cache()
    assert cache.read("__meet/reader", "stdout/code-local") == "hello\n"


def test_nonparallel_type_never_runs_two_objects_at_once(scenario: Scenario) -> None:
    log = q(scenario.log)
    names = [f"s{i}" for i in range(6)]
    scenario.config("".join(f"__serial {n} --log {log}\n" for n in names), "-j", "8").ok()
    lines = scenario.log_lines()
    assert len(lines) == 2 * len(names)
    pairs = list(zip(lines[::2], lines[1::2], strict=True))
    for start, end in pairs:
        assert start.startswith("start ")
        assert end == "end " + start.removeprefix("start ")
    assert sorted(start.removeprefix("start __serial/") for start, _ in pairs) == names


def test_conf_dir_order_later_wins(scenario: Scenario, tmp_path: Path) -> None:
    # A second -c dir replaces the whole __step type of the first (spec §5.3).
    override = tmp_path / "override-conf" / "type" / "__step"
    override.mkdir(parents=True)
    (override / "gencode-local").write_text(
        f"echo \"echo 'override $__object_name' >> {q(scenario.log)}\"\n"
    )
    outcome = scenario.config(
        f"__step a --log {q(scenario.log)}\n", conf=(CONF, tmp_path / "override-conf")
    )
    # The replacing type has no parameter "log": the emulator refuses it.
    assert outcome.status == 1
    assert "--log" in outcome.stderr
    outcome = scenario.config("__step a\n", conf=(CONF, tmp_path / "override-conf")).ok()
    assert scenario.log_lines() == ["override __step/a"]


def test_child_requiring_its_parent_gets_no_autorequire(scenario: Scenario) -> None:
    cache = scenario.config(f"__parent p --log {q(scenario.log)}\n").ok().cache()
    assert cache.lines("__step/p/child", "require") == ["__parent/p"]
    assert cache.lines("__step/p/child", "parents") == ["__parent/p"]
    assert cache.lines("__parent/p", "children") == ["__step/p/child"]
    assert cache.read("__parent/p", "autorequire") is None
    assert local_order(scenario.log_lines()) == ["__parent/p", "__step/p/child"]


def test_nested_object_ids_are_separate_objects(scenario: Scenario) -> None:
    log = q(scenario.log)
    cache = scenario.config(f"__step a/b --log {log}\n__step a --log {log}\n").ok().cache()
    assert cache.object_names() == ["__step/a", "__step/a/b"]
    assert sorted(local_order(scenario.log_lines())) == ["__step/a", "__step/a/b"]


def test_same_child_from_concurrent_type_manifests(scenario: Scenario) -> None:
    parents = [f"__share/p{i}" for i in range(6)]
    manifest = "".join(f"__share {name.removeprefix('__share/')}\n" for name in parents)
    cache = scenario.config(manifest, "-j", "8").ok().cache()
    assert cache.object_names() == sorted([*parents, "__stdin/shared"])
    assert sorted(cache.lines("__stdin/shared", "parents")) == parents
    assert len(cache.lines("__stdin/shared", "source")) == len(parents)
    for name in parents:
        assert cache.lines(name, "autorequire") == ["__stdin/shared"]
        assert cache.read(name, "state") == "done\n"


def remote_lines(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line.startswith("remote ")]


def test_explorers_of_waiting_objects_see_the_code_they_waited_for(scenario: Scenario) -> None:
    """Explorers of an object that waits for others run in the same session as their
    code-remote, after it: they see its effect, and the run needs one session less."""
    log = scenario.log
    report = scenario.tmp / "report.json"
    outcome = scenario.config(
        f"""
__step a --log {q(log)}
__step b --log {q(log)}
require="__step/a __step/b" __probe after --path {q(log)}
__probe before --path {q(log)}
""",
        "-j",
        "4",
        "--report",
        str(report),
    ).ok()
    cache = outcome.cache()
    assert cache.read("__probe/before", "explorer/seen") == "missing\n"
    assert remote_lines(cache.read("__probe/after", "explorer/seen")) == [
        "remote __step/a",
        "remote __step/b",
    ]
    statistics = json.loads(report.read_text())["hosts"][0]["statistics"]
    # global explorers; explorers of __probe/before; code-remote of a and b followed by
    # the explorers of __probe/after.  Without the fusion: one more.
    assert statistics["sessions_opened"] == 3


def test_explorers_wait_for_every_requirement_not_just_the_running_code(
    scenario: Scenario,
) -> None:
    """p waits for a and b (two definitions merge their requirements); b waits for a.
    a's code session must not carry p's explorers: b has not run yet."""
    log = scenario.log
    outcome = scenario.config(
        f"""
__step a --log {q(log)}
require="__step/a" __probe p --path {q(log)}
require="__step/a" __step b --log {q(log)}
require="__step/b" __probe p --path {q(log)}
""",
        "-j",
        "4",
    ).ok()
    cache = outcome.cache()
    assert remote_lines(cache.read("__probe/p", "explorer/seen")) == [
        "remote __step/a",
        "remote __step/b",
    ]
