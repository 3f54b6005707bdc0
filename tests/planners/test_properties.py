"""Property tests on random DAGs: scheduling respects dependencies, status propagation matches a
from-scratch recomputation, replanning never loses finished results, save/load round-trips,
cycles are always rejected with a real cycle named, and any sequence of edits and transitions
(a state machine) keeps all of that true."""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agentcore.planners import (
    CycleError,
    InvalidTransitionError,
    PlannerLimits,
    RetryPolicy,
    RuleBasedPlanner,
    RuleTemplate,
    Scheduler,
    Task,
    TaskGraph,
    TaskStatus,
    replan,
)

S = TaskStatus
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 30) -> TaskGraph:
    """Tasks first, then dependencies in a random order (so ready tasks turn pending)."""
    n = draw(st.integers(1, max_nodes))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    edges = list(dict.fromkeys((min(a, b), max(a, b)) for a, b in pairs if a != b))
    g = TaskGraph("random")
    for i in range(n):
        g.add_task(
            Task(id=f"t{i}", goal=f"task {i}", max_attempts=draw(st.sampled_from([None, 1, 2])))
        )
    for a, b in draw(st.permutations(edges)):
        g.add_dependency(f"t{b}", f"t{a}")
    return g


def expected_status(g: TaskGraph, tid: str) -> S | None:
    """What an open or blocked task's status must be, computed from scratch."""
    task = g.task(tid)
    if task.status in (S.RUNNING, S.DONE, S.FAILED) or (
        task.status is S.SKIPPED and task.blocked_by is None
    ):
        return None  # set by an explicit transition, not derived
    preds = [g.task(p).status for p in g.dependencies(tid)]
    if any(p in (S.FAILED, S.SKIPPED) for p in preds):
        return S.SKIPPED
    return S.READY if all(p is S.DONE for p in preds) else S.PENDING


def check_invariants(g: TaskGraph) -> None:
    assert nx.is_directed_acyclic_graph(g.to_networkx())
    for task in g.tasks():
        want = expected_status(g, task.id)
        if want is not None:
            assert task.status is want, (task.id, task.status, want)
        if task.status in (S.RUNNING, S.DONE, S.FAILED):
            assert all(g.task(p).status is S.DONE for p in g.dependencies(task.id))
    ready = g.ready_ids()
    assert len(ready) == len(set(ready))
    assert set(ready) == {t.id for t in g.tasks() if t.status is S.READY}


def drive(g: TaskGraph, data: st.DataObject, fail_rate: int, steps: int | None = None) -> None:
    """Random interleaving of starts, successes and failures through a Scheduler."""
    sched = Scheduler(g, RetryPolicy(max_attempts=2))
    running: list[str] = []
    taken = 0
    while (g.ready_ids() or running) and (steps is None or taken < steps):
        taken += 1
        ready = g.ready_ids()
        if ready and (not running or data.draw(st.booleans())):
            tid = data.draw(st.sampled_from(ready))
            for dep in g.dependencies(tid):
                assert g.task(dep).status is S.DONE  # scheduling respects dependencies
            sched.start(tid)
            running.append(tid)
        else:
            tid = running.pop(data.draw(st.integers(0, len(running) - 1)))
            if data.draw(st.integers(0, 99)) < fail_rate:
                sched.fail(tid, f"error in {tid}")
            else:
                sched.succeed(tid, {"by": tid})
        check_invariants(g)


@SETTINGS
@given(g=dags(), data=st.data(), fail_rate=st.sampled_from([0, 10, 40]))
def test_scheduling_respects_dependencies(
    g: TaskGraph, data: st.DataObject, fail_rate: int
) -> None:
    check_invariants(g)
    finished_order: list[str] = []
    original_complete = g.complete

    def complete(task_id: str, result: Any = None) -> list[str]:
        finished_order.append(task_id)
        return original_complete(task_id, result)

    g.complete = complete  # type: ignore[method-assign]
    drive(g, data, fail_rate)
    assert g.is_finished()
    position = {t: i for i, t in enumerate(finished_order)}
    for a, b in g.edges():
        if b in position:
            assert a in position and position[a] < position[b]
    view = g.to_networkx()
    for task in g.tasks():
        if task.status is S.SKIPPED:  # only ever because something upstream failed
            assert any(g.task(a).status is S.FAILED for a in nx.ancestors(view, task.id))
    if fail_rate == 0:
        assert g.succeeded()


@SETTINGS
@given(g=dags(), data=st.data(), chain_len=st.integers(1, 3))
def test_replanning_never_loses_finished_results(
    g: TaskGraph, data: st.DataObject, chain_len: int
) -> None:
    drive(g, data, fail_rate=30, steps=data.draw(st.integers(0, 60)))
    before = {t.id: t for t in g.tasks()}
    failed = [t for t, task in before.items() if task.status is S.FAILED]
    planner = RuleBasedPlanner(
        [RuleTemplate.chain("task", [f"redo part {k}" for k in range(chain_len)])],
        PlannerLimits(max_depth=5, max_tasks=10_000),
    )
    result = replan(g, planner)
    new = result.graph
    assert sorted(result.replaced) == sorted(failed)
    for tid, task in before.items():
        if task.status is S.DONE:
            assert new.task(tid) == task  # same status, result and attempts
        elif task.status in (S.RUNNING, S.READY, S.PENDING):
            assert new.task(tid).status is task.status
    assert not [t for t in new.tasks() if t.status is S.FAILED]
    for old_id, new_ids in result.replaced.items():
        assert old_id not in new and len(new_ids) == chain_len
        assert {new.task(t).parent for t in new_ids} == {old_id}
        old_deps = set(g.dependencies(old_id))
        assert set(new.dependencies(new_ids[0])) == old_deps
        for succ in g.dependants(old_id):
            assert new_ids[-1] in new.dependencies(succ)
    check_invariants(new)
    assert g == TaskGraph.from_json(g.to_json())  # replan did not touch its input
    # and the rewritten graph can now run to the end
    for tid in [t.id for t in new.tasks() if t.status is S.RUNNING]:
        new.complete(tid)
    drive(new, data, fail_rate=0)
    assert new.succeeded()
    for tid, task in before.items():
        if task.status is S.DONE:
            assert new.task(tid).result == task.result


