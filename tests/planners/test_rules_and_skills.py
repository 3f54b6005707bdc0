"""RuleBasedPlanner, plan templates, skill stores and SkillPlanner."""

from __future__ import annotations

import pytest

from agentcore.planners import (
    Assignee,
    CycleError,
    InMemorySkillStore,
    PlanError,
    PlanLimitError,
    Planner,
    PlannerLimits,
    PlanTemplate,
    PlanValidationError,
    RuleBasedPlanner,
    RuleTemplate,
    SkillPlanner,
    SkillStore,
    Task,
    TaskGraph,
    TemplateStep,
    goal_similarity,
)

RESEARCH = RuleTemplate(
    pattern=r"report (?:on|about) (?P<topic>.+)",
    steps=(
        TemplateStep(
            id="search",
            goal="search for {topic}",
            assignee=Assignee(kind="tool", name="web_search"),
            inputs={"query": "{topic}"},
        ),
        TemplateStep(id="read", goal="read the top results", depends_on=("search",)),
        TemplateStep(id="write", goal="write the report: {goal}", depends_on=("read",)),
    ),
)
READ = RuleTemplate.chain(r"read the top results", ["open each result", "take notes"])


def planner(**kw: object) -> RuleBasedPlanner:
    return RuleBasedPlanner([RESEARCH, READ], PlannerLimits(max_depth=2), **kw)  # type: ignore[arg-type]


def finish(g: TaskGraph) -> TaskGraph:
    while g.ready_ids():
        for tid in g.ready_ids():
            g.start(tid)
            g.complete(tid, f"result of {tid}")
    return g


class TestRuleBasedPlanner:
    def test_is_a_planner(self) -> None:
        assert isinstance(planner(), Planner)

    def test_fills_placeholders_from_named_groups(self) -> None:
        g = planner().plan("Write a report on solar panels")
        assert g.goal == "Write a report on solar panels"
        assert g.task("search").goal == "search for solar panels"
        assert g.task("search").inputs == {"query": "solar panels"}
        assert g.task("search").assignee == Assignee(kind="tool", name="web_search")
        assert g.task("write").goal == "write the report: Write a report on solar panels"
        assert g.dependencies("write") == ["read"]
        assert g.ready_ids() == ["search"]

    def test_no_match_lists_patterns(self) -> None:
        with pytest.raises(PlanError, match=r"no rule matches goal 'bake bread'.*report"):
            planner().plan("bake bread")

    def test_fallback_single_task(self) -> None:
        g = planner(fallback_single=True).plan("bake bread")
        assert [t.goal for t in g.tasks()] == ["bake bread"]

    def test_refine_nests_a_subgraph(self) -> None:
        p = planner()
        g = p.plan("report about owls")
        g.start("search")
        g.complete("search", ["url"])
        refined = p.refine(g, "read")
        assert "read" in g  # the input graph is untouched
        assert [t.id for t in refined.archived()] == ["read"]
        assert refined.task("read.1").goal == "open each result"
        assert refined.dependencies("read.1") == ["search"]
        assert refined.dependencies("write") == ["read.2"]
        assert refined.task("read.2").depth == 1
        assert refined.task("search").result == ["url"]

    def test_depth_limit(self) -> None:
        p = RuleBasedPlanner(
            [READ, RuleTemplate.chain("open each", ["a", "b"])], PlannerLimits(max_depth=1)
        )
        g = p.plan("read the top results")
        g = p.refine(TaskGraph.from_json(g.to_json()), "1")  # depth 0 -> 1 is fine
        with pytest.raises(PlanLimitError, match=r"depth 1.*max_depth is 1"):
            p.refine(g, "1.1")

    def test_size_limit(self) -> None:
        big = RuleTemplate.chain("big", [f"s{i}" for i in range(8)])
        with pytest.raises(PlanLimitError, match=r"8 tasks.*max_steps is 6"):
            RuleBasedPlanner([big]).plan("big job")
        p = RuleBasedPlanner(
            [READ, RuleTemplate.chain("notes", ["x", "y", "z"])],
            PlannerLimits(max_steps=3, max_tasks=3),
        )
        g = p.plan("read the top results")
        with pytest.raises(PlanLimitError, match="max_tasks is 3"):
            p.refine(g, "2")

    def test_rule_placeholders_must_be_captured(self) -> None:
        with pytest.raises(ValueError, match=r"placeholders \['topic'\]"):
            RuleBasedPlanner([RuleTemplate.chain("no groups", ["about {topic}"])])

    def test_bad_pattern(self) -> None:
        with pytest.raises(ValueError, match="not a regular expression"):
            RuleTemplate.chain("(unclosed", ["x"])


