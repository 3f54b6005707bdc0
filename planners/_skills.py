"""Skills: finished plans kept for reuse on similar goals.

Owns the ``SkillStore`` protocol (``save`` a finished graph under its goal, ``find`` the
template of the most similar stored goal), ``InMemorySkillStore`` (word-overlap similarity,
for tests and short-lived agents) and ``SkillPlanner`` (offer a stored skill first, otherwise
ask another planner). Long-term, embedding-backed stores live in ``memory/``; this module never
imports it. Never executes tasks.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from agentcore.planners._errors import PlanError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._planner import PlanContext, Planner
from agentcore.planners._task import TaskStatus
from agentcore.planners._template import PlanTemplate

__all__ = ["InMemorySkillStore", "SkillPlanner", "SkillStore", "goal_similarity"]

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "into",
        "about",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "my",
        "our",
        "your",
        "please",
    ]
)


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS)


def goal_similarity(a: str, b: str) -> float:
    """Jaccard overlap of content words, in [0, 1]."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(wa & wb) / len(wa | wb)


def _require_finished(graph: TaskGraph) -> None:
    if not graph.succeeded():
        counts = {s.value: n for s, n in graph.counts().items() if n and s is not TaskStatus.DONE}
        raise PlanError(
            f"only a finished graph (every task done) can be stored as a skill; "
            f"graph for {graph.goal!r} still has {counts or 'no tasks'}"
        )


@runtime_checkable
class SkillStore(Protocol):
    """Where finished plans are kept and looked up."""

    def save(self, goal: str, graph: TaskGraph) -> PlanTemplate:
        """Store the shape of a finished ``graph`` for ``goal``; returns the stored template."""
        ...

    def find(self, goal: str) -> PlanTemplate | None:
        """The template stored for the goal most similar to ``goal``, or None."""
        ...


class InMemorySkillStore:
    """Skills in a dict; similarity is word overlap (``goal_similarity``) above a threshold."""

    def __init__(self, min_similarity: float = 0.5) -> None:
        if not 0.0 < min_similarity <= 1.0:
            raise ValueError(f"min_similarity is {min_similarity!r}, expected a number in (0, 1]")
        self.min_similarity = min_similarity
        self._skills: dict[str, PlanTemplate] = {}

    def __len__(self) -> int:
        return len(self._skills)

    def save(self, goal: str, graph: TaskGraph) -> PlanTemplate:
        _require_finished(graph)
        shaped = graph.copy()
        shaped.goal = goal
        template = PlanTemplate.from_graph(shaped)
        key = " ".join(goal.lower().split())
        self._skills.pop(key, None)  # a re-save moves the skill to the newest position
        self._skills[key] = template
        return template

    def find(self, goal: str) -> PlanTemplate | None:
        best: PlanTemplate | None = None
        best_score = 0.0
        for template in reversed(self._skills.values()):  # newest wins ties
            score = goal_similarity(goal, template.goal)
            if score > best_score:
                best, best_score = template, score
        return best if best_score >= self.min_similarity else None


class SkillPlanner:
    """Reuses a stored skill when one fits the goal, otherwise plans with ``fallback``."""

    def __init__(self, store: SkillStore, fallback: Planner) -> None:
        self.store = store
        self.fallback = fallback

    def plan(self, goal: str, context: PlanContext | None = None) -> TaskGraph:
        template = self.store.find(goal)
        if template is None:
            return self.fallback.plan(goal, context)
        try:
            graph = template.instantiate(goal)
        except PlanError:  # the skill needs fields this goal does not provide
            return self.fallback.plan(goal, context)
        graph.notes.append(f"reused the skill stored for {template.goal!r}")
        return graph

    def refine(
        self, graph: TaskGraph, task_id: str, context: PlanContext | None = None
    ) -> TaskGraph:
        return self.fallback.refine(graph, task_id, context)
