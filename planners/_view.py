"""What readers of a task graph see: the read-only protocol ``GraphView``.

Owns the interface that the diff and the renderers need of a graph (goal, live and archived
tasks, dependencies, edges, status counts, a topological order), so that they sit below
:class:`~agentcore.planners._graph.TaskGraph` and the graph can offer ``diff`` and
``render_text`` without an import cycle. Never holds or changes a graph.
"""

from __future__ import annotations

from typing import Protocol

from agentcore.planners._task import Task, TaskStatus

__all__ = ["GraphView"]


class GraphView(Protocol):
    """A task graph seen read-only (:class:`~agentcore.planners.TaskGraph` is one)."""

    @property
    def goal(self) -> str: ...

    def __len__(self) -> int: ...

    def tasks(self) -> list[Task]:
        """All live tasks, in insertion order."""
        ...

    def archived(self) -> list[Task]:
        """Tasks replaced by a refinement or a replan (their last state)."""
        ...

    def dependencies(self, task_id: str) -> list[str]:
        """Ids of the tasks ``task_id`` waits for, in insertion order."""
        ...

    def edges(self) -> list[tuple[str, str]]:
        """Every dependency as ``(dependency, dependant)``."""
        ...

    def counts(self) -> dict[TaskStatus, int]:
        """How many live tasks are in each status."""
        ...

    def topological_order(self) -> list[str]:
        """Task ids in a dependency-respecting order."""
        ...
