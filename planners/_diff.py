"""Differences between two versions of a task graph.

Owns ``GraphDiff`` and ``diff_graphs``: which tasks were added, removed or changed (field by
field, in JSON form) and which dependency edges came or went. Never modifies either graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentcore.planners._view import GraphView

__all__ = ["GraphDiff", "diff_graphs"]


@dataclass(frozen=True)
class GraphDiff:
    """What changed from graph ``a`` to graph ``b``. Field changes are ``(old, new)`` JSON values."""

    goal: tuple[str, str] | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    added_edges: list[tuple[str, str]] = field(default_factory=list)
    removed_edges: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.goal
            or self.added
            or self.removed
            or self.changed
            or self.added_edges
            or self.removed_edges
        )

    def summary(self) -> str:
        """One line per change: ``+`` added, ``-`` removed, ``~`` changed."""
        if self.is_empty:
            return "no changes"
        lines: list[str] = []
        if self.goal:
            lines.append(f"~ goal: {self.goal[0]!r} -> {self.goal[1]!r}")
        lines += [f"+ task {t}" for t in self.added]
        lines += [f"- task {t}" for t in self.removed]
        for tid, fields in self.changed.items():
            parts = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in fields.items())
            lines.append(f"~ task {tid}: {parts}")
        lines += [f"+ edge {a} -> {b}" for a, b in self.added_edges]
        lines += [f"- edge {a} -> {b}" for a, b in self.removed_edges]
        return "\n".join(lines)


def diff_graphs(a: GraphView, b: GraphView) -> GraphDiff:
    """Compare live tasks and edges of ``a`` and ``b`` (ids identify tasks across versions)."""
    a_tasks = {t.id: t.model_dump(mode="json") for t in a.tasks()}
    b_tasks = {t.id: t.model_dump(mode="json") for t in b.tasks()}
    changed: dict[str, dict[str, tuple[Any, Any]]] = {}
    for tid, old in a_tasks.items():
        new = b_tasks.get(tid)
        if new is None or new == old:
            continue
        changed[tid] = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
    a_edges = a.edges()
    b_edges = b.edges()
    a_set, b_set = set(a_edges), set(b_edges)
    return GraphDiff(
        goal=(a.goal, b.goal) if a.goal != b.goal else None,
        added=[t for t in b_tasks if t not in a_tasks],
        removed=[t for t in a_tasks if t not in b_tasks],
        changed=changed,
        added_edges=[e for e in b_edges if e not in a_set],
        removed_edges=[e for e in a_edges if e not in b_set],
    )
