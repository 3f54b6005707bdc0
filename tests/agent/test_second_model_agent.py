"""The Agent on the second real model, Qwen2.5-Coder-0.5B-Instruct (the agents' default,
``AGENT_ALIAS``), with the planner off: the model itself picks the one tool it is given, calls it
with the value the goal names, and the run's answer carries the tool's result.

The agent opens the model by its alias, as users do (``LocalBackend.load``: bf16 activations and
int8 weights on a CPU with bf16, float32 elsewhere; the replies checked here were the same in
both), once for the module. The memory uses the hash embedder to keep the test short.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcore.agent import Agent, AgentConfig, Result
from agentcore.backends import LocalBackend
from agentcore.core.models import AGENT_ALIAS, QWEN25_CODER_05B, model_status
from agentcore.memory import HashEmbeddingFunction, LongTermMemory
from agentcore.tools import Tool, tool

pytestmark = pytest.mark.slow

STOCK = {"bolts": 4213, "nuts": 977, "washers": 15520}  # numbers the model cannot guess


def _stock_tool(asked: list[str]) -> Tool:
    @tool
    def stock_level(item: str) -> int:
        """How many of an item the warehouse holds (bolts, nuts or washers)."""
        asked.append(item)
        return STOCK[item.strip().lower()]

    return stock_level


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Result, list[str], Agent]]:
    """One goal, run once for the module: the result, the items the tool was asked for, and
    the (closed) agent."""
    assert model_status(QWEN25_CODER_05B).installed, "run `make setup` (installs both models)"
    home: Path = tmp_path_factory.mktemp("qwen-agent")
    asked: list[str] = []
    agent = Agent(
        AGENT_ALIAS,
        tools=[_stock_tool(asked)],
        memory=LongTermMemory(home / "memory", embedder=HashEmbeddingFunction()),
        planner="off",
        home=home,
        name="stock",
        config=AgentConfig(
            memory_k=0,
            lesson_k=0,
            learn=False,
            sampling=dataclasses.replace(AgentConfig().sampling, max_tokens=64),
        ),
    )
    try:
        result = agent.run("How many washers does the warehouse hold?")
    finally:
        agent.close()
    yield result, asked, agent


def test_the_model_picks_the_tool_and_the_answer_carries_its_value(
    run: tuple[Result, list[str], Agent],
) -> None:
    result, asked, agent = run
    assert isinstance(agent.backend, LocalBackend)
    assert agent.backend.name == "Qwen2.5-Coder-0.5B-Instruct"
    assert [(e.tool, e.arguments) for e in result.tool_call_events()] == [
        ("stock_level", {"item": "washers"})
    ]
    assert asked == ["washers"]  # the tool really ran, once
    (ran,) = result.tool_results()
    assert ran.ok and ran.output.strip() == "15520"
    assert result.stop_reason == "answered" and result.success
    assert "15520" in result.answer.replace(",", ""), result.answer  # "15,520" as words write it


def test_the_answer_is_words_not_the_copied_result(run: tuple[Result, list[str], Agent]) -> None:
    answer = run[0].answer
    assert '"content"' not in answer and "tool_response" not in answer, answer
    assert not answer.lstrip().startswith(("{", "<", "[", "`", "(")), answer