@SETTINGS
@given(g=dags(), data=st.data(), replanned=st.booleans())
def test_save_load_round_trips(g: TaskGraph, data: st.DataObject, replanned: bool) -> None:
    drive(g, data, fail_rate=25, steps=data.draw(st.integers(0, 40)))
    if replanned:
        g = replan(g, RuleBasedPlanner([RuleTemplate.chain("task", ["again"])])).graph
    back = TaskGraph.from_json(g.to_json())
    assert back == g
    assert back.diff(g).is_empty
    assert back.ready_ids() == g.ready_ids()
    assert back.archived() == g.archived()
    assert back.render_text() == g.render_text()
    check_invariants(back)


@SETTINGS
@given(g=dags(), data=st.data())
def test_back_edges_are_rejected_with_a_real_cycle(g: TaskGraph, data: st.DataObject) -> None:
    view = g.to_networkx()
    reachable = [(a, b) for a in g for b in nx.descendants(view, a)]
    if not reachable:
        return
    a, b = data.draw(st.sampled_from(reachable))  # b depends (transitively) on a
    snapshot = g.to_json()
    with pytest.raises(CycleError) as info:
        g.add_dependency(a, b)  # a would now wait for b
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] == b and cycle[1] == a
    for x, y in itertools.pairwise(cycle[1:]):
        assert view.has_edge(x, y)
    assert g.to_json() == snapshot


class GraphMachine(RuleBasedStateMachine):
    """Any mix of edits and transitions keeps every derived status equal to a recomputation."""

    def __init__(self) -> None:
        super().__init__()
        self.g = TaskGraph("machine")
        self.n = 0
        self.results: dict[str, Any] = {}

    def ids(self, *statuses: S) -> list[str]:
        return [t.id for t in self.g.tasks() if not statuses or t.status in statuses]

    @rule(data=st.data())
    def add_task(self, data: st.DataObject) -> None:
        existing = self.ids()
        deps = data.draw(st.lists(st.sampled_from(existing), max_size=3)) if existing else []
        self.n += 1
        self.g.add_task(Task(id=f"n{self.n}", goal=f"node {self.n}"), deps)

    @precondition(lambda self: len(self.g) >= 2)
    @rule(data=st.data())
    def add_dependency(self, data: st.DataObject) -> None:
        a, b = data.draw(st.lists(st.sampled_from(self.ids()), min_size=2, max_size=2, unique=True))
        try:
            self.g.add_dependency(a, b)
        except (CycleError, InvalidTransitionError):
            pass

    @precondition(lambda self: bool(self.g.ready_ids()))
    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        self.g.start(data.draw(st.sampled_from(self.g.ready_ids())))

    @precondition(lambda self: bool(self.ids(S.RUNNING)))
    @rule(data=st.data(), ok=st.booleans())
    def finish(self, data: st.DataObject, ok: bool) -> None:
        tid = data.draw(st.sampled_from(self.ids(S.RUNNING)))
        if ok:
            self.g.complete(tid, tid)
            self.results[tid] = tid
        else:
            self.g.fail(tid, "no")

    @precondition(lambda self: bool(self.ids(S.FAILED, S.RUNNING)))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        self.g.retry(data.draw(st.sampled_from(self.ids(S.FAILED, S.RUNNING))))

    @precondition(lambda self: bool(self.ids(S.PENDING, S.READY)))
    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        self.g.skip(data.draw(st.sampled_from(self.ids(S.PENDING, S.READY))), "not needed")

    @precondition(lambda self: bool(self.ids(S.PENDING, S.READY, S.DONE, S.FAILED, S.SKIPPED)))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(self.ids(S.PENDING, S.READY, S.DONE, S.FAILED, S.SKIPPED)))
        self.g.remove_task(tid)
        self.results.pop(tid, None)

    @precondition(lambda self: bool(self.ids(S.PENDING, S.READY, S.FAILED, S.SKIPPED)))
    @rule(data=st.data(), size=st.integers(1, 3))
    def replace(self, data: st.DataObject, size: int) -> None:
        tid = data.draw(st.sampled_from(self.ids(S.PENDING, S.READY, S.FAILED, S.SKIPPED)))
        sub = TaskGraph()
        for k in range(size):
            sub.add_task(Task(id=f"s{k}", goal="sub"), [f"s{k - 1}"] if k else [])
        self.g.replace_task(tid, sub)

    @invariant()
    def derived_statuses_are_right(self) -> None:
        check_invariants(self.g)

    @invariant()
    def results_are_kept(self) -> None:
        for tid, value in self.results.items():
            assert self.g.task(tid).status is S.DONE and self.g.task(tid).result == value

    @invariant()
    def round_trips(self) -> None:
        back = TaskGraph.from_json(self.g.to_json())
        assert back == self.g and back.ready_ids() == self.g.ready_ids()


GraphMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_graph_machine = GraphMachine.TestCase
