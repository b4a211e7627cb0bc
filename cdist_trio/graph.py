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
    an object is defined again; `update` takes the latest lists.  The scheduler asks
    what is ready after every job, so the answers are kept up to date as facts come in
    rather than searched for: a new object knows which of its ``require`` are not done
    yet, and an object getting done frees those that waited for it; ready-to-run looks
    only at prepared objects; the cycle check runs only when `update` changed the graph
    since the last check that found none (an object getting done removes edges, it
    cannot close a cycle).  With one job per object (cdist's one-call-per-step
    transports) whole-graph walks per question were quadratic in the objects.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._free: dict[str, Node] = {}
        """New objects whose every ``require`` is done (ready to prepare)."""
        self._blocked: dict[str, set[str]] = {}
        """New object -> its ``require`` entries not done yet (never empty)."""
        self._waiters: dict[str, set[str]] = {}
        """Requirement -> the new objects it blocks (the reverse of `_blocked`)."""
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
            node = self._nodes[name] = Node(name, len(self._nodes))
            self._free[name] = node
            self._unchecked = True
        require, autorequire = list(dict.fromkeys(require)), list(dict.fromkeys(autorequire))
        if (require, autorequire) != (node.require, node.autorequire):
            node.require, node.autorequire = require, autorequire
            self._unchecked = True
            if node.phase is Phase.NEW:
                self._unblock(node)
                self._block(node)

    def set_phase(self, name: str, phase: Phase) -> None:
        node = self._nodes[name]
        old = node.phase
        if old is phase:
            return
        if old is Phase.NEW:
            self._unblock(node)
        if old is Phase.PREPARED:
            del self._prepared[name]
        elif phase is Phase.PREPARED:
            self._prepared[name] = node
        self._done += (phase is Phase.DONE) - (old is Phase.DONE)
        node.phase = phase
        if phase is Phase.NEW:
            self._block(node)
        if phase is Phase.DONE:
            for waiter in self._waiters.pop(name, ()):
                blockers = self._blocked[waiter]
                blockers.discard(name)
                if not blockers:
                    del self._blocked[waiter]
                    self._free[waiter] = self._nodes[waiter]
        elif old is Phase.DONE:  # never in a run; kept exact all the same
            for other in self._nodes.values():
                if other.phase is Phase.NEW:
                    self._unblock(other)
                    self._block(other)

    def _block(self, node: Node) -> None:
        """File a new object as free, or as blocked by its ``require`` not done."""
        blockers = {r for r in node.require if not self.is_done(r)}
        if not blockers:
            self._free[node.name] = node
            return
        self._blocked[node.name] = blockers
        for requirement in blockers:
            self._waiters.setdefault(requirement, set()).add(node.name)

    def _unblock(self, node: Node) -> None:
        """Forget what `_block` filed for ``node``."""
        self._free.pop(node.name, None)
        for requirement in self._blocked.pop(node.name, ()):
            waiters = self._waiters[requirement]
            waiters.discard(node.name)
            if not waiters:
                del self._waiters[requirement]

    def is_done(self, name: str) -> bool:
        node = self._nodes.get(name)
        return node is not None and node.phase is Phase.DONE

    def ready_to_prepare(self) -> list[str]:
        """New objects whose every ``require`` is done, in definition order."""
        return _in_order(self._free.values())

    def ready_once_done(self, names: set[str]) -> list[str]:
        """New objects that wait for some of ``names`` and for nothing else not done:
        they become ready to prepare when ``names`` are done (definition order)."""
        found = {
            waiter
            for name in names
            for waiter in self._waiters.get(name, ())
            if self._blocked[waiter] <= names
        }
        # Free ones too, should one of ``names`` be done already.
        found.update(n for n, node in self._free.items() if any(r in names for r in node.require))
        return _in_order(self._nodes[n] for n in found)

    def ready_to_run(self) -> list[str]:
        """Prepared objects whose ``require`` and ``autorequire`` are all done, in
        definition order (the order of their code in a batch)."""
        return _in_order(
            node
            for node in self._prepared.values()
            if all(self.is_done(r) for r in node.require)
            and all(self.is_done(r) for r in node.autorequire)
        )

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


def _in_order(nodes: Iterable[Node]) -> list[str]:
    """The names of ``nodes`` in definition order."""
    return [node.name for node in sorted(nodes, key=lambda node: node.index)]
