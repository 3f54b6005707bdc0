"""Memory and plan tools over small Protocols: unit tests on fakes, and the same flows on the
real ``memory.LongTermMemory`` (hash embedder, temporary store) and ``planners.TaskGraph``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentcore.tools import SideEffect, ToolRegistry
from agentcore.tools.builtin import MemoryStoreLike, PlanLike, memory_tools, plan_tools

# -- fakes ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FakeRecord:
    id: str
    kind: str
    text: str
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FakeHit:
    record: FakeRecord
    score: float


class FakeMemory:
    """Word-overlap search over a list (score = shared words / query words)."""

    def __init__(self) -> None:
        self.records: list[FakeRecord] = []

    def add(self, record: dict[str, Any]) -> FakeRecord:
        stored = FakeRecord(
            f"m{len(self.records) + 1}", record["kind"], record["text"], dict(record)
        )
        self.records.append(stored)
        return stored

    def search(self, query: str, k: int = 5) -> Sequence[FakeHit]:
        words = set(query.lower().split())
        hits = [
            FakeHit(r, len(words & set(r.text.lower().split())) / max(len(words), 1))
            for r in self.records
        ]
        return sorted((h for h in hits if h.score > 0), key=lambda h: -h.score)[:k]


@dataclasses.dataclass(frozen=True)
class FakeTask:
    id: str
    goal: str
    status: str = "ready"


class FakePlan:
    """A dict of tasks with the TaskGraph verbs and a strict state machine."""

    def __init__(self) -> None:
        self.tasks: dict[str, FakeTask] = {}
        self.deps: dict[str, list[str]] = {}
        self.notes: dict[str, Any] = {}

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    def render_text(self) -> str:
        return "\n".join(f"{t.id} [{t.status}] {t.goal}" for t in self.tasks.values())

    def task(self, task_id: str) -> FakeTask:
        if task_id not in self.tasks:
            raise KeyError(f"no task with id {task_id!r}")
        return self.tasks[task_id]

    def add_task(self, task: FakeTask, depends_on: Iterable[str] = ()) -> FakeTask:
        deps = list(depends_on)
        for dep in deps:
            self.task(dep)
        status = "pending" if any(self.tasks[d].status != "done" for d in deps) else "ready"
        self.tasks[task.id] = dataclasses.replace(task, status=status)
        self.deps[task.id] = deps
        return self.tasks[task.id]

    def _move(self, task_id: str, before: set[str], after: str) -> None:
        task = self.task(task_id)
        if task.status not in before:
            raise ValueError(f"cannot move {task_id!r} from {task.status!r} to {after!r}")
        self.tasks[task_id] = dataclasses.replace(task, status=after)

    def start(self, task_id: str) -> None:
        self._move(task_id, {"ready"}, "running")

    def complete(self, task_id: str, result: Any = None) -> None:
        self._move(task_id, {"running"}, "done")
        self.notes[task_id] = result

    def fail(self, task_id: str, error: str) -> None:
        self._move(task_id, {"running"}, "failed")
        self.notes[task_id] = error

    def skip(self, task_id: str, reason: str) -> None:
        self._move(task_id, {"pending", "ready"}, "skipped")
        self.notes[task_id] = reason

    def retry(self, task_id: str) -> None:
        self._move(task_id, {"running", "failed"}, "ready")


def test_fakes_satisfy_the_protocols() -> None:
    assert isinstance(FakeMemory(), MemoryStoreLike)
    assert isinstance(FakePlan(), PlanLike)


# -- memory --------------------------------------------------------------------------------


class TestMemoryToolsOnAFake:
    def test_remember_then_recall(self) -> None:
        store = FakeMemory()
        registry = ToolRegistry(memory_tools(store, agent="ada"))
        assert registry.get("remember").side_effects == {SideEffect.WRITES}
        assert registry.get("recall").side_effects == {SideEffect.READS}
        saved = registry.call_sync(
            "remember", {"text": "The user likes green tea", "tags": ["user", "taste"]}
        )
        assert saved.content == "remembered fact m1"
        registry.call_sync("remember", {"text": "Book early in summer", "kind": "lesson"})
        assert store.records[0].extra == {
            "kind": "fact",
            "text": "The user likes green tea",
            "agent": "ada",
            "source": "tool:remember",
            "trust": "agent",
            "attributes": {"tags": "user,taste"},
        }
        assert "attributes" not in store.records[1].extra
        found = registry.call_sync("recall", {"query": "green tea user preference", "k": 3})
        assert found.content == "1. [fact m1] (score 0.75) The user likes green tea"
        assert registry.call_sync("recall", {"query": "bananas"}).content == "no memories found"

    def test_arguments_are_bounded(self) -> None:
        registry = ToolRegistry(memory_tools(FakeMemory()))
        assert registry.call_sync("recall", {"query": "x", "k": 50}).error_kind == "arguments"
        assert registry.call_sync("remember", {"text": ""}).error_kind == "arguments"
        wrong_kind = registry.call_sync("remember", {"text": "x", "kind": "rumour"})
        assert "kind: got 'rumour'; expected one of" in wrong_kind.content
        too_many = registry.call_sync("remember", {"text": "x", "tags": ["a"] * 9})
        assert too_many.error_kind == "arguments"


@pytest.fixture
def long_term(tmp_path: Path) -> Iterator[Any]:
    from agentcore.memory import HashEmbeddingFunction, LongTermMemory

    store = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    yield store
    store.close()


class TestMemoryToolsOnLongTermMemory:
    def test_remember_then_recall(self, long_term: Any) -> None:
        as_object: object = long_term
        assert isinstance(as_object, MemoryStoreLike)
        registry = ToolRegistry(memory_tools(long_term, agent="ada"))
        first = registry.call_sync(
            "remember", {"text": "The user likes green tea", "tags": ["user"]}
        )
        registry.call_sync("remember", {"text": "Paris is the capital of France"})
        registry.call_sync(
            "remember", {"text": "Always check the weather before booking", "kind": "lesson"}
        )
        assert first.ok and first.content.startswith("remembered fact ")
        record_id = first.content.rsplit(" ", 1)[1]
        stored = long_term.get(record_id)
        assert stored.text == "The user likes green tea"
        assert (stored.agent, stored.source, stored.trust.value) == (
            "ada",
            "tool:remember",
            "agent",
        )
        assert stored.attributes == {"tags": "user"}
        found = registry.call_sync("recall", {"query": "what tea does the user like", "k": 2})
        lines = found.content.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith(f"1. [fact {record_id}] (score ")
        assert lines[0].endswith(") The user likes green tea")


# -- plan ----------------------------------------------------------------------------------


def fake_task(task_id: str, goal: str) -> FakeTask:
    return FakeTask(task_id, goal)


class TestPlanToolsOnAFake:
    def test_show_add_update(self) -> None:
        plan = FakePlan()
        registry = ToolRegistry(plan_tools(plan, make_task=fake_task))
        assert registry.call_sync("plan_show", {}).content == "(the plan is empty)"
        assert registry.call_sync("plan_add_task", {"goal": "Find flights"}).content == (
            "added task t1: Find flights"
        )
        added = registry.call_sync("plan_add_task", {"goal": "Book hotel", "depends_on": ["t1"]})
        assert added.content == "added task t2: Book hotel (after t1)"
        done = registry.call_sync(
            "plan_update_task", {"task_id": "t1", "status": "done", "note": "AF123"}
        )
        assert done.content == "task t1 is now done"  # a ready task is started, then completed
        assert plan.notes["t1"] == "AF123"
        assert registry.call_sync("plan_show", {}).content == (
            "t1 [done] Find flights\nt2 [pending] Book hotel"
        )

    def test_every_status(self) -> None:
        plan = FakePlan()
        registry = ToolRegistry(plan_tools(plan, make_task=fake_task))
        for goal in ("a", "b", "c"):
            registry.call_sync("plan_add_task", {"goal": goal})

        def move(task_id: str, status: str, note: str = "") -> str:
            arguments = {"task_id": task_id, "status": status, "note": note}
            return registry.call_sync("plan_update_task", arguments).content

        assert move("t1", "running") == "task t1 is now running"
        assert move("t1", "failed", "timeout") == "task t1 is now failed"
        assert plan.notes["t1"] == "timeout"
        assert move("t1", "ready") == "task t1 is now ready"
        assert move("t2", "skipped", "not needed") == "task t2 is now skipped"
        assert move("t3", "failed") == "task t3 is now failed"
        assert plan.notes["t3"] == "failed"

    def test_the_plans_own_errors_come_back(self) -> None:
        registry = ToolRegistry(plan_tools(FakePlan(), make_task=fake_task))
        unknown = registry.call_sync("plan_update_task", {"task_id": "t9", "status": "done"})
        assert not unknown.ok and "no task with id 't9'" in unknown.content
        bad = registry.call_sync("plan_update_task", {"task_id": "t1", "status": "finished"})
        assert bad.error_kind == "arguments"
        assert "status: got 'finished'; expected one of \"running\"" in bad.content

    def test_side_effects(self) -> None:
        effects = {t.name: t.side_effects for t in plan_tools(FakePlan(), make_task=fake_task)}
        assert effects == {
            "plan_show": {SideEffect.READS},
            "plan_add_task": {SideEffect.WRITES},
            "plan_update_task": {SideEffect.WRITES},
        }


class TestPlanToolsOnTaskGraph:
    def test_a_small_plan_end_to_end(self) -> None:
        from agentcore.planners import TaskGraph

        graph = TaskGraph("weekend trip")
        assert isinstance(graph, PlanLike)
        registry = ToolRegistry(plan_tools(graph))

        def call(name: str, **arguments: Any) -> str:
            return registry.call_sync(name, arguments).content

        assert call("plan_add_task", goal="Find flights") == "added task t1: Find flights"
        assert call("plan_add_task", goal="Book hotel", depends_on=["t1"]) == (
            "added task t2: Book hotel (after t1)"
        )
        refused = call("plan_update_task", task_id="t2", status="running")
        assert refused.startswith("Error: tool 'plan_update_task' failed: InvalidTransitionError")
        assert "'pending'" in refused
        assert call("plan_update_task", task_id="t1", status="done", note="AF123") == (
            "task t1 is now done"
        )
        assert graph.task("t1").result == "AF123"
        assert graph.task("t2").status.value == "ready"
        assert call("plan_update_task", task_id="t2", status="skipped", note="staying home") == (
            "task t2 is now skipped"
        )
        shown = call("plan_show")
        assert "t1: Find flights" in shown and "t2: Book hotel" in shown
        assert "UnknownTaskError" in call("plan_add_task", goal="x", depends_on=["t7"])
        assert "UnknownTaskError" in call("plan_update_task", task_id="t7", status="done")
