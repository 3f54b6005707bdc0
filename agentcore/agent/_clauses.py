"""The clause planner: a goal written as several steps becomes a chain of tasks, no model.

Owns :class:`ClausePlanner` (a :class:`planners.DecomposingPlanner`): the goal's requests (its
statements and small talk are context, never tasks: :func:`planners.task_text`) are split into
clauses at sequencing words ("then", "after that", "finally", ";", numbered lines, and "and"
before an action verb); each clause is one task depending on the previous one, assigned to
the permitted tool whose name and description best match the clause's words (a clause with
an arithmetic expression goes to a tool with an ``expression`` argument); what the goal states
("My sister lives in Lyon.") goes with every task as ``inputs["context"]``. It is the
``"auto"`` planner's first choice because a ~100M-parameter model writes poor plans; any
model-backed planner can be passed instead. Never calls a model and never runs a tool.
"""

from __future__ import annotations

import re

from agentcore.planners import (
    Assignee,
    DecomposingPlanner,
    PlanContext,
    PlanError,
    PlannerLimits,
    Task,
    TaskGraph,
    statements,
    task_text,
)
from agentcore.tools import ToolRegistry

__all__ = ["ClausePlanner", "is_tool_step", "match_tool", "score_tools", "split_clauses"]

_VERBS = (
    "write|save|store|send|read|open|compute|calculate|evaluate|add|list|search|find|create|"
    "append|fetch|get|tell|report|remember|recall|check|count|copy|put|show|say|answer|give"
)
_SPLIT = re.compile(
    r"\s*(?:;|\.\s+(?=(?-i:[A-Z]))|\n\s*(?:\d+[.)]|-)?\s*|,?\s*\b(?:and then|then|after that|afterwards"
    r"|and finally|finally|next)\b\s*,?|,?\s+and\s+(?=(?:" + _VERBS + r")\b))\s*",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^(?:\d+[.)]\s*|first,?\s+|please\s+)", re.IGNORECASE)
_EXPRESSION = re.compile(r"\d[\d\s.]*(?:[-+*/^%]|\*\*)\s*[\d(]")
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "compute": ("calculate", "expression", "arithmetic"),
    "calculate": ("calculate", "expression", "arithmetic"),
    "evaluate": ("calculate", "expression"),
    "multiply": ("calculate", "expression"),
    "sum": ("calculate", "expression"),
    "save": ("write", "file"),
    "store": ("write", "remember"),
    "open": ("read", "file"),
    "show": ("read", "list"),
    "time": ("time", "clock", "current"),
    "date": ("time", "current"),
    "note": ("remember",),
    "memorize": ("remember",),
    "look": ("search", "recall"),
}
_WORD = re.compile(r"[a-z]+")
_FILE_NAME = re.compile(r"[\w./-]+\.[a-z0-9]{1,6}\b")


def split_clauses(goal: str) -> list[str]:
    """The goal's steps, in order (a goal without sequencing words is one clause)."""
    parts = [_LEADING.sub("", p.strip(" ,.")) for p in _SPLIT.split(goal)]
    return [p for p in parts if any(c.isalpha() for c in p)]


def _tool_words(registry: ToolRegistry, name: str) -> set[str]:
    tool = registry.get(name)
    words = set(_WORD.findall(name.lower().replace("_", " ")))
    first = tool.description.split(".")[0].lower()
    words |= {w for w in _WORD.findall(first) if len(w) > 3}
    return words


def score_tools(
    clause: str, registry: ToolRegistry, permitted: list[str]
) -> list[tuple[float, str]]:
    """How well each permitted tool fits ``clause``, best first (ties keep registry order)."""
    # file names are arguments, not intent: "write it to sum.txt" is not about summing
    words = set(_WORD.findall(_FILE_NAME.sub(" ", clause.lower())))
    wanted = set(words)
    for word in words:
        wanted |= set(_SYNONYMS.get(word, ()))
    has_expression = bool(_EXPRESSION.search(clause))
    scored: list[tuple[float, str]] = []
    for name in permitted:
        if name not in registry:
            continue
        score = float(len(wanted & _tool_words(registry, name)))
        score += 2.0 * len(wanted & set(_WORD.findall(name.lower())))
        if has_expression and "expression" in registry.get(name).parameters.get("properties", {}):
            score += 3.0
        scored.append((score, name))
    scored.sort(key=lambda item: -item[0])
    return scored


def match_tool(
    clause: str, registry: ToolRegistry, permitted: list[str], min_score: float = 2.0
) -> str | None:
    """The permitted tool that fits ``clause`` best, or None when nothing fits."""
    scored = score_tools(clause, registry, permitted)
    return scored[0][1] if scored and scored[0][0] >= min_score else None


def is_tool_step(clause: str, registry: ToolRegistry, permitted: list[str]) -> bool:
    """A one-step goal worth a plan: an imperative action verb or an arithmetic expression,
    and a tool that fits it clearly (a chat message is not)."""
    text = clause.strip().lower()
    imperative = re.match(r"^(?:please\s+)?(?:" + _VERBS + r")\b", text) is not None
    if not (imperative or _EXPRESSION.search(text)):
        return False
    return match_tool(clause, registry, permitted, min_score=3.0) is not None


class ClausePlanner(DecomposingPlanner):
    """Plans by splitting the goal into clauses (see the module docstring)."""

    def __init__(self, registry: ToolRegistry, limits: PlannerLimits | None = None) -> None:
        # max_depth=0: replanning a clause would split it the same way, so a failed task is
        # final once its retries are spent (a model-backed planner can replan instead)
        super().__init__(limits or PlannerLimits(min_steps=1, max_steps=8, max_depth=0))
        self.registry = registry

    def decompose(self, goal: str, context: PlanContext, parent: Task | None) -> TaskGraph:
        asked = task_text(goal)
        if not asked:  # "My sister lives in Lyon.": a statement is not a task
            raise PlanError(f"nothing to plan: {goal!r} states facts and asks for nothing")
        stated = " ".join(statements(goal))
        clauses = split_clauses(asked) or [asked]
        permitted = list(context.tools) if context.tools else self.registry.names()
        graph = TaskGraph(goal)
        previous: str | None = None
        for i, clause in enumerate(clauses[: self.limits.max_steps], start=1):
            tool = match_tool(clause, self.registry, permitted)
            task = Task(
                id=str(i),
                goal=clause[: self.limits.max_goal_chars * 2],
                assignee=Assignee(kind="tool", name=tool) if tool else None,
                inputs={"context": stated} if stated else {},
            )
            graph.add_task(task, [previous] if previous else [])
            previous = task.id
        graph.notes.append(f"split into {len(graph)} clause(s)")
        return graph
