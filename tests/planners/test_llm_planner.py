"""LLMPlanner on a scripted generator: schema, prompt, parsing, repairs, retries, limits.

The generation schema is also checked against llguidance itself (the engine the model backend
decodes with), using its byte-level tokenizer: ``test_llm_planner_constrained.py`` decodes
random plans under it; ``test_llm_planner_real.py`` runs the real default model.
"""

from __future__ import annotations

import json
from typing import Any

import llguidance
import pytest
from llguidance import LLMatcher

from agentcore.planners import (
    Assignee,
    InMemorySkillStore,
    JsonGenerator,
    LLMPlanner,
    PlanContext,
    PlanError,
    PlanLimitError,
    Planner,
    PlannerLimits,
    ScriptedJsonGenerator,
    Task,
    TaskGraph,
    plan_model,
    plan_schema,
)


def plan(*steps: tuple[int, str, list[int]], tool: bool = False) -> str:
    out = []
    for sid, goal, deps in steps:
        item: dict[str, Any] = {"id": sid, "goal": goal}
        if tool:
            item["tool"] = None
        item["depends_on"] = deps
        out.append(item)
    return json.dumps({"steps": out}, separators=(",", ":"))


GOOD = plan((1, "find sources", []), (2, "read sources", [1]), (3, "write summary", [1, 2]))
BYTES = llguidance.LLTokenizer("byte")


def accepts(schema: dict[str, Any], text: str) -> bool:
    """Does llguidance's JSON-Schema grammar accept ``text`` exactly?"""
    grammar = LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
    matcher = LLMatcher(BYTES, grammar, log_level=0)
    return matcher.consume_tokens(BYTES.tokenize_str(text)) and matcher.is_accepting()


class TestSchema:
    def test_llguidance_compiles_it(self) -> None:
        schema = plan_schema(PlannerLimits(), ["search", "agent:writer"])
        grammar = LLMatcher.grammar_from_json_schema(schema)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, BYTES)
        assert not is_error and messages == []

    def test_accepts_a_well_formed_plan(self) -> None:
        assert accepts(plan_schema(PlannerLimits()), GOOD)

    @pytest.mark.parametrize(
        "text",
        [
            plan((1, "a step", []), (2, "next", [2])),  # self reference
            plan((1, "a step", [2]), (2, "next", [1])),  # forward reference (a cycle)
            plan((1, "a step", []), (3, "skips an id", [1])),  # ids must be 1..n in order
            plan((1, "only one", [])),  # fewer than min_steps
            plan(*[(i, f"step {i}", []) for i in range(1, 8)]),  # more than max_steps
            plan((1, "x" * 101, []), (2, "fine", [])),  # goal longer than max_goal_chars
            '{"steps": [], "extra": 1}',
        ],
    )
    def test_rejects_what_could_break_a_graph(self, text: str) -> None:
        assert not accepts(plan_schema(PlannerLimits()), text)

    def test_tool_field_is_an_enum_or_null(self) -> None:
        schema = plan_schema(PlannerLimits(), ["search"])
        ok = json.dumps(
            {
                "steps": [
                    {"id": 1, "goal": "look", "tool": "search", "depends_on": []},
                    {"id": 2, "goal": "think", "tool": None, "depends_on": [1]},
                ]
            },
            separators=(",", ":"),
        )
        assert accepts(schema, ok)
        assert not accepts(schema, ok.replace('"search"', '"shell"'))

    def test_parse_model_is_looser_than_generation_schema(self) -> None:
        loose = plan_model(PlannerLimits())
        text = plan((1, "a step", [2]), (2, "next", [1]))
        assert loose.model_validate_json(text)  # parsed; graph_from_plan rejects the cycle
        assert not accepts(plan_schema(PlannerLimits()), text)


