"""What real OpenAI clients send is accepted: fields this server does not know are ignored
(logged once per name), ``null`` means the default, and legacy ``functions`` still work."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from agentcore.server._schemas import UNKNOWN_FIELDS, ChatCompletionBody

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]

EXTRA_FIELDS: list[dict[str, Any]] = [
    {"store": False, "metadata": {"a": "b"}},
    {"service_tier": "auto", "reasoning_effort": "low", "modalities": ["text"]},
    {"prediction": {"type": "content", "content": "x"}, "web_search_options": {}},
    {"min_p": 0.1, "best_of": 1, "use_beam_search": False, "skip_special_tokens": True},
    {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": False}},
    {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {}}]}
        ]
    },
    {
        "messages": [
            {"role": "assistant", "content": "x", "reasoning_content": "...", "padding": 1},
            {"role": "user", "content": "hi"},
        ]
    },
]


@pytest.mark.parametrize("extra", EXTRA_FIELDS)
async def test_unknown_fields_are_ignored(api: httpx.AsyncClient, extra: dict[str, Any]) -> None:
    r = await api.post(CHAT, json={"messages": MSG, "max_tokens": 2, **extra})
    assert r.status_code == 200, r.text


def test_unknown_fields_are_logged_once_per_name(caplog: pytest.LogCaptureFixture) -> None:
    UNKNOWN_FIELDS.seen.discard("x_never_seen")
    with caplog.at_level(logging.WARNING, logger="agentcore.server"):
        for _ in range(3):
            ChatCompletionBody.model_validate({"messages": MSG, "x_never_seen": 1})
    hits = [r for r in caplog.records if "x_never_seen" in r.getMessage()]
    assert len(hits) == 1 and hits[0].levelno == logging.WARNING


async def test_tool_definitions_with_extra_keys_are_accepted(api: httpx.AsyncClient) -> None:
    tool = {"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}
    body = {"messages": MSG, "max_tokens": 2, "tools": [tool], "tool_choice": "none"}
    r = await api.post(CHAT, json=body)
    assert r.status_code == 200, r.text


NULLABLE = [
    "n",
    "stream",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "stream_options",
    "user",
    "tools",
    "tool_choice",
    "response_format",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "ignore_eos",
    "model",
]


@pytest.mark.parametrize("field", NULLABLE)
async def test_null_means_the_default(api: httpx.AsyncClient, field: str) -> None:
    body: dict[str, Any] = {"messages": MSG, "max_tokens": 2, field: None}
    r = await api.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "chat.completion"


async def test_null_on_completions_fields(api: httpx.AsyncClient) -> None:
    body = {"prompt": "x", "max_tokens": 1, "echo": None, "stream": None, "n": None}
    r = await api.post("/v1/completions", json={**body, "suffix": None, "logprobs": None})
    assert r.status_code == 200, r.text


async def test_null_on_a_required_field_is_still_refused(api: httpx.AsyncClient) -> None:
    r = await api.post(CHAT, json={"messages": None})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


async def test_top_p_zero_decodes_greedily(api: httpx.AsyncClient) -> None:
    base = {"messages": MSG, "max_tokens": 6}
    greedy = (await api.post(CHAT, json={**base, "temperature": 0})).json()
    top0 = (await api.post(CHAT, json={**base, "temperature": 1.5, "top_p": 0})).json()
    assert top0["choices"][0]["message"] == greedy["choices"][0]["message"]


def test_legacy_functions_become_tools() -> None:
    req = ChatCompletionBody.model_validate(
        {
            "messages": MSG,
            "functions": [{"name": "f", "parameters": {"type": "object"}}],
            "function_call": {"name": "f"},
        }
    )
    assert req.tools is not None and req.tools[0].function.name == "f"
    assert req.tool_choice_value() == {"type": "function", "function": {"name": "f"}}
    legacy_auto = ChatCompletionBody.model_validate(
        {"messages": MSG, "functions": [{"name": "g"}], "function_call": "none"}
    )
    assert legacy_auto.tool_choice == "none"


def test_legacy_function_messages_are_read_as_tool_messages() -> None:
    req = ChatCompletionBody.model_validate(
        {
            "messages": [
                *MSG,
                {"role": "assistant", "function_call": {"name": "f", "arguments": '{"a": 1}'}},
                {"role": "function", "name": "f", "content": "42"},
            ]
        }
    )
    call, result = (m.wire() for m in req.messages[1:])
    assert call["tool_calls"][0]["function"] == {"name": "f", "arguments": {"a": 1}}
    assert result == {"role": "tool", "content": "42", "name": "f"}


async def test_refused_values_log_no_unknown_fields(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    UNKNOWN_FIELDS.seen.discard("image_url")
    part = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    with caplog.at_level(logging.WARNING, logger="agentcore.server"):
        r = await api.post(CHAT, json={"messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content"
    assert not any("image_url" in rec.getMessage() for rec in caplog.records)


async def test_refusals_name_their_param_once(api: httpx.AsyncClient) -> None:
    err = (await api.post(CHAT, json={"messages": MSG, "n": 3})).json()["error"]
    assert err["param"] == "n" and err["message"].startswith("n=3 is not supported")
