"""The sister example of issue #22 on the real default model (SmolLM2-135M-Instruct through
LocalBackend, chromadb memory with the offline MiniLM embedder): the statement is context and a
fact, not a task; the question about it is answered from the fact put into the prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcore.agent import Agent
from agentcore.backends import LocalBackend

pytestmark = pytest.mark.slow


def test_the_sister_is_remembered_not_planned(real_engine: Any, tmp_path: Path) -> None:
    backend = LocalBackend(real_engine, sessions_dir=tmp_path / "sessions")
    agent = Agent(backend, name="sister", home=tmp_path / "home")
    told = agent.run("My sister lives in Lyon. Suggest a gift for her.")
    assert not [e for e in told.events if e.type == "plan"]  # one request, not two tasks
    assert told.stop_reason == "answered" and told.answer.strip()
    asked = agent.run("Where does my sister live?")
    facts = [r.text for r in agent.memory.list_records(kinds=["fact"])]
    episodes = agent.memory.list_records(kinds=["episodic"])
    skills = agent.memory.count("skill")
    agent.close()
    assert facts == ["My sister lives in Lyon."]
    assert not asked.tool_call_events()  # answered from what the user said, no tool
    sent = [m for turn in backend.get_session(agent.session_id).history("raw") for m in turn]
    prompt = [m["content"] for m in sent if m["role"] == "user"][-1]
    assert "What the user told you:\n- My sister lives in Lyon." in prompt
    assert "Lyon" in asked.answer, asked.answer
    # two text answers: nothing checked them, so no "succeeded" and no skill
    assert [e.attributes["outcome"] for e in episodes] == ["unverified", "unverified"]
    assert skills == 0
