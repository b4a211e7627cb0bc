"""The pure dependency graph of one host run: which objects may be prepared or run.

An object is *prepared* (explorers + type manifest) once every ``require`` is done, and
*run* (gencode + code) once every ``require`` and ``autorequire`` is done (spec §5.7).
No I/O and no Trio here: the scheduler feeds facts in and asks what is ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Phase(Enum):
    """Where an object is in its life; mirrors cdist's ``state`` file plus in-flight."""

    NEW = "new"
    PREPARING = "preparing"
    PREPARED = "prepared"
    RUNNING = "running"
    DONE = "done"


@dataclass
class Node:
    name: str
    index: int
    """Definition order: the first definition's place among all objects."""
    require: list[str] = field(default_factory=list)
    autorequire: list[str] = field(default_factory=list)
    phase: Phase = Phase.NEW


class Graph:
    """Objects, their requirements and phases; answers readiness questions.

    Objects appear as manifests define them, and their ``require`` lists may grow when
    an object is defined again; `update` takes the latest lists.  Readiness questions
    look only at the objects in the phase asked about (new, prepared), and the cycle
    check runs only when `update` changed the graph since the last check that found
    none: an object getting done removes edges, it cannot close a cycle.  The scheduler
    asks after every job, which with one job per object (cdist's one-call-per-step
    transports) was quadratic in the objects: 4 ms per question at 4,000 objects.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._new: dict[str, Node] = {}
        """Objects not started yet, in definition order."""
        self._prepared: dict[str, Node] = {}
        self._done = 0
        self._unchecked = False
        """Nodes or edges were added since the last cycle check that found none."""

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def names(self) -> list[str]:
        return list(self._nodes)

    def node(self, name: str) -> Node:
        return self._nodes[name]

    def update(self, name: str, require: Iterable[str], autorequire: Iterable[str]) -> None:
        """Add an object or refresh its requirement lists (duplicates are kept out)."""
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = self._new[name] = Node(name, len(self._nodes))
        node.require = list(dict.fromkeys(require))
        node.autorequire = list(dict.fromkeys(autorequire))
        self._unchecked = True

    def set_phase(self, name: str, phase: Phase) -> None:
        node = self._nodes[name]
        for phases, old, new in (
            (self._new, node.phase is Phase.NEW, phase is Phase.NEW),
            (self._prepared, node.phase is Phase.PREPARED, phase is Phase.PREPARED),
        ):
            if old and not new:
                del phases[name]
            elif new and not old:
                phases[name] = node
        self._done += (phase is Phase.DONE) - (node.phase is Phase.DONE)
        node.phase = phase

    def is_done(self, name: str) -> bool:
        node = self._nodes.get(name)
        return node is not None and node.phase is Phase.DONE

    def ready_to_prepare(self) -> list[str]:
        """New objects whose every ``require`` is done, in definition order."""
        ready = [node for node in self._new.values() if all(self.is_done(r) for r in node.require)]
        ready.sort(key=lambda node: node.index)  # in order already, unless one went back
        return [node.name for node in ready]

    def ready_once_done(self, names: set[str]) -> list[str]:
        """New objects that wait for some of ``names`` and for nothing else not done:
        they become ready to prepare when ``names`` are done."""
        return [
            node.name
            for node in self._new.values()
            if any(r in names for r in node.require)
            and all(r in names or self.is_done(r) for r in node.require)
        ]

    def ready_to_run(self) -> list[str]:
        """Prepared objects whose ``require`` and ``autorequire`` are all done, in
        definition order (the order of their code in a batch)."""
        ready = [
            node
            for node in self._prepared.values()
            if all(self.is_done(r) for r in node.require)
            and all(self.is_done(r) for r in node.autorequire)
        ]
        ready.sort(key=lambda node: node.index)
        return [node.name for node in ready]

    def all_done(self) -> bool:
        return self._done == len(self._nodes)

    def find_cycle(self) -> list[str] | None:
        """The first cycle among objects not done, as a path ``[a, b, ..., a]``, or None.

        Edges go from an object to each of its not-done ``require`` and ``autorequire``
        targets, as in cdist (spec §5.10).
        """
        if not self._unchecked:
            return None
        pending = {n.name for n in self._nodes.values() if n.phase is not Phase.DONE}
        finished: set[str] = set()
        for start in self._nodes:
            if start not in pending or start in finished:
                continue
            # Iterative DFS keeping the current path, so deep graphs never hit recursion limits.
            path: list[str] = [start]
            on_path = {start}
            stack = [iter(self._edges(start, pending))]
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    stack.pop()
                    done = path.pop()
                    on_path.discard(done)
                    finished.add(done)
                    continue
                if child in on_path:
                    return [*path[path.index(child) :], child]
                if child in finished:
                    continue
                path.append(child)
                on_path.add(child)
                stack.append(iter(self._edges(child, pending)))
        self._unchecked = False
        return None

    def _edges(self, name: str, pending: set[str]) -> list[str]:
        node = self._nodes[name]
        return [t for t in (*node.require, *node.autorequire) if t in pending]

    def unresolved(self) -> str:
        """cdist's listing of every object not done with its requirements (spec §5.10)."""
        lines = ["The requirements of the following objects could not be resolved:"]
        for node in self._nodes.values():
            if node.phase is Phase.DONE:
                continue
            lines.append(f"{node.name} requires:")
            lines.extend(f"        {r}" for r in node.require)
            if not node.require:
                lines.append("        ")
            lines.append(f"{node.name} autorequires:")
            lines.extend(f"        {r}" for r in node.autorequire)
            if not node.autorequire:
                lines.append("        ")
        return "\n".join(lines)