class TestPlanning:
    def test_protocols(self) -> None:
        gen = ScriptedJsonGenerator([])
        assert isinstance(gen, JsonGenerator)
        assert isinstance(LLMPlanner(gen), Planner)

    def test_plan_from_valid_reply(self) -> None:
        gen = ScriptedJsonGenerator([GOOD])
        g = LLMPlanner(gen).plan("summarise the sources")
        assert g.goal == "summarise the sources"
        assert [t.id for t in g.tasks()] == ["1", "2", "3"]
        assert g.dependencies("3") == ["1", "2"]
        assert g.ready_ids() == ["1"] and g.notes == []
        call = gen.calls[0]
        assert call.schema == plan_schema(PlannerLimits())
        assert call.max_tokens == PlannerLimits().max_tokens

    def test_prompt_is_short_and_names_tools_and_notes(self) -> None:
        gen = ScriptedJsonGenerator([GOOD.replace('"depends_on"', '"tool": null, "depends_on"')])
        ctx = PlanContext(tools=("search",), agents=("writer",), notes=("be brief",))
        LLMPlanner(gen, PlannerLimits.tiny_model()).plan("do it", ctx)
        system, user = gen.calls[0].messages
        assert system["role"] == "system" and user["role"] == "user"
        assert "2 to 5 short steps" in system["content"]
        assert "one of: search, agent:writer; or null" in system["content"]
        assert user["content"] == "Goal: do it\nNote: be brief"
        assert len(system["content"]) < 400

    def test_assignees(self) -> None:
        reply = json.dumps(
            {
                "steps": [
                    {"id": 1, "goal": "search it", "tool": "search", "depends_on": []},
                    {"id": 2, "goal": "write it", "tool": "agent:writer", "depends_on": [1]},
                ]
            }
        )
        ctx = PlanContext(tools=("search",), agents=("writer",))
        g = LLMPlanner(ScriptedJsonGenerator([reply])).plan("x", ctx)
        assert g.task("1").assignee == Assignee(kind="tool", name="search")
        assert g.task("2").assignee == Assignee(kind="agent", name="writer")

    def test_repairs_dangling_and_self_references(self) -> None:
        reply = plan((1, "first", [1]), (2, "second", [1, 5]), (3, "third", [2, 2]))
        g = LLMPlanner(ScriptedJsonGenerator([reply])).plan("x")
        assert g.dependencies("1") == [] and g.dependencies("2") == ["1"]
        assert g.dependencies("3") == ["2"]
        assert g.notes == [
            "dropped dependency of step 1 on itself",
            "dropped dependency of step 2 on 5: there is no step 5",
        ]

    def test_merges_repeated_goals(self) -> None:
        reply = plan((1, "Get data", []), (2, "get  DATA", []), (3, "use data", [2]))
        g = LLMPlanner(ScriptedJsonGenerator([reply])).plan("x")
        assert [t.id for t in g.tasks()] == ["1", "3"]
        assert g.dependencies("3") == ["1"]
        assert g.notes == ["merged step 2 into step 1: same goal 'get  DATA'"]

    def test_duplicate_ids_are_sent_back_to_the_model(self) -> None:
        bad = plan((1, "first", []), (1, "again", []))
        gen = ScriptedJsonGenerator([bad, GOOD])
        g = LLMPlanner(gen).plan("x")
        assert len(g) == 3
        retry = gen.calls[1].messages
        assert retry[-2] == {"role": "assistant", "content": bad}
        assert "step id 1 is used by steps #1 and #2" in retry[-1]["content"]
        assert g.notes[-1].startswith("model fixed its plan after: step id 1")

    def test_cycle_error_names_the_cycle(self) -> None:
        cyclic = plan((1, "first", [3]), (2, "second", [1]), (3, "third", [2]))
        gen = ScriptedJsonGenerator([cyclic, cyclic])
        with pytest.raises(PlanError, match=r"2 attempt\(s\).*dependency cycle 1 -> 2 -> 3 -> 1"):
            LLMPlanner(gen).plan("x")

    def test_truncated_reply_is_retried(self) -> None:
        gen = ScriptedJsonGenerator([GOOD[:40], GOOD])
        assert len(LLMPlanner(gen).plan("x")) == 3
        assert "Invalid JSON" in gen.calls[1].messages[-1]["content"]

    def test_out_of_replies(self) -> None:
        with pytest.raises(PlanError, match="has 0 replies and got call #1"):
            LLMPlanner(ScriptedJsonGenerator([])).plan("x")

    def test_reply_function_sees_the_request(self) -> None:
        def reply(messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
            goal = messages[-1]["content"].removeprefix("Goal: ")
            return plan((1, f"start {goal}", []), (2, f"finish {goal}", [1]))

        g = LLMPlanner(ScriptedJsonGenerator([reply])).plan("the job")
        assert g.task("2").goal == "finish the job"

    def test_refine_decomposes_one_task_in_context(self) -> None:
        gen = ScriptedJsonGenerator([GOOD, plan((1, "open files", []), (2, "skim files", [1]))])
        p = LLMPlanner(gen)
        g = p.plan("summarise")
        refined = p.refine(g, "2")
        assert gen.calls[1].messages[-1]["content"] == (
            "Goal: read sources\nNote: This is one step of the larger goal: summarise"
        )
        assert refined.dependencies("2.1") == ["1"]
        assert set(refined.dependencies("3")) == {"1", "2.2"}
        assert refined.task("2.2").depth == 1

    def test_refine_respects_depth(self) -> None:
        g = TaskGraph("g")
        g.add_task(Task(id="deep", goal="deep task", depth=2))
        gen = ScriptedJsonGenerator([])
        with pytest.raises(PlanLimitError, match="max_depth is 2"):
            LLMPlanner(gen).refine(g, "deep")
        assert gen.calls == []  # no model call wasted

    def test_skill_is_offered_as_example(self) -> None:
        store = InMemorySkillStore()
        done = TaskGraph("clean the garage")
        done.add_task(Task(id="a", goal="empty the garage"))
        done.add_task(Task(id="b", goal="sweep"), ["a"])
        for tid in ("a", "b"):
            done.start(tid)
            done.complete(tid)
        store.save(done.goal, done)
        gen = ScriptedJsonGenerator([GOOD])
        LLMPlanner(gen, skills=store).plan("clean the garage today")
        system = gen.calls[0].messages[0]["content"]
        assert "Example. Goal: clean the garage\n" in system
        example = json.loads(system.rsplit("\n", 1)[1])
        assert example == {
            "steps": [
                {"id": 1, "goal": "empty the garage", "depends_on": []},
                {"id": 2, "goal": "sweep", "depends_on": [1]},
            ]
        }


def test_limits_validation() -> None:
    with pytest.raises(ValueError, match="max_steps is 0"):
        PlannerLimits(max_steps=0)
    with pytest.raises(ValueError, match="min_steps is 4, expected <= max_steps"):
        PlannerLimits(min_steps=4, max_steps=3)
    with pytest.raises(ValueError, match="max_tasks is 2"):
        PlannerLimits(max_tasks=2)
    assert PlannerLimits.tiny_model().max_steps < PlannerLimits.large().max_steps
