"""The planner interface and the behaviour every planner shares.

Owns ``PlanContext`` (what a planner may know besides the goal), the ``Planner`` protocol
(``plan`` a goal into a graph, ``refine`` one task into a subgraph) and ``DecomposingPlanner``,
the base class that turns a single ``decompose`` method into both operations while enforcing
``PlannerLimits``. Never executes tasks, never talks to a model directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from agentcore.planners._errors import PlanLimitError
from agentcore.planners._graph import TaskGraph
from agentcore.planners._limits import PlannerLimits
from agentcore.planners._task import Task, TaskStatus

__all__ = ["DecomposingPlanner", "PlanContext", "Planner"]


class PlanContext(BaseModel):
    """What a planner may use besides the goal.

    ``tools`` and ``agents``: names a task may be assigned to. ``notes``: facts to respect
    (for example why an earlier attempt failed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tools: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def with_note(self, note: str) -> PlanContext:
        return self.model_copy(update={"notes": (*self.notes, note)})


@runtime_checkable
class Planner(Protocol):
    """Turns goals into task graphs."""

    def plan(self, goal: str, context: PlanContext | None = None) -> TaskGraph:
        """A new graph of pending tasks that reaches ``goal``."""
        ...

    def refine(
        self, graph: TaskGraph, task_id: str, context: PlanContext | None = None
    ) -> TaskGraph:
        """A copy of ``graph`` where ``task_id`` is replaced by a subgraph reaching its goal."""
        ...


class DecomposingPlanner(ABC):
    """Base for planners that only know how to split one goal into a small graph."""

    def __init__(self, limits: PlannerLimits | None = None) -> None:
        self.limits = limits or PlannerLimits()

    @abstractmethod
    def decompose(self, goal: str, context: PlanContext, parent: Task | None) -> TaskGraph:
        """A graph of fresh tasks for ``goal``; ``parent`` is the task being refined, if any."""

    def plan(self, goal: str, context: PlanContext | None = None) -> TaskGraph:
        graph = self.decompose(goal, context or PlanContext(), None)
        graph.goal = goal
        self._check_size(len(graph), self.limits.max_steps, f"the plan for {goal!r}")
        return graph

    def refine(
        self, graph: TaskGraph, task_id: str, context: PlanContext | None = None
    ) -> TaskGraph:
        task = graph.task(task_id)
        if task.depth + 1 > self.limits.max_depth:
            raise PlanLimitError(
                f"cannot refine task {task_id!r}: it is at depth {task.depth} and "
                f"PlannerLimits.max_depth is {self.limits.max_depth}"
            )
        ctx = context or PlanContext()
        if graph.goal and graph.goal != task.goal:
            ctx = ctx.with_note(f"This is one step of the larger goal: {graph.goal}")
        sub = self.decompose(task.goal, ctx, task)
        self._check_size(len(sub), self.limits.max_steps, f"the refinement of task {task_id!r}")
        total = len(graph) - 1 + len(sub)
        if total > self.limits.max_tasks:
            raise PlanLimitError(
                f"refining task {task_id!r} into {len(sub)} tasks would make the graph "
                f"{total} tasks; PlannerLimits.max_tasks is {self.limits.max_tasks}"
            )
        out = graph.copy()
        out.notes.extend(sub.notes)
        verb = "replanned" if task.status is TaskStatus.FAILED else "refined"
        out.replace_task(task_id, sub, note=f"{verb} task {task_id!r} into {len(sub)} tasks")
        return out

    def _check_size(self, size: int, limit: int, what: str) -> None:
        if size > limit:
            raise PlanLimitError(f"{what} has {size} tasks; PlannerLimits.max_steps is {limit}")
