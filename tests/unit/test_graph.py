"""The pure dependency graph: readiness, cycles and the unresolvable listing."""

from __future__ import annotations

import random

from cdist_trio.graph import Graph, Phase


def _graph(edges: dict[str, tuple[list[str], list[str]]]) -> Graph:
    graph = Graph()
    for name, (require, autorequire) in edges.items():
        graph.update(name, require, autorequire)
    return graph


def test_graph_prepares_only_when_requirements_are_done() -> None:
    graph = _graph({"__a/1": ([], []), "__b/1": (["__a/1"], [])})
    assert graph.ready_to_prepare() == ["__a/1"]
    graph.set_phase("__a/1", Phase.PREPARED)
    assert graph.ready_to_prepare() == []
    graph.set_phase("__a/1", Phase.DONE)
    assert graph.ready_to_prepare() == ["__b/1"]


def test_graph_runs_parent_only_after_autorequired_children() -> None:
    graph = _graph({"__parent/x": ([], ["__child/y"]), "__child/y": ([], [])})
    graph.set_phase("__parent/x", Phase.PREPARED)
    graph.set_phase("__child/y", Phase.PREPARED)
    assert graph.ready_to_run() == ["__child/y"]
    graph.set_phase("__child/y", Phase.DONE)
    assert graph.ready_to_run() == ["__parent/x"]


def test_graph_prepare_ignores_autorequire() -> None:
    graph = _graph({"__parent/x": ([], ["__child/y"]), "__child/y": ([], [])})
    assert graph.ready_to_prepare() == ["__parent/x", "__child/y"]


def test_graph_missing_requirement_is_never_ready_and_listed() -> None:
    graph = _graph({"__a/1": (["__nobody/here"], [])})
    assert graph.ready_to_prepare() == []
    assert graph.find_cycle() is None
    assert graph.unresolved() == (
        "The requirements of the following objects could not be resolved:\n"
        "__a/1 requires:\n"
        "        __nobody/here\n"
        "__a/1 autorequires:\n"
        "        "
    )


def test_graph_finds_cycle_path() -> None:
    graph = _graph(
        {
            "__x/0": ([], []),
            "__cyc/a": (["__cyc/b"], []),
            "__cyc/b": (["__cyc/c"], []),
            "__cyc/c": (["__cyc/a"], []),
        }
    )
    cycle = graph.find_cycle()
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["__cyc/a", "__cyc/b", "__cyc/c"]


def test_graph_cycle_through_autorequire() -> None:
    graph = _graph({"__p/1": ([], ["__c/1"]), "__c/1": (["__p/1"], [])})
    assert graph.find_cycle() in (["__p/1", "__c/1", "__p/1"], ["__c/1", "__p/1", "__c/1"])


def test_graph_done_objects_break_cycles() -> None:
    graph = _graph({"__a/1": (["__b/1"], []), "__b/1": (["__a/1"], [])})
    graph.set_phase("__b/1", Phase.DONE)
    assert graph.find_cycle() is None


def test_graph_deep_chain_has_no_recursion_limit() -> None:
    graph = Graph()
    for i in range(5000):
        graph.update(f"__n/{i}", [f"__n/{i + 1}"] if i < 4999 else [], [])
    assert graph.find_cycle() is None
    graph.update("__n/4999", ["__n/0"], [])
    cycle = graph.find_cycle()
    assert cycle is not None
    assert len(cycle) == 5001


def test_graph_update_replaces_requirements_without_duplicates() -> None:
    graph = _graph({"__a/1": (["__b/1", "__b/1"], [])})
    assert graph.node("__a/1").require == ["__b/1"]
    graph.update("__a/1", ["__b/1", "__c/1"], [])
    assert graph.node("__a/1").require == ["__b/1", "__c/1"]


def test_graph_all_done() -> None:
    graph = _graph({"__a/1": ([], [])})
    assert not graph.all_done()
    graph.set_phase("__a/1", Phase.DONE)
    assert graph.all_done()


