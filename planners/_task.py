"""The task: one typed node of a task graph.

Owns ``Task``, ``TaskStatus`` and ``Assignee``. A task is an immutable value; the task graph
replaces it with an updated copy on every status change, so a task handed out never changes
under the caller. Never decides status transitions (that is the graph's job).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TASK_ID_PATTERN", "Assignee", "Task", "TaskStatus"]

#: Task ids are short and printable so they read well in text and Mermaid renderings.
TASK_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$"


class TaskStatus(StrEnum):
    """Where a task stands.

    ``pending``: some dependency is not done yet. ``ready``: every dependency is done.
    ``running``: started. ``done``: finished with a result. ``failed``: finished with an error
    and no retry left. ``skipped``: will not run (blocked by a failed dependency, or skipped
    on purpose).
    """

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.SKIPPED)


class Assignee(BaseModel):
    """Who carries a task out: a tool (by registry name) or a sub-agent (by name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tool", "agent"]
    name: str = Field(min_length=1, max_length=128)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class Task(BaseModel):
    """One unit of work in a task graph. Dependencies live on the graph's edges, not here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=TASK_ID_PATTERN)
    goal: str = Field(min_length=1)
    status: TaskStatus = TaskStatus.PENDING
    assignee: Assignee | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None
    attempts: int = Field(default=0, ge=0)
    #: Retry budget for this task; ``None`` means the scheduler's policy decides.
    max_attempts: int | None = Field(default=None, ge=1)
    #: Id of the task this one was refined (or replanned) out of; ``None`` at the top level.
    parent: str | None = None
    #: Refinement depth: 0 for top-level tasks, parent depth + 1 for subtasks.
    depth: int = Field(default=0, ge=0)
    #: For a task skipped because a dependency failed: the id of the failed task.
    blocked_by: str | None = None
    #: The untrusted content this task was derived from (``tool:read_file``, ``web``...): a
    #: step a tool added after reading a file, a replan after such a failure. ``None`` for
    #: steps planned from the goal. Agents show such a step as data and ask before it acts.
    untrusted_source: str | None = Field(default=None, max_length=200)
