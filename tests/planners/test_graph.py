"""TaskGraph structure and state machine: building, cycles, transitions, propagation, splicing."""

from __future__ import annotations

import pytest

from agentcore.planners import (
    CycleError,
    InvalidTransitionError,
    PlanError,
    Task,
    TaskGraph,
    TaskStatus,
    UnknownTaskError,
)

S = TaskStatus


def diamond() -> TaskGraph:
    """a -> (b, c) -> d"""
    g = TaskGraph("diamond")
    g.add_task(Task(id="a", goal="first"))
    g.add_task(Task(id="b", goal="left"), ["a"])
    g.add_task(Task(id="c", goal="right"), ["a"])
    g.add_task(Task(id="d", goal="join"), ["b", "c"])
    return g


def status(g: TaskGraph) -> dict[str, str]:
    return {t.id: t.status.value for t in g.tasks()}


class TestBuilding:
    def test_roots_are_ready_and_others_pending(self) -> None:
        g = diamond()
        assert status(g) == {"a": "ready", "b": "pending", "c": "pending", "d": "pending"}
        assert g.ready_ids() == ["a"]
        assert g.dependencies("d") == ["b", "c"]
        assert g.dependants("a") == ["b", "c"]
        assert len(g) == 4 and "a" in g and "z" not in g

    def test_duplicate_id_rejected(self) -> None:
        g = diamond()
        with pytest.raises(PlanError, match="'a' is already used"):
            g.add_task(Task(id="a", goal="again"))

    def test_unknown_dependency_names_the_id(self) -> None:
        g = diamond()
        with pytest.raises(UnknownTaskError, match="'nope'"):
            g.add_task(Task(id="e", goal="x"), ["nope"])
        assert "e" not in g

    def test_cycle_rejected_with_the_cycle_named(self) -> None:
        g = diamond()
        with pytest.raises(CycleError) as info:
            g.add_dependency("a", "d")
        cycle = info.value.cycle
        assert cycle[0] == cycle[-1] == "d"
        assert cycle[1] == "a" and cycle[-2] in ("b", "c")
        assert "d -> a ->" in str(info.value)
        assert g.dependencies("a") == []  # the graph is unchanged

    def test_self_dependency_rejected(self) -> None:
        g = diamond()
        with pytest.raises(CycleError, match="itself"):
            g.add_dependency("b", "b")

    def test_add_dependency_makes_ready_task_pending(self) -> None:
        g = diamond()
        g.add_task(Task(id="e", goal="independent"))
        assert g.task("e").status is S.READY
        g.add_dependency("e", "d")
        assert g.task("e").status is S.PENDING
        assert "e" not in g.ready_ids()

    def test_cannot_add_unfinished_dependency_to_running_task(self) -> None:
        g = diamond()
        g.add_task(Task(id="e", goal="x"))
        g.start("a")
        with pytest.raises(InvalidTransitionError, match="'running'"):
            g.add_dependency("a", "e")

    def test_new_task_must_be_fresh(self) -> None:
        g = TaskGraph()
        with pytest.raises(InvalidTransitionError, match="expected 'pending' or 'ready'"):
            g.add_task(Task(id="x", goal="x", status=S.DONE))

    def test_topological_order_respects_edges(self) -> None:
        g = diamond()
        order = g.topological_order()
        for a, b in g.edges():
            assert order.index(a) < order.index(b)

    def test_task_ids_are_validated(self) -> None:
        with pytest.raises(ValueError, match="id"):
            Task(id="has space", goal="x")


