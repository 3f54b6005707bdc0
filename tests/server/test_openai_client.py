"""The official ``openai`` client against ``python -m agentcore.server`` on the real default
model (a subprocess on a free loopback port): chat, streaming, tool calls, JSON Schema output,
sessions, and completions with echo + logprobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

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


TOOLS: Any = [WEATHER]  # plain dicts, as users write them (not the client's TypedDicts)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "server_conftest", Path(__file__).with_name("conftest.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    proc = module.ServerProcess(tmp_path_factory.mktemp("openai-sessions"), "--threads", "2")
    yield proc
    proc.stop()


@pytest.fixture
def client(server: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


MODEL = "SmolLM2-135M-Instruct"


def test_chat_plain_and_streamed(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    msgs: list[Any] = [{"role": "user", "content": "Name a color."}]
    plain = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=8)
    text = plain.choices[0].message.content
    assert text and plain.usage is not None and plain.usage.completion_tokens <= 8
    stream = client.chat.completions.create(
        model=MODEL,
        messages=msgs,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces) == text  # greedy by default: the same reply
    assert usage is not None and usage.total_tokens == plain.usage.total_tokens
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model=MODEL, messages=msgs, extra_body={"temperature": "x"})
    # what newer clients send is accepted: unknown fields are ignored
    extra = client.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=8, store=False, metadata={"a": "b"}, seed=None
    )
    assert extra.choices[0].message.content == text


def test_chat_logprobs_and_penalties(client: openai.OpenAI) -> None:
    msgs: list[Any] = [{"role": "user", "content": "Count from one to ten."}]
    r = client.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=10, logprobs=True, top_logprobs=2
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content
    assert "".join(t.token for t in lp.content) == r.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in lp.content)
    penalised = client.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=10, frequency_penalty=2, presence_penalty=2
    )
    assert penalised.choices[0].message.content != r.choices[0].message.content


def test_tool_calls_plain_and_streamed(client: openai.OpenAI) -> None:
    msgs: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    r = client.chat.completions.create(
        model=MODEL, messages=msgs, tools=TOOLS, tool_choice="required", max_tokens=40
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(args, WEATHER["function"]["parameters"])
    stream = client.chat.completions.create(
        model=MODEL,
        messages=msgs,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=40,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    content = ""
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            content += c.delta.content or ""
            for d in c.delta.tool_calls or ():
                slot = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += d.id or ""
                slot["name"] += (d.function.name if d.function else None) or ""
                slot["arguments"] += (d.function.arguments if d.function else None) or ""
            finish = c.finish_reason or finish
    assert content == "" and finish == "tool_calls"
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == args


def test_json_schema_output(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Ann is 31 years old. Give her as JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
        max_tokens=30,
    )
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), schema)


def test_sessions_through_extra_body(client: openai.OpenAI, server: Any) -> None:
    msgs: list[Any] = [{"role": "user", "content": "Hi! My name is Ada."}]
    first = client.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=6, extra_body={"session": "ada"}
    )
    # the openai habit: append the response message object and resend everything
    msgs += [first.choices[0].message, {"role": "user", "content": "Thanks."}]
    second = client.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=6, extra_body={"session": "ada"}
    )
    assert second.usage is not None and first.usage is not None
    assert second.usage.prompt_tokens < first.usage.prompt_tokens  # only the new turn
    info = httpx.get(f"{server.url}/v1/sessions/ada").json()
    assert info["tokens"] == first.usage.total_tokens + second.usage.total_tokens
    assert info["messages"] == 4


def test_completions_echo_logprobs_score_text(client: openai.OpenAI) -> None:
    scores: dict[str, float] = {}
    for city in ("Paris", "Berlin"):
        r = client.completions.create(
            model=MODEL,
            prompt=f"The capital of France is {city}",
            max_tokens=0,
            echo=True,
            logprobs=2,
        )
        lp = r.choices[0].logprobs
        assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
        assert r.choices[0].text == f"The capital of France is {city}"
        assert lp.token_logprobs[0] is None and all(v <= 0 for v in lp.token_logprobs[1:])
        assert "".join(lp.tokens) == r.choices[0].text
        last = lp.token_logprobs[-1]
        assert last is not None
        scores[city] = last
    assert scores["Paris"] > scores["Berlin"] + 1.0
    gen = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=4, logprobs=1)
    assert gen.choices[0].text.strip().startswith("5")
    gen_lp = gen.choices[0].logprobs
    assert gen_lp is not None and gen_lp.tokens is not None and len(gen_lp.tokens) == 4


def test_http_backend_streams_tool_calls_from_the_real_server(server: Any) -> None:
    from agentcore.backends._http import HttpBackend
    from agentcore.core.sampling import SamplingParams

    pieces: list[str] = []
    with HttpBackend(server.url) as backend:
        c = backend.chat(
            [{"role": "user", "content": "What's the weather in Lima?"}],
            session="agent",
            tools=TOOLS,
            tool_choice="required",
            params=SamplingParams(max_tokens=40),
            on_token=pieces.append,
        )
        assert c.finish_reason == "tool_calls" and pieces == [] and c.text == ""
        jsonschema.validate(c.tool_calls[0].arguments, WEATHER["function"]["parameters"])
        result = {"role": "tool", "tool_call_id": c.tool_calls[0].id, "content": "18 C, sunny"}
        follow = backend.chat([result], session="agent", params=SamplingParams(max_tokens=12))
        assert follow.text and follow.usage.session_tokens > c.usage.session_tokens


def test_model_card_names_device_and_dtype(server: Any) -> None:
    import torch

    card = httpx.get(f"{server.url}/v1/models").json()["data"][0]["agentcore"]
    if torch.cuda.is_available():
        assert card["device"].startswith("cuda") and card["dtype"] == "bfloat16"
    else:
        from agentcore.core.loader import choose_dtype

        expected = str(choose_dtype(torch.device("cpu"))).replace("torch.", "")
        assert card["device"] == "cpu" and card["dtype"] == expected


def test_tool_result_is_answered_not_echoed_stateless_and_on_a_session(
    client: openai.OpenAI,
) -> None:
    """What openai-agents and LangChain do: the whole conversation on every request, no
    session. After the tool's result the reply is a sentence, not the ``<tool_response>`` block
    copied back, and it is the reply a named session gives to the same exchange (greedy: the
    same prompt, so the same words)."""
    timer: dict[str, Any] = {
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
    tools: Any = [WEATHER, timer]
    ask: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What's the weather in Paris?"},
    ]
    replies = {}
    for session in (None, "tool-answer"):
        extra = {"session": session} if session else {}
        first = client.chat.completions.create(
            model=MODEL, messages=ask, tools=tools, max_tokens=40, extra_body=extra
        )
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert call.function.name == "get_weather"  # type: ignore[union-attr]
        result = {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"}
        conversation = [*ask, first.choices[0].message.model_dump(exclude_none=True), result]
        answer = client.chat.completions.create(
            model=MODEL, messages=conversation, tools=tools, max_tokens=40, extra_body=extra
        )
        text = answer.choices[0].message.content or ""
        assert answer.choices[0].finish_reason in ("stop", "length")
        assert text.strip() and "<tool_response>" not in text and "</tool" not in text
        assert not text.lstrip().startswith(("{", "<", "[")), text
        replies[session] = text
    assert replies[None] == replies["tool-answer"]
