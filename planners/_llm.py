"""The LLM planner: a model decomposes a goal into a plan, decoded under the plan's JSON Schema.

Owns the ``JsonGenerator`` protocol (the one seam to a model: messages + JSON Schema in,
schema-conforming JSON text out; the model backend implements it with constrained decoding),
the planner prompt and ``LLMPlanner``. A plan that parses but is unusable (duplicate ids, a
cycle) is sent back to the model with the problem stated, up to ``limits.max_attempts`` times.
Never imports the model core, never executes tasks.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from agentcore.planners._errors import PlanError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._limits import PlannerLimits
from agentcore.planners._plan_schema import (
    assignee_names,
    graph_from_plan,
    plan_model,
    plan_schema,
    schema_name,
)
from agentcore.planners._planner import DecomposingPlanner, PlanContext
from agentcore.planners._skills import SkillStore
from agentcore.planners._task import Task
from agentcore.planners._template import PlanTemplate

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "JsonGenerator",
    "LLMPlanner",
    "build_messages",
]


@runtime_checkable
class JsonGenerator(Protocol):
    """Something that answers chat ``messages`` with JSON text matching ``schema``."""

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str: ...


DEFAULT_SYSTEM_PROMPT = (
    "You are a planner. Split the user's goal into {min_steps} to {max_steps} short steps, "
    "in order. Give each step an id (1, 2, 3, ...), a goal, {tool_rule}and depends_on: "
    "the ids of earlier steps it needs ([] if none). Reply with JSON only."
)


def _example_json(template: PlanTemplate, with_tool: bool) -> str:
    """The template as the model should write a plan: ids 1..n, placeholders filled."""
    graph = template.instantiate(template.goal, {n: n for n in template.placeholders()})
    order = graph.topological_order()
    index = {tid: i for i, tid in enumerate(order, start=1)}
    steps: list[dict[str, Any]] = []
    for tid in order:
        task = graph.task(tid)
        item: dict[str, Any] = {"id": index[tid], "goal": task.goal}
        if with_tool:
            item["tool"] = schema_name(task.assignee) if task.assignee else None
        item["depends_on"] = [index[d] for d in graph.dependencies(tid)]
        steps.append(item)
    return json.dumps({"steps": steps}, ensure_ascii=False)


def build_messages(
    goal: str,
    context: PlanContext,
    limits: PlannerLimits,
    *,
    example: PlanTemplate | None = None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> list[dict[str, str]]:
    """The chat messages that ask for a plan; short on purpose (small models).

    With ``example`` (a stored skill for a similar goal), the system message shows it as a
    worked example. There is no default example: small models copy an unrelated example's
    steps instead of planning for the goal.
    """
    names = assignee_names(context.tools, context.agents)
    tool_rule = f"a tool (one of: {', '.join(names)}; or null), " if names else ""
    system = system_prompt.format(
        min_steps=limits.min_steps, max_steps=limits.max_steps, tool_rule=tool_rule
    )
    if example is not None:
        system += f"\nExample. Goal: {example.goal}\n{_example_json(example, bool(names))}"
    lines = [f"Goal: {goal}"]
    lines += [f"Note: {note}" for note in context.notes]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


class LLMPlanner(DecomposingPlanner):
    """Decomposes goals with a model through a ``JsonGenerator``.

    The schema bounds each decomposition to ``limits.max_steps`` steps; ``refine`` (from the
    base class) bounds depth and total size. With ``skills``, a stored plan for a similar goal
    is shown to the model as an example; otherwise ``example`` is, when given.
    """

    def __init__(
        self,
        generator: JsonGenerator,
        limits: PlannerLimits | None = None,
        *,
        skills: SkillStore | None = None,
        example: PlanTemplate | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        super().__init__(limits)
        self.generator = generator
        self.skills = skills
        self.example = example
        self.system_prompt = system_prompt

    def schema(self, context: PlanContext | None = None) -> dict[str, Any]:
        """The JSON Schema plans are decoded under, for ``context``'s tools and agents.

        Replies are parsed with a looser model (see ``plan_model``), then repaired."""
        ctx = context or PlanContext()
        return plan_schema(self.limits, assignee_names(ctx.tools, ctx.agents))

    def decompose(self, goal: str, context: PlanContext, parent: Task | None) -> TaskGraph:
        names = assignee_names(context.tools, context.agents)
        model = plan_model(self.limits, names)
        schema = plan_schema(self.limits, names)
        example = self.skills.find(goal) if self.skills is not None else None
        example = example or self.example
        messages = build_messages(
            goal, context, self.limits, example=example, system_prompt=self.system_prompt
        )
        problems: list[str] = []
        for _ in range(self.limits.max_attempts):
            text = self.generator.generate_json(messages, schema, max_tokens=self.limits.max_tokens)
            try:
                graph = graph_from_plan(goal, model.model_validate_json(text))
            except (ValidationError, PlanError) as exc:
                problem = _problem(exc)
                problems.append(problem)
                messages = [
                    *messages,
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": f"That plan is invalid: {problem}. Reply with a corrected plan.",
                    },
                ]
                continue
            if problems:
                graph.notes.append(f"model fixed its plan after: {' | '.join(problems)}")
            return graph
        raise PlanError(
            f"the model gave no valid plan for goal {goal!r} in {self.limits.max_attempts} "
            f"attempt(s); problems: {' | '.join(problems)}"
        )
