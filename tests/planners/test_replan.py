"""replan: only the failed part is rewritten; finished results survive."""

from __future__ import annotations

import pytest

from agentcore.planners import (
    LLMPlanner,
    PlanContext,
    PlanLimitError,
    PlannerLimits,
    RuleBasedPlanner,
    RuleTemplate,
    ScriptedJsonGenerator,
    Task,
    TaskGraph,
    TaskStatus,
    replan,
)


def pipeline() -> TaskGraph:
    """fetch -> parse -> (stats, chart) -> report; plus an unrelated 'email'."""
    g = TaskGraph("weekly report")
    g.add_task(Task(id="fetch", goal="fetch data"))
    g.add_task(Task(id="parse", goal="parse data"), ["fetch"])
    g.add_task(Task(id="stats", goal="compute stats"), ["parse"])
    g.add_task(Task(id="chart", goal="draw chart"), ["parse"])
    g.add_task(Task(id="report", goal="write report"), ["stats", "chart"])
    g.add_task(Task(id="email", goal="email the team"))
    for tid, result in [("fetch", "rows"), ("parse", "table"), ("email", "sent")]:
        g.start(tid)
        g.complete(tid, result)
    g.start("stats")
    g.complete("stats", {"mean": 3})
    g.start("chart")
    g.fail("chart", "matplotlib missing")
    return g


RECOVER = RuleBasedPlanner(
    [RuleTemplate.chain("chart", ["export data to csv", "chart it in a spreadsheet"])]
)


def test_replan_replaces_only_the_failed_task() -> None:
    g = pipeline()
    assert g.task("report").status is TaskStatus.SKIPPED
    result = replan(g, RECOVER)
    new = result.graph
    assert result.replaced == {"chart": ["chart.1", "chart.2"]}
    for tid, value in [
        ("fetch", "rows"),
        ("parse", "table"),
        ("stats", {"mean": 3}),
        ("email", "sent"),
    ]:
        assert new.task(tid).status is TaskStatus.DONE and new.task(tid).result == value
    assert new.task("chart.1").status is TaskStatus.READY  # parse is done already
    assert new.dependencies("chart.1") == ["parse"]
    assert set(new.dependencies("report")) == {"stats", "chart.2"}
    assert new.task("report").status is TaskStatus.PENDING
    assert new.archived()[0].error == "matplotlib missing"
    assert g.task("chart").status is TaskStatus.FAILED  # the input graph is untouched
    assert "replanned task 'chart' into 2 tasks" in new.notes


def test_replan_tells_the_planner_why() -> None:
    reply = (
        '{"steps":[{"id":1,"goal":"install matplotlib","depends_on":[]},'
        '{"id":2,"goal":"draw chart again","depends_on":[1]}]}'
    )
    gen = ScriptedJsonGenerator([reply])
    result = replan(pipeline(), LLMPlanner(gen), PlanContext(notes=("be quick",)))
    user = gen.calls[0].messages[-1]["content"]
    assert user.startswith("Goal: draw chart\nNote: be quick\n")
    assert "An earlier attempt at 'draw chart' failed: matplotlib missing" in user
    assert result.graph.task("chart.2").goal == "draw chart again"


def test_nothing_failed_means_an_unchanged_copy() -> None:
    g = pipeline()
    g.retry("chart")
    result = replan(g, RECOVER)
    assert result.replaced == {} and result.graph == g and result.graph is not g


def test_repeated_replanning_is_bounded_by_depth() -> None:
    g = pipeline()
    planner = RuleBasedPlanner(
        [RuleTemplate.chain("chart|export", ["export again"])],
        PlannerLimits(max_depth=2, min_steps=1),
    )
    for _ in range(2):
        g = replan(g, planner).graph
        (leaf,) = [t.id for t in g.tasks() if t.status is TaskStatus.READY]
        g.start(leaf)
        g.fail(leaf, "still broken")
    with pytest.raises(PlanLimitError, match="max_depth is 2"):
        replan(g, planner)


def test_replan_selected_tasks_only() -> None:
    g = pipeline()
    g.add_task(Task(id="extra", goal="draw chart 2"))
    g.start("extra")
    g.fail("extra", "x")
    result = replan(g, RECOVER, task_ids=["extra"])
    assert list(result.replaced) == ["extra"]
    assert result.graph.task("chart").status is TaskStatus.FAILED


async def test_plan_run_replan_run_and_remember() -> None:
    """The whole loop an agent runs: plan, execute, replan the failure, finish, keep the skill."""
    from agentcore.planners import InMemorySkillStore, RetryPolicy, Scheduler, SkillPlanner

    rules = [
        RuleTemplate.chain(
            r"publish (?P<doc>\w+)", ["render {doc}", "upload {doc}", "announce {doc}"]
        ),
        RuleTemplate.chain(r"upload (?P<doc>\w+)", ["zip {doc}", "copy {doc} by ssh"]),
    ]
    store = InMemorySkillStore()
    planner = SkillPlanner(store, RuleBasedPlanner(rules))
    graph = planner.plan("publish manual")
    ran: list[str] = []

    async def execute(task: Task) -> str:
        ran.append(task.goal)
        if task.goal.startswith("upload"):
            raise ConnectionError("ftp refused")
        return f"ok: {task.goal}"

    first = await Scheduler(graph, RetryPolicy(max_attempts=2)).run(execute)
    assert first.failed == ["2"] and first.skipped == ["3"] and first.done == ["1"]
    assert ran == ["render manual", "upload manual", "upload manual"]

    graph = replan(graph, planner).graph
    second = await Scheduler(graph).run(execute)
    assert second.succeeded
    assert ran[3:] == ["zip manual", "copy manual by ssh", "announce manual"]
    assert graph.task("1").result == "ok: render manual" and graph.task("1").attempts == 1

    store.save(graph.goal, graph)
    again = planner.plan("publish manual")
    assert [t.goal for t in again.tasks()] == [
        "render manual",
        "zip manual",
        "copy manual by ssh",
        "announce manual",
    ]
    assert again.ready_ids() == ["1"]
