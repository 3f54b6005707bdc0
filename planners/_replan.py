"""Replanning: rewrite only the failed part of a graph, keep everything already done.

Owns ``replan`` and ``ReplanResult``. Each failed task is handed to a planner's ``refine``
with a note saying why it failed; the subgraph it returns takes the failed task's place
(same dependencies in, same dependants out), and dependants that were skipped because of the
failure become pending again. Done tasks, their results and unrelated tasks are untouched.
Never executes tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentcore.planners._graph import TaskGraph
from agentcore.planners._planner import PlanContext, Planner
from agentcore.planners._task import TaskStatus

__all__ = ["ReplanResult", "replan"]


@dataclass(frozen=True)
class ReplanResult:
    """The rewritten graph and, per replaced failed task, the ids that replaced it."""

    graph: TaskGraph
    replaced: dict[str, list[str]]


def replan(
    graph: TaskGraph,
    planner: Planner,
    context: PlanContext | None = None,
    *,
    task_ids: list[str] | None = None,
) -> ReplanResult:
    """Replace failed tasks (all of them, or ``task_ids``) with fresh subplans.

    Returns a new graph; ``graph`` itself is not modified. Raises whatever the planner
    raises (for instance ``PlanLimitError`` when a task was replanned ``max_depth`` times).
    """
    ctx = context or PlanContext()
    targets = task_ids
    if targets is None:
        targets = [
            t for t in graph.topological_order() if graph.task(t).status is TaskStatus.FAILED
        ]
    out = graph
    replaced: dict[str, list[str]] = {}
    for task_id in targets:
        task = out.task(task_id)
        note = f"An earlier attempt at {task.goal!r} failed"
        note += f": {task.error}" if task.error else ""
        before = set(out)
        out = planner.refine(out, task_id, ctx.with_note(note + ". Plan another way to do it."))
        replaced[task_id] = [t for t in out if t not in before]
    if out is graph:
        out = graph.copy()
    return ReplanResult(out, replaced)
