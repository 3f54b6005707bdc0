"""End to end on the real model the assistant defaults to (the 0.5B model, ``AGENT_ALIAS``):
it loads it and streams a reply.

The app opens the model itself (``LocalBackend.load`` through the model registry), as
``make chat`` does; the first load in a fresh cache converts the GGUF file (a few minutes on
2 cores), hence the long wait for ``ready``. To keep the test short on a 2-core machine the memory uses the hash
embedder and the agent gets only the calculator (the eight default tools make the first
prompt ~1,800 tokens instead of ~330).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agentcore.agent import Event, FinalAnswer, TextDelta
from agentcore.apps.assistant import AssistantApp, AssistantConfig
from agentcore.apps.assistant._chat import AssistantMessage, UserMessage
from agentcore.backends import LocalBackend
from agentcore.memory import HashEmbeddingFunction, LongTermMemory
from agentcore.tools import ToolRegistry
from agentcore.tools.builtin import calculator_tool


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.05)


@pytest.mark.slow
@pytest.mark.timeout(1500)
async def test_real_model_streams_a_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCORE_HOME", str(tmp_path / "home"))
    memory = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    config = AssistantConfig(home=tmp_path / "assistant", theme="dark")
    app = AssistantApp(config, memory=memory, tools=ToolRegistry([calculator_tool()]))
    seen: list[Event] = []
    show = app.show_event

    async def spy(event: Event) -> None:
        seen.append(event)
        await show(event)

    app.show_event = spy  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.ready, timeout=900)
            assert isinstance(app.adapter.backend, LocalBackend)
            app.prompt.value = "What is the capital of France?"
            await pilot.press("enter")
            await until(pilot, lambda: app.runs == 1 and not app.busy, timeout=300)
            await pilot.pause(0.2)
            turns = [w for w in app.chat.children if isinstance(w, UserMessage | AssistantMessage)]
            assert isinstance(turns[0], UserMessage)
            replies = [w for w in turns if isinstance(w, AssistantMessage)]
            assert replies and replies[-1].text.strip()
            tokens = [e for e in seen if isinstance(e, TextDelta)]
            assert len(tokens) > 1  # streamed token by token
            final = seen[-1]
            assert isinstance(final, FinalAnswer) and final.success
            assert replies[-1].text.strip() == final.text.strip()
    finally:
        memory.close()