class TestPlanTemplate:
    def test_rejects_unknown_dependency_duplicates_and_cycles(self) -> None:
        with pytest.raises(ValueError, match="depends_on 'zz'"):
            PlanTemplate(goal="g", steps=(TemplateStep(id="a", goal="a", depends_on=("zz",)),))
        with pytest.raises(ValueError, match="appears twice"):
            PlanTemplate(goal="g", steps=(TemplateStep(id="a", goal="a"),) * 2)
        with pytest.raises(CycleError, match="plan template"):
            PlanTemplate(
                goal="g",
                steps=(
                    TemplateStep(id="a", goal="a", depends_on=("b",)),
                    TemplateStep(id="b", goal="b", depends_on=("a",)),
                ),
            )

    def test_missing_field(self) -> None:
        t = RESEARCH.template()
        with pytest.raises(PlanValidationError, match=r"\['topic'\] have no value"):
            t.instantiate("x")

    def test_from_graph_generalises_goal_and_escapes_braces(self) -> None:
        g = TaskGraph("tidy the garage")
        g.add_task(Task(id="1", goal="plan how to tidy the garage {fast}"))
        g.add_task(Task(id="2", goal="do it"), ["1"])
        t = PlanTemplate.from_graph(g)
        assert t.steps[0].goal == "plan how to {goal} {{fast}}"
        again = t.instantiate("clean the attic")
        assert again.task("1").goal == "plan how to clean the attic {fast}"
        assert again.dependencies("2") == ["1"]


class TestSkills:
    def test_store_is_a_skill_store(self) -> None:
        assert isinstance(InMemorySkillStore(), SkillStore)

    def test_only_finished_graphs_are_stored(self) -> None:
        g = planner().plan("report on owls")
        with pytest.raises(PlanError, match="only a finished graph"):
            InMemorySkillStore().save(g.goal, g)

    def test_find_similar_goal(self) -> None:
        store = InMemorySkillStore(min_similarity=0.4)
        g = finish(planner().plan("report on owls"))
        saved = store.save("write a report on owls", g)
        assert saved.steps[0].id == "search"
        assert store.find("write a report on eagles") == saved
        assert store.find("bake bread") is None
        assert len(store) == 1

    def test_newest_wins_ties(self) -> None:
        store = InMemorySkillStore()
        one = TaskGraph("x")
        one.add_task(Task(id="old", goal="old way"))
        two = TaskGraph("x")
        two.add_task(Task(id="new", goal="new way"))
        store.save("clean the kitchen", finish(one))
        store.save("clean kitchen floor", finish(two))
        found = store.find("clean the kitchen floor")
        assert found is not None and found.steps[0].id == "new"

    def test_similarity(self) -> None:
        assert goal_similarity("Write a report on owls", "write report owls") == 1.0
        assert goal_similarity("a", "the") == 0.0
        assert 0 < goal_similarity("report on owls", "report on cats") < 1

    def test_skill_planner_reuses_then_falls_back(self) -> None:
        store = InMemorySkillStore(min_similarity=0.3)
        fallback = RuleBasedPlanner([], fallback_single=True)
        sp = SkillPlanner(store, fallback)
        assert isinstance(sp, Planner)
        first = sp.plan("tidy the garage")
        assert len(first) == 1
        g = TaskGraph("tidy the garage")
        g.add_task(Task(id="sort", goal="sort things in: tidy the garage"))
        g.add_task(Task(id="bin", goal="throw out junk"), ["sort"])
        store.save(g.goal, finish(g))
        reused = sp.plan("tidy the shed")
        assert [t.goal for t in reused.tasks()] == [
            "sort things in: tidy the shed",
            "throw out junk",
        ]
        assert reused.task("sort").result is None and reused.ready_ids() == ["sort"]
        assert any("reused the skill" in n for n in reused.notes)
        refined = sp.refine(reused, "bin")
        assert refined.task("bin.1").goal == "throw out junk"
