"""Integration: ``LLMPlanner`` on the real default model through ``LocalBackend.generate_json``.

Twenty goals of different kinds are planned; validity (the plan parses, fits the limits, names
only known tools, depends only backwards) is what the grammar guarantees and what is asserted.
Quality is judged by reading a sample (``bench/planner.py --llm``), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcore.backends import LocalBackend
from agentcore.planners import LLMPlanner, PlanContext, PlannerLimits, TaskStatus

pytestmark = pytest.mark.slow

GOALS = [
    "Write a short report about solar panels",
    "Fix the failing unit test in the parser module",
    "Plan a birthday party for ten people",
    "Compute the total cost of three invoices and save it to a file",
    "Summarise the latest notes in the workspace",
    "Find out what time it is and remind me to call Anna",
    "Translate the README into French",
    "Compare two laptops and recommend one",
    "Organise the files in the downloads folder",
    "Prepare a weekly grocery list on a budget",
    "Research the history of the printing press",
    "Draft an email asking for a deadline extension",
    "Count the words in every text file and report the largest",
    "Set up a reading schedule for a 400-page book in two weeks",
    "Check the weather page and decide whether to cycle to work",
    "Write a haiku about autumn and store it in memory",
    "Convert 72 degrees Fahrenheit to Celsius and explain the steps",
    "Review yesterday's meeting notes and list the action items",
    "Estimate how long it takes to read 30 pages at 2 minutes per page",
    "Create a packing list for a three-day hiking trip",
]


@pytest.mark.timeout(1800)
def test_twenty_goals_give_valid_graphs(real_engine: Any, tmp_path: Path) -> None:
    backend = LocalBackend(real_engine, sessions_dir=tmp_path)
    # the budget covers the largest plan the schema allows (4 steps of <= 100-character goals,
    # even at one character per token), so a plan can never be cut off before it closes
    limits = PlannerLimits(min_steps=2, max_steps=4, max_depth=1, max_tasks=8, max_tokens=800)
    calls: list[str] = []

    class Counting:
        def generate_json(
            self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
        ) -> str:
            calls.append(backend.generate_json(messages, schema, max_tokens=max_tokens))
            return calls[-1]

    planner = LLMPlanner(Counting(), limits)
    tools = ("calculator", "read_file", "write_file", "http_get", "current_time", "remember")
    ctx = PlanContext(tools=tools)
    assert len(set(GOALS)) == 20
    for goal in GOALS:
        graph = planner.plan(goal, ctx)
        text = graph.render_text()
        assert 1 <= len(graph) <= limits.max_steps, text
        assert graph.ready_ids(), text
        for a, b in graph.edges():
            assert int(a) < int(b), text
        for task in graph.tasks():
            assert task.status in (TaskStatus.READY, TaskStatus.PENDING), text
            assert task.assignee is None or task.assignee.name in tools, text
            assert task.goal.strip(), text
    # the grammar makes every generation parse; a retry would only come from a semantic check
    assert len(calls) <= len(GOALS) + 2, calls
