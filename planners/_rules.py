"""The rule-based planner: goal patterns mapped to plan templates.

Owns ``RuleTemplate`` (a regular expression plus template steps) and ``RuleBasedPlanner``
(first matching rule wins; named groups of the match fill the steps' ``{placeholders}``).
Meant for scripted scenarios, tests and well-known procedures. The single-task fallback
plans only what the goal asks (its statements and small talk are left out, see
:func:`task_text`). Never calls a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentcore.planners._errors import PlanError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._limits import PlannerLimits
from agentcore.planners._planner import DecomposingPlanner, PlanContext
from agentcore.planners._task import Task
from agentcore.planners._template import PlanTemplate, TemplateStep
from agentcore.planners._utterance import statements, task_text

__all__ = ["RuleBasedPlanner", "RuleTemplate"]


class RuleTemplate(BaseModel):
    """``pattern`` is searched in the goal (case-insensitive); its named groups and ``{goal}``
    fill the step goals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str
    steps: tuple[TemplateStep, ...] = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from exc
        return value

    @classmethod
    def chain(cls, pattern: str, goals: Sequence[str]) -> RuleTemplate:
        """Steps ``1..n`` where each depends on the one before."""
        steps = tuple(
            TemplateStep(id=str(i), goal=g, depends_on=(str(i - 1),) if i > 1 else ())
            for i, g in enumerate(goals, start=1)
        )
        return cls(pattern=pattern, steps=steps)

    def match(self, goal: str) -> dict[str, str] | None:
        found = re.search(self.pattern, goal, flags=re.IGNORECASE)
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}

    def template(self) -> PlanTemplate:
        return PlanTemplate(goal=self.pattern, steps=self.steps)


class RuleBasedPlanner(DecomposingPlanner):
    """Plans by looking a goal up in ordered rules.

    With ``fallback_single=True`` a goal no rule matches becomes a one-task plan (a leaf);
    otherwise it is an error that lists the patterns tried.
    """

    def __init__(
        self,
        rules: Iterable[RuleTemplate],
        limits: PlannerLimits | None = None,
        *,
        fallback_single: bool = False,
    ) -> None:
        super().__init__(limits)
        self.rules = list(rules)
        self.fallback_single = fallback_single
        for rule in self.rules:
            missing = rule.template().placeholders() - set(re.compile(rule.pattern).groupindex)
            if missing:
                raise ValueError(
                    f"rule {rule.pattern!r} uses placeholders {sorted(missing)} that its pattern "
                    "does not capture; expected named groups like (?P<name>...)"
                )

    def decompose(self, goal: str, context: PlanContext, parent: Task | None) -> TaskGraph:
        for rule in self.rules:
            fields = rule.match(goal)
            if fields is not None:
                graph = rule.template().instantiate(goal, fields)
                graph.notes.append(f"rule {rule.pattern!r} matched {goal!r}")
                return graph
        if self.fallback_single:
            asked = task_text(goal)
            if not asked:  # "My sister lives in Lyon.": a statement is not a task
                raise PlanError(f"nothing to plan: {goal!r} states facts and asks for nothing")
            stated = " ".join(statements(goal))
            graph = TaskGraph(goal)
            graph.add_task(Task(id="1", goal=asked, inputs={"context": stated} if stated else {}))
            graph.notes.append(f"no rule matched {goal!r}; planned as a single task")
            return graph
        tried = ", ".join(repr(r.pattern) for r in self.rules) or "none"
        raise PlanError(f"no rule matches goal {goal!r}; patterns tried: {tried}")
