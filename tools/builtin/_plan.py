"""Tools that let the agent read and change its plan (a task graph).

Owns :class:`PlanLike` (the task-graph verbs the tools use: ``render_text``, ``task``,
``add_task``, ``start``, ``complete``, ``fail``, ``skip``, ``retry``) and :func:`plan_tools`
(``plan_show``, ``plan_add_task``, ``plan_update_task``). ``planners.TaskGraph`` satisfies the
protocol as is; new tasks are built with ``planners.Task`` unless another ``make_task`` is
given; a task added after the run read untrusted content carries that source as its
``untrusted_source``. The graph owns the state machine: an impossible change (finishing a task that never
started, an unknown id) comes back as the graph's own error message. Never schedules or
executes tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentcore.planners import Task
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._provenance import untrusted_influence
from agentcore.tools._tool import Tool

__all__ = ["PlanLike", "plan_tools"]


@runtime_checkable
class PlanLike(Protocol):
    """A task graph the tools can show and edit (``planners.TaskGraph`` is one)."""

    def __contains__(self, task_id: object) -> bool: ...

    def render_text(self) -> str:
        """The plan as text the model can read (ids, goals, statuses)."""
        ...

    def task(self, task_id: str) -> Any:
        """The task with this id (it has a ``status``); raises for an unknown id."""
        ...

    def add_task(self, task: Any, depends_on: Iterable[str] = ()) -> Any: ...

    def start(self, task_id: str) -> Any: ...

    def complete(self, task_id: str, result: Any = None) -> Any: ...

    def fail(self, task_id: str, error: str) -> Any: ...

    def skip(self, task_id: str, reason: str) -> Any: ...

    def retry(self, task_id: str) -> Any: ...


def _planners_task(task_id: str, goal: str) -> Task:
    return Task(id=task_id, goal=goal)


class PlanShowArguments(BaseModel):
    """Show the current plan: its tasks, their status and dependencies."""

    model_config = ConfigDict(extra="forbid")


class PlanAddTaskArguments(BaseModel):
    """Add a task to the plan, optionally after the tasks it depends on."""

    model_config = ConfigDict(extra="forbid")
    goal: Annotated[str, Field(min_length=1, max_length=300, description="What the task does.")]
    depends_on: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]],
        Field(max_length=20, description="Ids of tasks that must be done first."),
    ] = []


class PlanUpdateTaskArguments(BaseModel):
    """Change the status of a task in the plan, with a note (the result, the error, the
    reason)."""

    model_config = ConfigDict(extra="forbid")
    task_id: Annotated[str, Field(min_length=1, max_length=128, description="The task's id.")]
    status: Annotated[
        Literal["running", "done", "failed", "skipped", "ready"],
        Field(description="running: started; done; failed; skipped; ready: try it again."),
    ]
    note: Annotated[
        str, Field(max_length=1_000, description="The result, the error or the reason.")
    ] = ""


def _next_id(plan: PlanLike) -> str:
    """``t<n>`` not used by a live task nor by an archived one (``TaskGraph.archived()``:
    tasks replaced by a refinement keep their ids reserved)."""
    archived = getattr(plan, "archived", None)
    used = {getattr(t, "id", None) for t in archived()} if callable(archived) else set()
    n = 1
    while f"t{n}" in plan or f"t{n}" in used:
        n += 1
    return f"t{n}"


def plan_tools(
    plan: PlanLike,
    *,
    make_task: Callable[[str, str], Any] | None = None,
    limits: ToolLimits = ToolLimits.DEFAULT,
) -> list[Tool]:
    """``plan_show`` (side effects ``reads``), ``plan_add_task`` and ``plan_update_task``
    (``writes``) over ``plan``. ``make_task(task_id, goal)`` builds the node ``add_task``
    stores (default: ``planners.Task``)."""
    build = make_task or _planners_task

    def show(_: PlanShowArguments) -> str:
        return plan.render_text() or "(the plan is empty)"

    def add(args: PlanAddTaskArguments) -> str:
        task_id = _next_id(plan)
        task = build(task_id, args.goal)
        influence = untrusted_influence()
        if influence is not None:  # a step copied from untrusted content keeps the label
            task = _label(task, influence)
        plan.add_task(task, args.depends_on)
        after = f" (after {', '.join(args.depends_on)})" if args.depends_on else ""
        label = "" if influence is None else f" (untrusted: from {influence})"
        return f"added task {task_id}: {args.goal}{after}{label}"

    def update(args: PlanUpdateTaskArguments) -> str:
        task_id, note = args.task_id, args.note
        if args.status in ("done", "failed") and _status(plan.task(task_id)) == "ready":
            plan.start(task_id)  # finishing a ready task implies it ran
        if args.status == "running":
            plan.start(task_id)
        elif args.status == "done":
            plan.complete(task_id, note or None)
        elif args.status == "failed":
            plan.fail(task_id, note or "failed")
        elif args.status == "skipped":
            plan.skip(task_id, note or "skipped")
        else:
            plan.retry(task_id)
        return f"task {task_id} is now {_status(plan.task(task_id))}"

    tags = {"plan"}
    return [
        Tool.from_model(
            PlanShowArguments,
            show,
            name="plan_show",
            side_effects=SideEffect.READS,
            limits=limits,
            tags=tags,
        ),
        Tool.from_model(
            PlanAddTaskArguments,
            add,
            name="plan_add_task",
            side_effects=SideEffect.WRITES,
            limits=limits,
            tags=tags,
        ),
        Tool.from_model(
            PlanUpdateTaskArguments,
            update,
            name="plan_update_task",
            side_effects=SideEffect.WRITES,
            limits=limits,
            tags=tags,
        ),
    ]


def _label(task: Any, source: str) -> Any:
    """``task`` marked as derived from untrusted ``source`` (a ``planners.Task`` gets its
    ``untrusted_source``; another task type an ``untrusted_source`` attribute if it takes one)."""
    copy = getattr(task, "model_copy", None)
    if callable(copy) and "untrusted_source" in getattr(type(task), "model_fields", {}):
        return copy(update={"untrusted_source": source})
    try:
        task.untrusted_source = source
    except AttributeError:
        pass
    return task


def _status(task: Any) -> str:
    status = getattr(task, "status", "")
    return str(getattr(status, "value", status))
