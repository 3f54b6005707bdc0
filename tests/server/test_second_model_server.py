"""The model server on the second real model, Qwen2.5-Coder-0.5B-Instruct (its own chat template
and ``<tool_call>`` format), through the official ``openai`` client: a tool call chosen under
``tool_choice: "auto"``, the reply after its result, and a named session that continues.

The model loads once for the module, as users get it (``Engine.load``: bf16 activations and int8
weights on a CPU with bf16, float32 elsewhere), behind :func:`agentcore.testing.serve_in_thread`.
The replies checked here were the same in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.core.models import QWEN25_CODER_05B, model_status

pytestmark = pytest.mark.slow

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}
TIMER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer"}},
            "required": ["minutes"],
        },
    },
}
TOOLS: Any = [WEATHER, TIMER]  # plain dicts, as users write them
ASK_TIMER: Any = [{"role": "user", "content": "Set a timer for 25 minutes."}]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert model_status(QWEN25_CODER_05B).installed, "run `make setup` (installs both models)"
    engine = Engine.load(QWEN25_CODER_05B.alias)
    backend = LocalBackend(engine, sessions_dir=tmp_path_factory.mktemp("qwen-sessions"))
    with testing.serve_in_thread(backend) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def model(client: openai.OpenAI) -> str:
    (card,) = client.models.list().data
    assert card.id == "Qwen2.5-Coder-0.5B-Instruct"
    return card.id


@pytest.fixture(scope="module")
def timer_reply(client: openai.OpenAI, model: str) -> Any:
    """The stateless reply to ``ASK_TIMER`` with both tools offered and the choice left to the
    model (shared: one generation for the two tests that read it)."""
    return client.chat.completions.create(
        model=model, messages=ASK_TIMER, tools=TOOLS, tool_choice="auto", max_tokens=48
    )


def test_the_model_picks_the_tool_and_states_the_value(
    client: openai.OpenAI, model: str, timer_reply: Any
) -> None:
    """Each request is answered with a call of the tool that fits it, in the OpenAI shape,
    with arguments that validate and carry the value the user stated."""
    choice = timer_reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "set_timer"
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, TIMER["function"]["parameters"])
    assert args["minutes"] == 25
    weather = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
        tools=TOOLS,
        tool_choice="auto",
        max_tokens=48,
    )
    calls = weather.choices[0].message.tool_calls
    assert weather.choices[0].finish_reason == "tool_calls" and calls and len(calls) == 1
    other = calls[0]
    assert other.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(other.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(args, WEATHER["function"]["parameters"])
    assert args["city"].lower() == "oslo"


def test_the_reply_after_the_tool_result_uses_it_in_words(
    client: openai.OpenAI, model: str, timer_reply: Any
) -> None:
    """What openai-agents and LangChain do: the whole conversation again, no session. The
    reply after the tool's result is a sentence with the result's value, not the
    ``<tool_response>`` block (or its JSON) copied back."""
    call = timer_reply.choices[0].message.tool_calls[0]
    result = {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "Timer started: it rings at 14:25.",
    }
    conversation = [
        *ASK_TIMER,
        timer_reply.choices[0].message.model_dump(exclude_none=True),
        result,
    ]
    answer = client.chat.completions.create(
        model=model, messages=conversation, tools=TOOLS, max_tokens=40
    )
    choice = answer.choices[0]
    text = choice.message.content or ""
    assert choice.finish_reason in ("stop", "length") and not choice.message.tool_calls
    assert "14:25" in text, text
    assert "tool_response" not in text and '"content"' not in text, text
    assert not text.lstrip().startswith(("{", "<", "[", "`", "(")), text


def test_a_named_session_continues(client: openai.OpenAI, model: str, url: str) -> None:
    """Turn 2 sends only its own message: the fact of turn 1 comes from the session the server
    holds (the same question without the session does not know it)."""
    told = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "My bike lock code is 5831."}],
        max_tokens=16,
        extra_body={"session": "bike"},
    )
    question: Any = [{"role": "user", "content": "What is my bike lock code?"}]
    asked = client.chat.completions.create(
        model=model, messages=question, max_tokens=16, extra_body={"session": "bike"}
    )
    alone = client.chat.completions.create(model=model, messages=question, max_tokens=16)
    assert told.usage is not None and asked.usage is not None
    assert asked.usage.prompt_tokens < told.usage.prompt_tokens  # only the new turn was read
    assert "5831" in (asked.choices[0].message.content or ""), asked.choices[0].message.content
    assert "5831" not in (alone.choices[0].message.content or "")
    info = httpx.get(f"{url}/v1/sessions/bike").json()
    assert info["messages"] == 4 and info["tokens"] == (
        told.usage.total_tokens + asked.usage.total_tokens
    )
