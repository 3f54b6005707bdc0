"""Errors raised by the planners package.

Owns the exception hierarchy; every message names the offending task, field or value and says
what was expected. Never catches anything itself.
"""

from __future__ import annotations

__all__ = [
    "CycleError",
    "InvalidTransitionError",
    "PlanError",
    "PlanLimitError",
    "PlanValidationError",
    "UnknownTaskError",
]


class PlanError(Exception):
    """Base class: a plan or task graph could not be built, changed or used as asked."""


class UnknownTaskError(PlanError, KeyError):
    """A task id was used that the graph does not hold."""

    def __init__(self, task_id: str, known: int) -> None:
        self.task_id = task_id
        super().__init__(f"no task with id {task_id!r} in this graph ({known} tasks)")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class CycleError(PlanError):
    """A dependency would make the graph cyclic; ``cycle`` lists the ids, first id repeated last."""

    def __init__(self, cycle: list[str], context: str = "") -> None:
        self.cycle = cycle
        path = " -> ".join(cycle)
        prefix = f"{context}: " if context else ""
        super().__init__(
            f"{prefix}dependency cycle {path}; a task graph must be acyclic "
            "(remove one of these dependencies)"
        )


class InvalidTransitionError(PlanError):
    """A status change that the task state machine does not allow."""

    def __init__(self, task_id: str, action: str, status: str, allowed: str) -> None:
        self.task_id = task_id
        self.action = action
        self.status = status
        super().__init__(
            f"cannot {action} task {task_id!r}: its status is {status!r}, expected {allowed}"
        )


class PlanValidationError(PlanError):
    """A generated or loaded plan is malformed (duplicate ids, bad JSON, wrong fields)."""


class PlanLimitError(PlanError):
    """A plan or refinement would exceed the configured depth or size limit."""
