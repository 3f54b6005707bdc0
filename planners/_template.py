"""Plan templates: the reusable shape of a plan, without statuses or results.

Owns ``TemplateStep`` and ``PlanTemplate``: build one from a finished graph (``from_graph``),
turn one into a fresh graph for a new goal (``instantiate``). Step goals and string inputs may
hold ``{name}`` placeholders filled at instantiation (``{goal}`` is always available).
Never stores templates (see ``SkillStore``) and never matches goals (see the planners).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentcore.planners._errors import CycleError, PlanValidationError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._task import TASK_ID_PATTERN, Assignee, Task

__all__ = ["PlanTemplate", "TemplateStep"]


class TemplateStep(BaseModel):
    """One step of a template; ``depends_on`` names other steps of the same template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TASK_ID_PATTERN)
    goal: str = Field(min_length=1)
    assignee: Assignee | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    #: Kept from the task it was made from: a reused step that came from untrusted content
    #: is still untrusted.
    untrusted_source: str | None = None


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class PlanTemplate(BaseModel):
    """An ordered list of steps forming a DAG, plus the goal it was first made for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal: str
    steps: tuple[TemplateStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_steps(self) -> PlanTemplate:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} appears twice; step ids must be unique")
            seen.add(step.id)
        ids = {s.id for s in self.steps}
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in ids:
                    raise ValueError(
                        f"step {step.id!r} depends_on {dep!r}, expected one of {sorted(ids)}"
                    )
        for step in self.steps:
            _placeholders(step.goal)  # raises ValueError on unbalanced braces
        self._order()  # raises CycleError on a cycle
        return self

    @property
    def untrusted(self) -> bool:
        """Whether a step came from untrusted content."""
        return any(s.untrusted_source is not None for s in self.steps)

    def placeholders(self) -> set[str]:
        """Names that ``instantiate`` must be given (besides ``goal``)."""
        names: set[str] = set()
        for step in self.steps:
            names |= _placeholders(step.goal)
            for value in step.inputs.values():
                if isinstance(value, str):
                    names |= _placeholders(value)
        return names - {"goal"}

    def _order(self) -> list[TemplateStep]:
        """Steps with every dependency before its dependants (stable otherwise)."""
        by_id = {s.id: s for s in self.steps}
        placed: dict[str, TemplateStep] = {}
        visiting: list[str] = []

        def visit(step: TemplateStep) -> None:
            if step.id in placed:
                return
            if step.id in visiting:
                cycle = [*visiting[visiting.index(step.id) :], step.id]
                raise CycleError(cycle, "plan template")
            visiting.append(step.id)
            for dep in step.depends_on:
                visit(by_id[dep])
            visiting.pop()
            placed[step.id] = step

        for step in self.steps:
            visit(step)
        return list(placed.values())

    def instantiate(self, goal: str, fields: Mapping[str, str] | None = None) -> TaskGraph:
        """A fresh graph for ``goal``: placeholders filled from ``fields`` and ``{goal}``."""
        values = {**(fields or {}), "goal": goal}
        missing = self.placeholders() - values.keys()
        if missing:
            raise PlanValidationError(
                f"template placeholders {sorted(missing)} have no value; "
                f"given fields are {sorted(values)}"
            )
        graph = TaskGraph(goal)
        for step in self._order():
            inputs = {
                k: v.format_map(values) if isinstance(v, str) else v for k, v in step.inputs.items()
            }
            graph.add_task(
                Task(
                    id=step.id,
                    goal=step.goal.format_map(values),
                    assignee=step.assignee,
                    inputs=inputs,
                    untrusted_source=step.untrusted_source,
                ),
                step.depends_on,
            )
        return graph

    @classmethod
    def from_graph(cls, graph: TaskGraph) -> PlanTemplate:
        """The shape of ``graph``'s live tasks. Occurrences of the graph's goal in step goals
        become ``{goal}``, so the template carries over to a similar goal."""
        steps: list[TemplateStep] = []
        for tid in graph.topological_order():
            task = graph.task(tid)
            text = _escape(task.goal)
            if graph.goal and len(graph.goal) >= 3:
                text = text.replace(_escape(graph.goal), "{goal}")
            inputs = {k: _escape(v) if isinstance(v, str) else v for k, v in task.inputs.items()}
            steps.append(
                TemplateStep(
                    id=tid,
                    goal=text,
                    assignee=task.assignee,
                    inputs=inputs,
                    depends_on=tuple(graph.dependencies(tid)),
                    untrusted_source=task.untrusted_source,
                )
            )
        return cls(goal=graph.goal, steps=tuple(steps))
