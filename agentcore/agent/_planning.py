"""The planning layer: when to plan, the plan itself, the next task, and replanning.

Owns :class:`PlanLayer`: ``planner="auto"`` plans goals that read as several steps
("... then ...", "... and write ...", numbered or semicolon-separated lists) and one-step
commands a permitted tool clearly fits ("Read notes.txt", "Compute 3*4"), counting only the
goal's requests and questions: a statement ("My sister lives in Lyon.") or small talk is never a
task, and a message that only states or chats is never planned. A stored skill for
the same goal is reused (:class:`planners.SkillPlanner`), otherwise
:class:`~agentcore.agent.ClausePlanner` chains the clauses. Chat stays unplanned.
``"off"`` never plans; a :class:`planners.Planner` object (e.g. :class:`planners.LLMPlanner`
on the agent's backend) plans every goal. Drives the graph with a :class:`planners.Scheduler`
(retry budget) and :func:`planners.replan` after a final failure; tasks a replan makes from a
failure that quotes untrusted content carry that source (``Task.untrusted_source``). Never
executes tasks and never calls tools.
"""

from __future__ import annotations

from typing import Literal

from agentcore.agent._clauses import ClausePlanner, is_tool_step, split_clauses
from agentcore.planners import (
    PlanContext,
    PlanError,
    Planner,
    RetryPolicy,
    Scheduler,
    SkillPlanner,
    SkillStore,
    Task,
    TaskGraph,
    replan,
    task_text,
)
from agentcore.tools import ToolRegistry

__all__ = ["PlanLayer", "looks_multi_step"]


def looks_multi_step(goal: str) -> bool:
    """Whether a goal asks for more than one step (the ``"auto"`` planner's trigger); what it
    states is not a step."""
    return len(split_clauses(task_text(goal))) >= 2


class PlanLayer:
    """Creates and drives the task graph of a run."""

    def __init__(
        self,
        planner: Planner | Literal["auto", "off"],
        registry: ToolRegistry,
        *,
        skills: SkillStore | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.mode: Literal["auto", "off", "custom"]
        if planner == "auto":
            self.mode = "auto"
            clauses = ClausePlanner(registry)
            self.planner: Planner | None = (
                SkillPlanner(skills, clauses) if skills is not None else clauses
            )
        elif planner == "off":
            self.mode, self.planner = "off", None
        elif isinstance(planner, Planner):
            self.mode, self.planner = "custom", planner
        else:
            raise ValueError(
                f"planner={planner!r}: expected 'auto', 'off' or a planners.Planner object"
            )
        self.registry = registry
        self.retry = retry or RetryPolicy(max_attempts=2)
        self.graph: TaskGraph | None = None
        self.scheduler: Scheduler | None = None

    def wants_plan(self, goal: str, permitted: list[str]) -> bool:
        """``auto``: several steps, or one imperative step a permitted tool clearly fits, among
        the goal's requests and questions; a custom planner: any goal that asks something."""
        if self.planner is None:
            return False
        asked = task_text(goal)
        if not asked:
            return False
        if self.mode == "custom" or looks_multi_step(asked):
            return True
        return is_tool_step(asked, self.registry, permitted)

    def create(self, goal: str, tools: list[str], notes: list[str]) -> TaskGraph:
        """Plan ``goal`` (raises PlanError when the planner cannot)."""
        assert self.planner is not None
        graph = self.planner.plan(goal, PlanContext(tools=tuple(tools), notes=tuple(notes)))
        self.adopt(graph)
        return graph

    def adopt(self, graph: TaskGraph | None) -> None:
        self.graph = graph
        self.scheduler = Scheduler(graph, self.retry) if graph is not None else None

    def next_task(self) -> Task | None:
        """The running task, else start the first ready one; None when nothing is left."""
        if self.graph is None or self.scheduler is None:
            return None
        for task in self.graph.tasks():
            if task.status.value == "running":
                return task
        batch = self.scheduler.next_batch(1)
        if not batch:
            return None
        return self.scheduler.start(batch[0].id)

    def complete(self, task_id: str, result: str) -> None:
        assert self.scheduler is not None
        self.scheduler.succeed(task_id, result)

    def fail(
        self, task_id: str, error: str, tools: list[str], *, influence: str | None = None
    ) -> str:
        """Record a failure: ``"retrying"``, ``"replanned"`` or ``"failed"`` (no way on).
        ``influence``: the untrusted source the error may quote (a tool's output); the tasks a
        replan adds from it are labelled with it."""
        assert self.scheduler is not None and self.graph is not None
        outcome = self.scheduler.fail(task_id, error)
        if outcome.retrying:
            self.scheduler.start(task_id)
            return "retrying"
        if self.planner is None:
            return "failed"
        before = {t.id for t in self.graph.tasks()} | {t.id for t in self.graph.archived()}
        try:
            result = replan(self.graph, self.planner, PlanContext(tools=tuple(tools)))
        except PlanError:
            return "failed"
        if influence is not None:
            for task in result.graph.tasks():
                if task.id not in before:
                    result.graph.mark_untrusted(task.id, influence)
        self.adopt(result.graph)
        return "replanned"

    def cancel_running(self, reason: str) -> None:
        """Put a task that was running when the run stopped back to ready (consistent state)."""
        if self.graph is None:
            return
        for task in self.graph.tasks():
            if task.status.value == "running":
                self.graph.retry(task.id)
                self.graph.notes.append(f"task {task.id!r} was interrupted: {reason}")

    def finished(self) -> bool:
        return self.graph is None or self.graph.is_finished()

    def succeeded(self) -> bool:
        return self.graph is not None and self.graph.succeeded()