class TestTransitions:
    def test_complete_releases_dependants_when_all_done(self) -> None:
        g = diamond()
        g.start("a")
        assert g.task("a").attempts == 1
        assert g.complete("a", {"n": 1}) == ["b", "c"]
        g.start("b")
        assert g.complete("b", 2) == []  # d still waits for c
        g.start("c")
        assert g.complete("c", 3) == ["d"]
        assert g.task("a").result == {"n": 1}
        g.start("d")
        g.complete("d")
        assert g.succeeded() and g.is_finished()

    @pytest.mark.parametrize(
        ("action", "args"),
        [("start", ()), ("complete", (1,)), ("fail", ("e",)), ("retry", ())],
    )
    def test_illegal_transitions_name_status_and_expectation(
        self, action: str, args: tuple[object, ...]
    ) -> None:
        g = diamond()
        with pytest.raises(InvalidTransitionError) as info:
            getattr(g, action)("d", *args)
        assert "'d'" in str(info.value) and "'pending'" in str(info.value)

    def test_unknown_task(self) -> None:
        with pytest.raises(UnknownTaskError, match="no task with id 'x'"):
            diamond().start("x")

    def test_fail_blocks_all_dependants_transitively(self) -> None:
        g = diamond()
        g.start("a")
        skipped = g.fail("a", "disk full")
        assert set(skipped) == {"b", "c", "d"}
        assert all(g.task(t).blocked_by == "a" for t in skipped)
        assert g.task("a").error == "disk full"
        assert g.is_finished() and not g.succeeded()
        assert g.ready_ids() == []

    def test_failure_on_one_branch_blocks_join_but_not_sibling(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a")
        g.start("b")
        assert g.fail("b", "boom") == ["d"]
        assert g.task("c").status is S.READY
        g.start("c")
        assert g.complete("c") == []  # d stays blocked
        assert g.task("d").status is S.SKIPPED

    def test_retry_unblocks_dependants(self) -> None:
        g = diamond()
        g.start("a")
        g.fail("a", "flaky")
        g.retry("a")
        assert status(g) == {"a": "ready", "b": "pending", "c": "pending", "d": "pending"}
        assert g.task("a").error == "flaky"  # the last error is kept for the next attempt
        g.start("a")
        assert g.task("a").attempts == 2

    def test_retry_keeps_block_from_another_failure(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a")
        g.start("b")
        g.start("c")
        g.fail("b", "x")
        g.fail("c", "y")
        g.retry("b")
        assert g.task("d").status is S.SKIPPED
        assert g.task("d").blocked_by == "c"

    def test_deliberate_skip_blocks_dependants(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a")
        assert g.skip("b", "not needed") == ["d"]
        assert g.task("b").error == "not needed" and g.task("b").blocked_by is None
        assert g.task("d").blocked_by == "b"

    def test_remove_failed_task_unblocks(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a")
        g.start("b")
        g.fail("b", "x")
        g.remove_task("b")
        assert g.task("d").status is S.PENDING
        g.start("c")
        assert g.complete("c") == ["d"]

    def test_cannot_remove_running(self) -> None:
        g = diamond()
        g.start("a")
        with pytest.raises(InvalidTransitionError, match="remove"):
            g.remove_task("a")

    def test_tasks_are_snapshots(self) -> None:
        g = diamond()
        before = g.task("a")
        g.start("a")
        assert before.status is S.READY and g.task("a").status is S.RUNNING
        with pytest.raises(ValueError, match="frozen"):
            before.status = S.DONE

    def test_counts(self) -> None:
        g = diamond()
        g.start("a")
        counts = g.counts()
        assert counts[S.RUNNING] == 1 and counts[S.PENDING] == 3 and counts[S.DONE] == 0


class TestReplaceTask:
    def sub(self) -> TaskGraph:
        s = TaskGraph("sub")
        s.add_task(Task(id="x", goal="part one"))
        s.add_task(Task(id="y", goal="part two"))
        s.add_task(Task(id="z", goal="merge"), ["x", "y"])
        return s

    def test_splice_wires_sources_and_sinks(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a", "A")
        new = g.replace_task("b", self.sub(), note="refined b")
        assert new == ["b.x", "b.y", "b.z"]
        assert "b" not in g and [t.id for t in g.archived()] == ["b"]
        assert set(g.dependencies("b.x")) == {"a"} and set(g.dependencies("b.y")) == {"a"}
        assert set(g.dependencies("d")) == {"c", "b.z"}
        assert g.task("b.x").status is S.READY and g.task("b.z").status is S.PENDING
        assert all(g.task(t).parent == "b" and g.task(t).depth == 1 for t in new)
        assert g.task("a").result == "A"
        assert g.notes == ["refined b"]

    def test_replacing_failed_task_unblocks_dependants(self) -> None:
        g = diamond()
        g.start("a")
        g.complete("a")
        g.start("b")
        g.fail("b", "boom")
        assert g.task("d").status is S.SKIPPED
        g.replace_task("b", self.sub())
        assert g.task("d").status is S.PENDING and g.task("d").error is None

    def test_ids_stay_unique(self) -> None:
        g = TaskGraph()
        g.add_task(Task(id="t", goal="t"))
        g.add_task(Task(id="t.x", goal="taken"))
        new = g.replace_task("t", self.sub())
        assert new[0] == "t.x-2"

    def test_too_deep_ids_are_refused(self) -> None:
        g = TaskGraph()
        g.add_task(Task(id="a" * 127, goal="long id"))
        with pytest.raises(PlanError, match="nested too deep"):
            g.replace_task("a" * 127, self.sub())
        assert "a" * 127 in g  # nothing changed

    @pytest.mark.parametrize("status_to", ["running", "done"])
    def test_cannot_replace_started_work(self, status_to: str) -> None:
        g = diamond()
        g.start("a")
        if status_to == "done":
            g.complete("a")
        with pytest.raises(InvalidTransitionError, match="replace"):
            g.replace_task("a", self.sub())

    def test_empty_subgraph_rejected(self) -> None:
        with pytest.raises(PlanError, match="empty subgraph"):
            diamond().replace_task("b", TaskGraph())


def test_copy_is_independent() -> None:
    g = diamond()
    c = g.copy()
    c.start("a")
    assert g.task("a").status is S.READY
    assert c == c.copy() and c != g


def test_networkx_view_is_read_only() -> None:
    view = diamond().to_networkx()
    assert view.nodes["a"]["task"].goal == "first"
    with pytest.raises(Exception, match="Frozen"):
        view.add_node("zz")
