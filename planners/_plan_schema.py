"""The JSON shape a model writes a plan in, and its conversion into a task graph.

Owns two views of one plan format, a flat list of steps ``{"id", "goal", ["tool"],
"depends_on"}``, both built from pydantic models per ``PlannerLimits`` and per the allowed
tool/agent names:

- ``plan_schema``: the JSON Schema a model is decoded under. Step ``k`` must have ``id`` ``k``
  and may only depend on steps ``1..k-1`` (one pydantic model per position, joined with
  ``prefixItems``), so a constrained decoder can only write an acyclic plan with valid ids;
  sizes are bounded by ``minItems``/``maxItems``/``maxLength``.
- ``plan_model``: the looser model used to parse replies (any ids and references), because a
  generator that does not enforce the schema (an external endpoint, a scripted fake) may send
  anything; ``graph_from_plan`` then repairs dangling references and rejects duplicate ids and
  cycles with the cycle named.

Never calls a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, create_model

from agentcore.planners._errors import CycleError, PlanValidationError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._limits import PlannerLimits
from agentcore.planners._task import Assignee, Task

__all__ = [
    "AGENT_PREFIX",
    "assignee_names",
    "graph_from_plan",
    "plan_model",
    "plan_schema",
    "schema_name",
]

#: In the plan schema, sub-agents appear among tool names as ``agent:<name>``.
AGENT_PREFIX = "agent:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def assignee_names(tools: Sequence[str], agents: Sequence[str]) -> list[str]:
    """The values a step's ``tool`` field may take (besides null)."""
    return list(dict.fromkeys([*tools, *(AGENT_PREFIX + a for a in agents)]))


def _step_fields(
    limits: PlannerLimits, names: Sequence[str], id_type: Any, deps_type: Any, max_deps: int
) -> dict[str, Any]:
    """Fields of one step, in the order a model writes them. All are required: a small model
    does best with one fixed shape; ``tool`` exists only when there are names to choose from."""
    fields: dict[str, Any] = {
        "id": (id_type, Field(description="step number: 1, 2, 3, ...")),
        "goal": (
            str,
            Field(min_length=3, max_length=limits.max_goal_chars, description="what to do"),
        ),
    }
    if names:
        tool_type: Any = Literal[tuple(names)]  # a Literal built from runtime values
        fields["tool"] = (tool_type | None, Field(description="who does it, or null"))
    fields["depends_on"] = (
        deps_type,
        Field(max_length=max_deps, description="ids of earlier steps this step needs"),
    )
    return fields


def plan_model(limits: PlannerLimits, names: Sequence[str] = ()) -> type[BaseModel]:
    """The parsing model: ``{"steps": [...]}`` with ids in ``1..max_steps``, any references."""
    n = limits.max_steps
    step_id = Annotated[int, Field(ge=1, le=n)]
    step = create_model(
        "PlanStep", __base__=_Strict, **_step_fields(limits, names, step_id, list[step_id], n - 1)
    )
    plan: type[BaseModel] = create_model(
        "Plan",
        __base__=_Strict,
        steps=(list[step], Field(min_length=limits.min_steps, max_length=n)),  # type: ignore[valid-type]
    )
    return plan


def plan_schema(limits: PlannerLimits, names: Sequence[str] = ()) -> dict[str, Any]:
    """The generation schema: step ``k`` has ``id`` ``k`` and depends only on ``1..k-1``."""
    positions: list[dict[str, Any]] = []
    for k in range(1, limits.max_steps + 1):
        earlier = Annotated[int, Field(ge=1, le=max(k - 1, 1))]
        step_k = create_model(
            f"PlanStep{k}",
            __base__=_Strict,
            **_step_fields(limits, names, Literal[k], list[earlier], k - 1),
        )
        schema = step_k.model_json_schema()
        schema.pop("title", None)
        positions.append(schema)
    steps_field = plan_model(limits, names).model_json_schema()["properties"]["steps"]
    return {
        "title": "Plan",
        "type": "object",
        "properties": {
            "steps": {
                "title": steps_field["title"],
                "type": "array",
                "prefixItems": positions,
                "items": False,
                "minItems": steps_field["minItems"],
                "maxItems": steps_field["maxItems"],
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def schema_name(assignee: Assignee) -> str:
    """How an assignee is written in a plan's ``tool`` field."""
    return assignee.name if assignee.kind == "tool" else AGENT_PREFIX + assignee.name


def _assignee(name: str | None) -> Assignee | None:
    if name is None:
        return None
    if name.startswith(AGENT_PREFIX):
        return Assignee(kind="agent", name=name[len(AGENT_PREFIX) :])
    return Assignee(kind="tool", name=name)


def graph_from_plan(goal: str, plan: BaseModel) -> TaskGraph:
    """Turn a parsed plan into a graph of pending tasks with ids ``"1"``, ``"2"``, ...

    Duplicate step ids raise ``PlanValidationError``. Repairs, each recorded in
    ``graph.notes``: a dependency on an unknown step or on the step itself is dropped; a step
    whose goal repeats an earlier step's goal (small models loop) is merged into that step,
    its dependants then wait for the earlier one. A cycle raises ``CycleError`` naming it.
    """
    steps: list[Any] = list(getattr(plan, "steps", []))
    seen: dict[int, int] = {}
    for position, step in enumerate(steps, start=1):
        if step.id in seen:
            raise PlanValidationError(
                f"step id {step.id} is used by steps #{seen[step.id]} and #{position}; "
                "expected each step to have its own id"
            )
        seen[step.id] = position
    notes: list[str] = []
    merged: dict[int, int] = {}  # id of a step that repeats an earlier goal -> earlier id
    first_with_goal: dict[str, int] = {}
    for step in steps:
        key = " ".join(step.goal.lower().split())
        if key in first_with_goal:
            merged[step.id] = first_with_goal[key]
            notes.append(
                f"merged step {step.id} into step {first_with_goal[key]}: same goal {step.goal!r}"
            )
        else:
            first_with_goal[key] = step.id
    deps: dict[int, list[int]] = {}
    for step in steps:
        if step.id in merged:
            continue
        kept: list[int] = []
        for raw in dict.fromkeys(step.depends_on):
            dep = merged.get(raw, raw)
            if raw == step.id:
                notes.append(f"dropped dependency of step {step.id} on itself")
            elif raw not in seen:
                notes.append(
                    f"dropped dependency of step {step.id} on {raw}: there is no step {raw}"
                )
            elif dep != step.id and dep not in kept:
                kept.append(dep)
        deps[step.id] = kept
    shape = nx.DiGraph()
    shape.add_nodes_from(deps)
    shape.add_edges_from((d, s) for s, ds in deps.items() for d in ds)
    if not nx.is_directed_acyclic_graph(shape):
        ids = [str(a) for a, _ in nx.find_cycle(shape)]
        raise CycleError([*ids, ids[0]], "the plan's depends_on lists")
    graph = TaskGraph(goal)
    graph.notes.extend(notes)
    by_id = {step.id: step for step in steps}
    order = {sid: i for i, sid in enumerate(deps)}
    for sid in nx.lexicographical_topological_sort(shape, key=order.__getitem__):
        step = by_id[sid]
        graph.add_task(
            Task(
                id=str(sid),
                goal=" ".join(step.goal.split()) or step.goal,
                assignee=_assignee(getattr(step, "tool", None)),
            ),
            [str(d) for d in deps[sid]],
        )
    return graph
