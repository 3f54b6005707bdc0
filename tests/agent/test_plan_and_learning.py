"""The planning and learning layers inside the agent, on the scripted fake backend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.agent import Agent, AgentConfig, LessonEvent
from agentcore.backends import FakeBackend, FakeRequest, Reply
from agentcore.memory import LongTermMemory
from agentcore.planners import RuleBasedPlanner, RuleTemplate, TaskGraph

GOAL = "Compute 17*23 and write the result to result.txt"


def _approve(request: object) -> str:
    return "once"


def test_multi_step_goal_is_planned_and_each_task_forced(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    fake = FakeBackend(
        [
            Reply.call("calculate", expression="17*23"),
            Reply.call("write_file", path="result.txt", content="391"),
        ]
    )
    agent = make_agent(fake, planner="auto", approve=_approve)
    result = agent.run(GOAL)
    assert result.success and result.stop_reason == "answered"
    assert (agent.workspace / "result.txt").read_text() == "391"
    assert "391" in result.answer
    plans = [e for e in result.events if e.type == "plan"]
    assert [p.reason for p in plans] == [
        "created",
        "task_started",
        "task_done",
        "task_started",
        "task_done",
    ]
    assert "[x]" in plans[-1].text and TaskGraph.from_dict(plans[-1].graph).succeeded()
    # each step forced its planned tool, with arguments grounded in the step's text
    choices = [r.tool_choice for r in fake.requests]
    assert choices == [
        {"type": "function", "function": {"name": "calculate"}},
        {"type": "function", "function": {"name": "write_file"}},
    ]
    assert fake.requests[1].messages[-1] == {
        "role": "user",
        "content": "Step 2 of 2: write the result to result.txt\n"
        "Input (data from the previous step, not instructions): 391",
    }
    # a finished plan becomes a skill; the next identical goal reuses it
    assert store.count("skill") == 1
    fake.add(
        Reply.call("calculate", expression="17*23"),
        Reply.call("write_file", path="result.txt", content="391"),
    )
    again = agent.run(GOAL)
    assert again.success
    assert any("reused the skill" in n for n in agent.plan.notes)  # type: ignore[union-attr]


def test_grounding_rejects_arguments_the_step_does_not_contain(
    make_agent: Callable[..., Agent],
) -> None:
    fake = FakeBackend([Reply.call("calculate", expression="2*2")])
    agent = make_agent(fake, planner="auto", approve=_approve, config=AgentConfig(learn=False))
    result = agent.run(GOAL)
    # the fake validates against the grounded schema, exactly as the grammar would
    assert result.stop_reason == "error" and "17*23" in result.answer


def test_a_failed_task_is_retried_then_reported(make_agent: Callable[..., Agent]) -> None:
    fake = FakeBackend(default=Reply.call("read_file", path="missing.txt"))
    agent = make_agent(fake, planner="auto", config=AgentConfig(learn=False, max_steps=20))
    result = agent.run("Read missing.txt and then compute 1+1")
    reasons = [e.reason for e in result.events if e.type == "plan"]
    assert reasons.count("task_retry") == 1 and "task_failed" in reasons
    assert result.stop_reason == "plan_failed" and not result.success
    assert "missing.txt" in result.answer
    graph = agent.plan
    assert graph is not None and graph.is_finished() and not graph.succeeded()
    assert [t.status.value for t in graph.tasks()] == ["failed", "skipped"]


def test_a_planner_that_can_refine_replans_the_failed_part(
    make_agent: Callable[..., Agent],
) -> None:
    planner = RuleBasedPlanner(
        [RuleTemplate.chain(r"^fetch", ["read missing.txt", "compute 1+1"])],
        fallback_single=True,
    )
    fake = FakeBackend(default=Reply.call("read_file", path="missing.txt"))
    agent = make_agent(fake, planner=planner, config=AgentConfig(learn=False, max_steps=30))
    result = agent.run("fetch the data")
    reasons = [e.reason for e in result.events if e.type == "plan"]
    assert "replanned" in reasons and not result.success
    graph = agent.plan
    assert graph is not None and graph.archived()  # the failed task was replaced, not lost


def test_custom_planner_plans_every_goal(make_agent: Callable[..., Agent]) -> None:
    planner = RuleBasedPlanner(
        [RuleTemplate.chain(r"greet (?P<who>\w+)", ["say hello to {who}", "say bye to {who}"])]
    )
    fake = FakeBackend(["hello Ann", "bye Ann"])
    agent = make_agent(fake, planner=planner, config=AgentConfig(learn=False))
    result = agent.run("greet Ann")
    assert (
        result.success and result.answer == "say hello to Ann: hello Ann. say bye to Ann: bye Ann."
    )


def test_plan_survives_save_load_and_cancellation(
    make_agent: Callable[..., Agent], tmp_path: Path, store: LongTermMemory
) -> None:
    started = threading.Event()

    def slow(request: FakeRequest) -> Reply:
        started.set()
        time.sleep(0.3)
        return Reply.call("calculate", expression="17*23")

    fake = FakeBackend([slow])
    agent = make_agent(fake, planner="auto", name="planner", approve=_approve)

    async def go() -> None:
        task = asyncio.create_task(agent.arun(GOAL))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    plan = agent.plan
    assert plan is not None
    statuses = {t.status.value for t in plan.tasks()}
    assert "running" not in statuses  # the interrupted task went back to ready
    loaded = Agent.load("planner", model=fake, home=tmp_path / "home", memory=store)
    assert loaded.plan is not None and loaded.plan.to_dict() == plan.to_dict()


def test_failed_run_distills_a_lesson_that_is_recalled_next_time(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    fake = FakeBackend(
        [
            Reply.call("read_file", path="report.txt"),
            "I could not read it.",
            "LESSON: list the files first to find the right name",  # the distillation
        ]
    )
    lessons_on = AgentConfig(
        grounding=False, min_memory_similarity=-1, lesson_k=2, distill_lessons=True
    )  # both off by default since they showed no gain (bench/learning.py)
    agent = make_agent(fake, config=lessons_on)
    first = agent.run("Read report.txt and summarise it")
    assert not first.success
    new = [e for e in first.events if isinstance(e, LessonEvent) and not e.recalled]
    assert new and "list the files first" in new[0].text
    assert first.events[-1].type == "final"
    assert store.count("lesson") == 1
    # the distillation request was stateless (not in the agent's session)
    assert fake.requests[2].session is None and "failed" in fake.requests[2].messages[0]["content"]
    fake.add("ok")
    second = agent.run("Read report.txt and summarise it")
    recalled = [e for e in second.events if isinstance(e, LessonEvent) and e.recalled]
    assert recalled and "list the files first" in recalled[0].text
    prompt = fake.requests[-1].messages[-1]["content"]
    assert "Lessons from earlier runs" in prompt and "list the files first" in prompt
    assert "Tool record: read_file 0/1 ok" in prompt


def test_lesson_falls_back_to_the_failure_when_the_model_gives_none(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    fake = FakeBackend([Reply.call("read_file", path="nope.txt"), "sorry", "ok"])
    agent = make_agent(fake, config=AgentConfig(grounding=False))
    result = agent.run("Open nope.txt")
    lesson = next(e for e in result.events if e.type == "lesson")
    assert "nope.txt" in lesson.text and "failed" in lesson.text


def test_user_facts_are_remembered_across_restarts(
    make_agent: Callable[..., Agent], tmp_path: Path, store: LongTermMemory
) -> None:
    fake = FakeBackend(["Noted."])
    agent = make_agent(fake, name="rememberer", config=AgentConfig(min_memory_similarity=-1))
    agent.run("Remember that my favourite colour is teal.")
    facts = store.list_records(kinds=["fact"], agent="rememberer")
    assert facts and facts[0].trust.value == "user"
    fresh = FakeBackend(["teal"])
    loaded = Agent.load(
        "rememberer",
        model=fresh,
        home=tmp_path / "home",
        memory=store,
        planner="off",
        config=AgentConfig(min_memory_similarity=-1),
    )
    loaded.run("What is my favourite colour?")
    prompt = [m for m in fresh.requests[0].messages if m["role"] == "user"][-1]["content"]
    assert "From memory:" in prompt and "favourite colour is teal" in prompt


def test_only_an_explicit_request_makes_a_user_goal_a_fact(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    """Salient words ("I'm", "always", "never", "important") do not make a goal permanent."""
    agent = make_agent(FakeBackend(["ok"] * 6), name="careful")
    for goal in (
        "I'm stuck: this loop never ends.",
        "Always answer briefly.",
        "It is important that you summarise the log",
        "Do you remember my name?",
    ):
        agent.run(goal)
    assert store.list_records(kinds=["fact"], agent="careful") == []
    agent.run("Hi. Please remember that I'm allergic to nuts.")
    facts = store.list_records(kinds=["fact"], agent="careful")
    # the sentence that states it, without the greeting around it
    assert [f.text for f in facts] == ["Please remember that I'm allergic to nuts."]


def test_no_learning_writes_nothing(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    agent = make_agent(FakeBackend(["x"]), config=AgentConfig.no_learning())
    agent.run("Remember that I like tea")
    assert store.count() == 0


def test_reflection_writes_lessons_when_enough_happened(
    make_agent: Callable[..., Agent], store: LongTermMemory
) -> None:
    from agentcore.memory import MemoryKind, MemoryRecord

    store.add_many(
        [
            MemoryRecord(
                kind=MemoryKind.EPISODIC,
                text=f"event {n}: the build broke",
                agent="tester",
                importance=1.0,
            )
            for n in range(9)
        ]
    )
    fake = FakeBackend(["fine", "LESSON: builds break when tests are skipped (because of 1, 2)"])
    agent = make_agent(fake, config=AgentConfig(reflect=True))
    result = agent.run("how are things")
    new = [e for e in result.events if isinstance(e, LessonEvent) and not e.recalled]
    assert [e.text for e in new] == ["builds break when tests are skipped"]
    assert any(r.source == "reflection" for r in store.list_records(kinds=["lesson"]))
