"""A stateless request (the whole conversation, no ``session``) renders what a session holds.

Through the HTTP API on a tiny random Llama with the real SmolLM2 tokenizer: the same
conversation (user, the assistant's tool call, the tool's result) sent to a named session one
turn at a time and then stateless in one request gives the model the same prompt: the same
text, and the same token ids except where the session holds the model's own tokenization of
the call it generated. The slow tests in ``test_openai_client.py`` check the replies on the
real default model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import agentcore.backends._local as local
from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Lima"]}},
            "required": ["city"],
        },
    },
}
TIMER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer", "enum": [5, 10]}},
            "required": ["minutes"],
        },
    },
}
TOOLS = [WEATHER, TIMER]
ASK = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What's the weather in Paris?"},
]


class _Turns:
    """What each generation of the backend started from: the stream's ids and text."""

    def __init__(self) -> None:
        self.prompts: list[tuple[list[int], str]] = []
        self.generated: list[list[int]] = []


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> _Turns:
    seen = _Turns()
    real = local._generate

    def spy(s: Any, turn: Any, constraint: Any, call_format: Any, bias: Any = None) -> Any:
        seen.prompts.append((list(s.tokens), s.rendered))
        result, records = real(s, turn, constraint, call_format, bias)
        seen.generated.append(list(result.token_ids))
        return result, records

    monkeypatch.setattr(local, "_generate", spy)
    return seen


async def _post(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/chat/completions",
        json={"model": "tiny-llama", "max_tokens": 48, "tools": TOOLS, **body},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_stateless_prompt_equals_the_sessions_after_a_tool_result(
    smollm2_engine: Engine,
    sessions_dir: Path,
    make_app: Callable[..., FastAPI],
    turns: _Turns,
) -> None:
    backend = LocalBackend(smollm2_engine, sessions_dir=sessions_dir)
    transport = httpx.ASGITransport(app=make_app(backend, max_tokens_limit=256))
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as api:
        first = await _post(api, messages=ASK, session="s")
        reply = first["choices"][0]["message"]
        assert reply["tool_calls"], reply
        call = reply["tool_calls"][0]
        result = {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"}
        conversation = [*ASK, reply, result]
        await _post(api, messages=conversation, session="s")  # the session: only the result is new
        await _post(api, messages=conversation)  # stateless: the whole conversation rendered
    codec = smollm2_engine.codec
    (p1, _), (p2, session_text), (stateless, stateless_text) = turns.prompts
    g1 = turns.generated[0]
    assert stateless_text == session_text
    assert '"name": "get_weather", "content": "Sunny, 21 C"' in session_text  # named, not "tool"
    assert "<tools>" in session_text and "set_timer" in session_text  # every tool, both paths
    # the ids: the session's, with the call it generated read as the tokenizer writes that text
    held = p1 + g1
    assert p2[: len(held)] == held
    assert stateless == p1 + codec.encode(codec.decode(g1)) + p2[len(held) :]
