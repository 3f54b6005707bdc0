"""Scheduling: which tasks run next, retry budgets, and an async driver.

Owns ``RetryPolicy`` (attempts per task, with named presets), ``FailureOutcome`` and
``Scheduler``, which hands out ready tasks (mutually independent, so they may run
concurrently), records results, retries a failed task while its budget lasts and otherwise
marks it failed, which blocks its dependants. ``Scheduler.run`` drives a graph to the end with
a caller-supplied executor. Never executes a tool itself and never replans (see ``replan``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentcore.planners._graph import TaskGraph
from agentcore.planners._task import Task, TaskStatus

__all__ = ["FailureOutcome", "RetryPolicy", "RunReport", "Scheduler"]


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts``: how many times a task may run before a failure is final.
    A task's own ``max_attempts`` overrides it."""

    max_attempts: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts is {self.max_attempts!r}, expected >= 1")

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    @classmethod
    def standard(cls) -> RetryPolicy:
        return cls()

    @classmethod
    def patient(cls) -> RetryPolicy:
        return cls(max_attempts=5)

    def budget(self, task: Task) -> int:
        return task.max_attempts if task.max_attempts is not None else self.max_attempts


@dataclass(frozen=True)
class FailureOutcome:
    """What a reported failure led to: a retry, or a final failure that skipped dependants."""

    task_id: str
    retrying: bool
    attempts: int
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunReport:
    """The end state of ``Scheduler.run``."""

    done: list[str]
    failed: list[str]
    skipped: list[str]
    attempts: int

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.skipped


class Scheduler:
    """Drives one ``TaskGraph`` (mutating it in place) under a ``RetryPolicy``."""

    def __init__(self, graph: TaskGraph, policy: RetryPolicy | None = None) -> None:
        self.graph = graph
        self.policy = policy or RetryPolicy()

    def next_batch(self, limit: int | None = None) -> list[Task]:
        """Ready tasks (in the order they became ready), at most ``limit`` of them."""
        ready = self.graph.ready_ids()
        if limit is not None:
            ready = ready[:limit]
        return [self.graph.task(t) for t in ready]

    def start(self, task_id: str) -> Task:
        return self.graph.start(task_id)

    def succeed(self, task_id: str, result: Any = None) -> list[str]:
        """Record a result; returns ids that became ready."""
        return self.graph.complete(task_id, result)

    def fail(self, task_id: str, error: str) -> FailureOutcome:
        """Record a failure: retry while the budget lasts, else fail and block dependants."""
        task = self.graph.task(task_id)
        if task.attempts < self.policy.budget(task):
            self.graph.retry(task_id)
            return FailureOutcome(task_id, retrying=True, attempts=task.attempts)
        skipped = self.graph.fail(task_id, error)
        return FailureOutcome(task_id, retrying=False, attempts=task.attempts, skipped=skipped)

    def is_finished(self) -> bool:
        return self.graph.is_finished()

    def report(self) -> RunReport:
        by: dict[TaskStatus, list[str]] = {s: [] for s in TaskStatus}
        attempts = 0
        for task in self.graph.tasks():
            by[task.status].append(task.id)
            attempts += task.attempts
        return RunReport(
            by[TaskStatus.DONE], by[TaskStatus.FAILED], by[TaskStatus.SKIPPED], attempts
        )

    async def run(
        self, execute: Callable[[Task], Awaitable[Any]], *, concurrency: int = 4
    ) -> RunReport:
        """Run every reachable task through ``execute`` (its return value is the result, an
        exception is a failure), at most ``concurrency`` at a time. Returns when nothing is
        ready or running. Cancelling ``run`` cancels the tasks in flight."""
        if concurrency < 1:
            raise ValueError(f"concurrency is {concurrency!r}, expected >= 1")
        running: dict[asyncio.Task[Any], str] = {}
        try:
            while True:
                free = concurrency - len(running)
                for task in self.next_batch(free) if free > 0 else []:
                    started = self.start(task.id)
                    running[asyncio.ensure_future(execute(started))] = task.id
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for fut in finished:
                    task_id = running.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        self.succeed(task_id, fut.result())
                    else:
                        self.fail(task_id, f"{type(exc).__name__}: {exc}")
        finally:
            for fut in running:
                fut.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        return self.report()
