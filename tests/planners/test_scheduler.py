"""Scheduler: retry budgets, failure outcomes and the async driver."""

from __future__ import annotations

import asyncio

import pytest

from agentcore.planners import RetryPolicy, Scheduler, Task, TaskGraph, TaskStatus


def chain(n: int) -> TaskGraph:
    g = TaskGraph("chain")
    for i in range(n):
        g.add_task(Task(id=f"t{i}", goal=f"step {i}"), [f"t{i - 1}"] if i else [])
    return g


def fan(n: int) -> TaskGraph:
    g = TaskGraph("fan")
    g.add_task(Task(id="root", goal="root"))
    for i in range(n):
        g.add_task(Task(id=f"leaf{i}", goal=f"leaf {i}"), ["root"])
    g.add_task(Task(id="join", goal="join"), [f"leaf{i}" for i in range(n)])
    return g


def test_retry_within_budget_then_fail() -> None:
    s = Scheduler(chain(2), RetryPolicy(max_attempts=2))
    s.start("t0")
    first = s.fail("t0", "flaky")
    assert first.retrying and first.attempts == 1 and first.skipped == []
    assert s.graph.task("t0").status is TaskStatus.READY
    s.start("t0")
    final = s.fail("t0", "flaky again")
    assert not final.retrying and final.attempts == 2 and final.skipped == ["t1"]
    assert s.is_finished()
    report = s.report()
    assert report.failed == ["t0"] and report.skipped == ["t1"] and not report.succeeded


def test_task_budget_overrides_policy() -> None:
    g = TaskGraph()
    g.add_task(Task(id="x", goal="x", max_attempts=3))
    s = Scheduler(g, RetryPolicy.no_retry())
    for _ in range(2):
        s.start("x")
        assert s.fail("x", "e").retrying
    s.start("x")
    assert not s.fail("x", "e").retrying


def test_next_batch_limit_and_order() -> None:
    s = Scheduler(fan(5))
    s.start("root")
    assert s.succeed("root") == [f"leaf{i}" for i in range(5)]
    assert [t.id for t in s.next_batch(2)] == ["leaf0", "leaf1"]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts is 0"):
        RetryPolicy(max_attempts=0)
    assert RetryPolicy.patient().max_attempts > RetryPolicy.standard().max_attempts


async def test_run_respects_dependencies_and_concurrency() -> None:
    g = fan(6)
    live = 0
    peak = 0
    order: list[str] = []

    async def execute(task: Task) -> str:
        nonlocal live, peak
        for dep in g.dependencies(task.id):
            assert g.task(dep).status is TaskStatus.DONE
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.01)
        live -= 1
        order.append(task.id)
        return task.id.upper()

    report = await Scheduler(g).run(execute, concurrency=3)
    assert report.succeeded and len(report.done) == 8
    assert peak == 3  # six independent leaves ran three at a time
    assert order[0] == "root" and order[-1] == "join"
    assert g.task("leaf3").result == "LEAF3"


async def test_run_retries_then_blocks() -> None:
    g = chain(3)
    calls: dict[str, int] = {}

    async def execute(task: Task) -> None:
        calls[task.id] = calls.get(task.id, 0) + 1
        if task.id == "t1":
            raise RuntimeError("always broken")

    report = await Scheduler(g, RetryPolicy(max_attempts=3)).run(execute)
    assert calls == {"t0": 1, "t1": 3}
    assert report.done == ["t0"] and report.failed == ["t1"] and report.skipped == ["t2"]
    assert g.task("t1").error == "RuntimeError: always broken"
    assert report.attempts == 4


async def test_run_recovers_from_a_flaky_task() -> None:
    g = chain(2)
    failures = iter([True, False])

    async def execute(task: Task) -> int:
        if task.id == "t0" and next(failures):
            raise TimeoutError("slow disk")
        return 1

    report = await Scheduler(g).run(execute)
    assert report.succeeded and g.task("t0").attempts == 2


async def test_cancelling_run_cancels_tasks_in_flight() -> None:
    g = fan(2)
    started = asyncio.Event()
    cancelled: list[str] = []

    async def execute(task: Task) -> None:
        if task.id == "root":
            return
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(task.id)
            raise

    runner = asyncio.ensure_future(Scheduler(g).run(execute))
    await started.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert sorted(cancelled) == ["leaf0", "leaf1"]


async def test_bad_concurrency() -> None:
    async def execute(task: Task) -> None:
        return None

    with pytest.raises(ValueError, match="concurrency is 0"):
        await Scheduler(chain(1)).run(execute, concurrency=0)
