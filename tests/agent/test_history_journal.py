"""The agent's conversation as an append-only journal: a save appends only the run's turns,
memory keeps a bounded tail, a torn line is ignored, and states saved before it still load."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

from agentcore import Agent
from agentcore.agent._history import AgentHistory
from agentcore.backends import FakeBackend, Reply
from agentcore.memory import LongTermMemory


def test_runs_append_to_the_journal_and_memory_keeps_a_tail(
    make_agent: Callable[..., Agent], tmp_path: Path, store: LongTermMemory
) -> None:
    fake = FakeBackend([f"answer {i}" for i in range(30)])
    agent = make_agent(fake)
    agent._history.tail = 8  # a small tail to see it bounded
    journal = tmp_path / "home" / "history.jsonl"
    sizes = []
    for i in range(30):
        agent.run(f"question {i}")
        sizes.append(journal.stat().st_size)
    steps = [b - a for a, b in itertools.pairwise(sizes)]
    assert max(steps) < 2 * min(steps)  # each save appends its run's turns, not the history
    assert len(agent._history.recent()) <= 8
    state = json.loads((tmp_path / "home" / "agent.json").read_text())
    assert len(state["history"]) <= 8 and state["history_total"] == 60
    history = agent.history()
    assert len(history) == 60 and history[0]["content"] == "question 0"
    again = Agent.load("tester", model=fake, home=tmp_path / "home", memory=store, planner="off")
    assert again.history() == history


def test_a_torn_line_is_ignored_and_written_over(tmp_path: Path) -> None:
    h = AgentHistory(tmp_path / "history.jsonl")
    h.append({"role": "user", "content": "one"})
    h.flush()
    committed, total = h.committed, len(h)
    with open(tmp_path / "history.jsonl", "ab") as fh:
        fh.write(b'{"role": "user", "cont')  # a kill mid-write
    again = AgentHistory(tmp_path / "history.jsonl")
    again.restore(h.recent(), total, committed)
    assert again.all() == [{"role": "user", "content": "one"}]
    again.append({"role": "user", "content": "two"})
    again.flush()
    assert [m["content"] for m in again.all()] == ["one", "two"]
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["content"] for x in lines] == ["one", "two"]


def test_a_state_saved_before_the_journal_loads(
    make_agent: Callable[..., Agent], tmp_path: Path, store: LongTermMemory
) -> None:
    fake = FakeBackend(["first", Reply.call("calculate", expression="2+2"), "4"])
    agent = make_agent(fake)
    agent.run("hello")
    path = tmp_path / "home" / "agent.json"
    state = json.loads(path.read_text())
    del state["history_total"], state["history_bytes"]  # the old format: the whole history
    path.write_text(json.dumps(state))
    (tmp_path / "home" / "history.jsonl").unlink()
    again = Agent.load("tester", model=fake, home=tmp_path / "home", memory=store, planner="off")
    assert [m["content"] for m in again.history()] == ["hello", "first"]
    again.run("what is 2+2?")
    reloaded = Agent.load("tester", model=fake, home=tmp_path / "home", memory=store)
    assert [m["role"] for m in reloaded.history()] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
