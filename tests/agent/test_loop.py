"""The per-run loop's phases return their values as their last item (an ``Ending``, a
``CallResult``, a model ``Turn``), never through a shared list or an attribute; the agent
records the final answer and settles the run from them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from agentcore import _tracing as tracing
from agentcore.agent import Agent, AgentConfig, FinalAnswer, LessonEvent, SafetyVerdict
from agentcore.agent._action import Turn, TurnRequest
from agentcore.agent._loop import RunLoop
from agentcore.agent._run import CallResult, Ending, RunState, TaskResult
from agentcore.backends import FakeBackend, Reply
from agentcore.planners import Assignee, Task

T = TypeVar("T")


def _collect(items: AsyncIterator[T]) -> list[T]:
    async def drain() -> list[T]:
        return [item async for item in items]

    return asyncio.run(drain())


def _loop(agent: Agent, goal: str) -> RunLoop:
    run = RunState(agent.name, goal, agent.policy, "user")
    run.span = tracing.start_agent(
        agent.name, run_id=run.run_id, session=agent.session_id, model="fake", source="user"
    )
    return RunLoop(
        agent._loop_parts(),
        agent._conversation,
        run,
        stopped=lambda: False,
        session_exists=lambda: True,
    )


def test_a_run_ends_with_its_ending_and_no_final_answer_yet(
    make_agent: Callable[..., Agent],
) -> None:
    agent = make_agent(FakeBackend(["Hello there."]), config=AgentConfig(learn=False))
    loop = _loop(agent, "hi")
    items = _collect(loop.run("hi", "user"))
    *events, ending = items
    assert ending == Ending("Hello there.", True, "answered")
    assert not any(isinstance(e, Ending) for e in events)
    assert loop.run_state.final is None  # the loop returns how it ended; it records nothing
    assert loop.run_state.events == events
    loop.finish(ending)
    final = loop.run_state.final
    assert isinstance(final, FinalAnswer) and final.text == "Hello there." and final.success
    loop.finish(Ending("again", False, "error"))  # a run has one final answer
    assert loop.run_state.final is final
    outcome = loop.settle()
    assert outcome["steps"] == 1 and outcome["tool_calls"] == 0
    assert outcome["stop_reason"] == "answered" and outcome["goal"] == "hi"


def test_a_limit_becomes_the_ending_with_a_recorded_verdict(
    make_agent: Callable[..., Agent],
) -> None:
    looping = FakeBackend(default=Reply.call("calculate", expression="1+1"))
    agent = make_agent(looping, config=AgentConfig(max_steps=2, learn=False))
    loop = _loop(agent, "loop forever")
    items = _collect(loop.run("loop forever", "user"))
    ending = items[-1]
    assert ending == Ending("stopped after 2 steps", False, "max_steps")
    # the denied run is recorded (sent after the run closes), not yielded by the loop
    recorded = loop.run_state.events[-1]
    assert isinstance(recorded, SafetyVerdict) and recorded.action == "run"
    assert recorded.rule == "max_steps" and recorded not in items


def test_a_tool_call_returns_its_result(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(FakeBackend([]), config=AgentConfig(learn=False))
    loop = _loop(agent, "add")
    items = _collect(loop.tool_step.run("c1", "calculate", {"expression": "2+3"}, ["calculate"]))
    *events, result = items
    assert result == CallResult(True, "5")
    assert [e.type for e in events] == [
        "tool_call",
        "verdict",
        "status",
        "tool_result",
        "observation",
    ]
    assert loop.run_state.last_tool_ok is True


def test_a_denied_call_returns_its_error(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(FakeBackend([]), config=AgentConfig(learn=False))
    loop = _loop(agent, "add")
    # not among the offered tools: the safety filter refuses it, nothing runs
    items = _collect(loop.tool_step.run("c1", "calculate", {"expression": "2+3"}, []))
    result = items[-1]
    assert isinstance(result, CallResult) and not result.ok
    assert result.output.startswith("Error: not allowed")
    assert "tool_result" not in [getattr(e, "type", None) for e in items[:-1]]


def test_a_plan_step_returns_its_task_result(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(FakeBackend([Reply.call("calculate", expression="6*7"), "hi"]))
    loop = _loop(agent, "compute")
    step = Task(id="t1", goal="compute 6*7", assignee=Assignee(kind="tool", name="calculate"))
    items = _collect(loop._act_until_answer(step))
    assert items[-1] == TaskResult(True, "42")  # the forced call's result is the step's
    assert not any(isinstance(i, (Ending, TaskResult)) for i in items[:-1])
    text_step = Task(id="t2", goal="say hi")
    assert _collect(loop._act_until_answer(text_step))[-1] == TaskResult(True, "hi")


def test_a_model_turn_yields_text_then_the_turn(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(FakeBackend(["one two"]), config=AgentConfig(learn=False))
    request = TurnRequest([{"role": "user", "content": "count"}], [], "none")
    items: list[Any] = _collect(agent.selector.turn(request, lambda: False))
    *pieces, turn = items
    assert all(isinstance(p, str) for p in pieces) and "".join(pieces) == "one two"
    assert isinstance(turn, Turn) and turn.completion.text == "one two" and turn.refused is None


def test_lessons_go_before_the_final_answer(make_agent: Callable[..., Agent]) -> None:
    agent = make_agent(FakeBackend([]), config=AgentConfig(learn=False))
    run = _loop(agent, "x").run_state
    run.event(FinalAnswer, text="done", success=True, stop_reason="answered")
    run.insert_before_final(
        LessonEvent, [{"text": "a", "recalled": False}, {"text": "b", "recalled": False}]
    )
    assert [e.type for e in run.events] == ["lesson", "lesson", "final"]
    assert [e.seq for e in run.events] == [0, 1, 2]
    assert run.final is not None and run.final.text == "done"


def test_a_reply_that_ignores_the_result_gets_the_result_below_it(
    make_agent: Callable[..., Agent],
) -> None:
    """SmolLM2 answered a calculation with "The tool's result is a number." (and 444 with
    "4."): the user gets the result under the reply. A reply that uses it is left alone."""
    ignoring = [Reply.call("calculate", expression="17*23"), "The tool's result is a number."]
    config = AgentConfig(learn=False)
    agent = make_agent(FakeBackend(ignoring), config=config, planner="off")
    ending = _collect(_loop(agent, "What is 17*23?").run("What is 17*23?", "user"))[-1]
    assert isinstance(ending, Ending) and ending.success
    assert ending.text == "The tool's result is a number.\n\n391"
    using = [Reply.call("calculate", expression="17*23"), "17*23 is 391."]
    agent = make_agent(FakeBackend(using), config=config, planner="off")
    ending = _collect(_loop(agent, "What is 17*23?").run("What is 17*23?", "user"))[-1]
    assert isinstance(ending, Ending) and ending.text == "17*23 is 391."
    quiet = AgentConfig(learn=False, quote_results=False)
    agent = make_agent(FakeBackend(ignoring), config=quiet, planner="off")
    ending = _collect(_loop(agent, "What is 17*23?").run("What is 17*23?", "user"))[-1]
    assert isinstance(ending, Ending) and ending.text == "The tool's result is a number."