def test_graph_ready_objects_come_in_definition_order() -> None:
    """Whatever order objects were prepared in, they run (and their code is batched)
    in the order they were first defined."""
    names = [f"__a/{i}" for i in range(6)]
    graph = _graph({name: ([], []) for name in names})
    for name in reversed(names):
        graph.set_phase(name, Phase.PREPARING)
        graph.set_phase(name, Phase.PREPARED)
    assert graph.ready_to_run() == names
    for name in (names[4], names[1]):
        graph.set_phase(name, Phase.NEW)  # back to the start: still in its place
    assert graph.ready_to_prepare() == [names[1], names[4]]
    assert graph.ready_to_run() == [n for n in names if n not in (names[1], names[4])]


def test_graph_a_cycle_closed_by_a_later_definition_is_found() -> None:
    """The cycle check is skipped while nothing was added since it last found none; a
    re-definition that adds the closing edge counts as an addition."""
    graph = _graph({"__cyc/a": (["__cyc/b"], []), "__cyc/b": ([], [])})
    assert graph.find_cycle() is None
    graph.set_phase("__cyc/b", Phase.PREPARED)
    assert graph.find_cycle() is None
    graph.update("__cyc/b", [], ["__cyc/a"])
    assert graph.find_cycle() == ["__cyc/a", "__cyc/b", "__cyc/a"]


def test_graph_counts_done_objects_through_every_change_of_phase() -> None:
    graph = _graph({"__a/1": ([], []), "__a/2": ([], [])})
    graph.set_phase("__a/1", Phase.DONE)
    graph.set_phase("__a/1", Phase.DONE)
    assert not graph.all_done()
    graph.set_phase("__a/2", Phase.DONE)
    assert graph.all_done()
    graph.update("__a/3", [], [])
    assert not graph.all_done()


class _Reference:
    """Readiness by walking every object each time: the obvious algorithm."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[list[str], list[str]]] = {}
        self.phase: dict[str, Phase] = {}

    def done(self, name: str) -> bool:
        return self.phase.get(name) is Phase.DONE

    def ready_to_prepare(self) -> list[str]:
        return [
            n
            for n, (req, _) in self.nodes.items()
            if self.phase[n] is Phase.NEW and all(self.done(r) for r in req)
        ]

    def ready_once_done(self, names: set[str]) -> list[str]:
        return [
            n
            for n, (req, _) in self.nodes.items()
            if self.phase[n] is Phase.NEW
            and any(r in names for r in req)
            and all(r in names or self.done(r) for r in req)
        ]

    def ready_to_run(self) -> list[str]:
        return [
            n
            for n, (req, auto) in self.nodes.items()
            if self.phase[n] is Phase.PREPARED and all(self.done(r) for r in (*req, *auto))
        ]


def test_graph_answers_as_a_walk_over_every_object() -> None:
    """Random definitions, re-definitions and phase changes (backwards too): after each,
    the kept-up-to-date answers equal those of walking the whole graph."""
    rng = random.Random(3)
    for _ in range(40):
        graph, reference = Graph(), _Reference()
        names = [f"__t/{i}" for i in range(rng.randrange(2, 14))]
        for _ in range(120):
            name = rng.choice(names)
            if rng.random() < 0.4 or name not in reference.nodes:
                require = rng.sample([*names, "__nobody/x"], rng.randrange(0, 4))
                autorequire = rng.sample(names, rng.randrange(0, min(3, len(names))))
                graph.update(name, require, autorequire)
                reference.nodes[name] = (list(dict.fromkeys(require)), autorequire)
                reference.phase.setdefault(name, Phase.NEW)
            else:
                phase = rng.choice(list(Phase))
                graph.set_phase(name, phase)
                reference.phase[name] = phase
            some = set(rng.sample(names, rng.randrange(0, min(4, len(names)))))
            assert graph.ready_to_prepare() == reference.ready_to_prepare()
            assert graph.ready_once_done(some) == reference.ready_once_done(some)
            assert graph.ready_to_run() == reference.ready_to_run()
            assert graph.all_done() == all(p is Phase.DONE for p in reference.phase.values())
