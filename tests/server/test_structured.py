"""Tool calls and JSON output through the server, on a tiny random model with the real SmolLM2
tokenizer: what the grammar guarantees holds whatever the sampling parameters, a call cut off
by ``max_tokens`` never leaks markup, and tool schemas are checked where OpenAI checks them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 8},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_PARAMS}}
PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PENALTIES = {"presence_penalty": 2, "frequency_penalty": 2, "temperature": 0.8, "seed": 1}


def sse_chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(b[6:]) for b in text.split("\n\n") if b.startswith("data: {")]


@pytest.mark.parametrize("penalty", [2, -2])
async def test_penalised_tool_calls_stay_valid(hf_api: httpx.AsyncClient, penalty: int) -> None:
    body = {
        "messages": MSG,
        "max_tokens": 120,
        "tools": [WEATHER],
        "tool_choice": "required",
        **PENALTIES,
        "frequency_penalty": penalty,
    }
    r = await hf_api.post(CHAT, json=body)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    args = json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"])
    jsonschema.validate(args, WEATHER_PARAMS)


async def test_penalised_json_output_stays_valid(hf_api: httpx.AsyncClient) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    body = {"messages": MSG, "max_tokens": 120, "response_format": fmt, **PENALTIES}
    r = await hf_api.post(CHAT, json=body)
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


@pytest.mark.parametrize("max_tokens", [1, 3, 8])
async def test_a_call_cut_off_by_max_tokens_shows_no_markup(
    hf_api: httpx.AsyncClient, max_tokens: int
) -> None:
    body = {
        "messages": MSG,
        "max_tokens": max_tokens,
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    plain = (await hf_api.post(CHAT, json=body)).json()["choices"][0]
    assert plain["finish_reason"] == "length"
    assert plain["message"] == {"role": "assistant", "content": None}
    chunks = sse_chunks((await hf_api.post(CHAT, json={**body, "stream": True})).text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == ""
    assert not any("tool_calls" in d for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_a_cut_off_call_resent_continues_the_session(hf_api: httpx.AsyncClient) -> None:
    body = {"messages": MSG, "max_tokens": 3, "tools": [WEATHER], "tool_choice": "required"}
    first = (await hf_api.post(CHAT, json={**body, "session": "cut"})).json()
    follow = [*MSG, first["choices"][0]["message"], {"role": "user", "content": "again"}]
    second = (await hf_api.post(CHAT, json={**body, "messages": follow, "session": "cut"})).json()
    # only the new user message was appended: the echoed cut-off turn matched the transcript
    assert second["usage"]["prompt_tokens"] < first["usage"]["prompt_tokens"]


def test_the_stream_shaper_never_shows_call_markup() -> None:
    from agentcore.backends import Completion
    from agentcore.server._responses import ChatStreamShaper

    for forced in (True, False):
        shaper = ChatStreamShaper(tools=True, forced=forced)
        cut = '<tool_call>\n{"name'
        assert shaper.feed(cut[:5]) + shaper.feed(cut[5:]) == []
        assert shaper.finish(Completion(text=cut, finish_reason="length")) == []
    shaper = ChatStreamShaper(tools=True, forced=False)
    assert shaper.feed("<to") == []
    assert shaper.finish(Completion(text="<to", finish_reason="length")) == []


def test_response_format_shapes_the_text_alternative_of_the_action_grammar(
    smollm2_engine: Any,
) -> None:
    from agentcore.backends._local import _with_json_text, tools_from_openai
    from agentcore.core.constraint import GrammarConstraint, TokenNotAllowedError
    from agentcore.tools import build_action_grammar

    tok = smollm2_engine.codec.hf
    grammar = _with_json_text(
        build_action_grammar(tools_from_openai([WEATHER]), "required"), PERSON
    )

    def accepts(text: str) -> bool:
        c = GrammarConstraint.from_grammar(tok, grammar, eos_token_ids=[tok.eos_token_id])
        try:
            for t in tok.encode(text, add_special_tokens=False):
                c.advance(t)
        except TokenNotAllowedError:
            return False
        return c.is_accepting()

    assert accepts('{"name": "Ann", "age": 31}')
    assert accepts(
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}\n</tool_call>'
    )
    assert not accepts("Hello there")
    assert not accepts('{"name": "Ann"}')  # age is required


@pytest.mark.parametrize("seed", range(4))
async def test_tools_and_response_format_together(hf_api: httpx.AsyncClient, seed: int) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    body = {
        "messages": MSG,
        "max_tokens": 120,
        "tools": [WEATHER],
        "response_format": fmt,
        "temperature": 1.0,
        "seed": seed,
    }
    choice = (await hf_api.post(CHAT, json=body)).json()["choices"][0]
    if choice["finish_reason"] == "tool_calls":
        args = choice["message"]["tool_calls"][0]["function"]["arguments"]
        jsonschema.validate(json.loads(args), WEATHER_PARAMS)
    else:
        assert choice["finish_reason"] == "stop", choice
        jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


def _tool(name: str, parameters: dict[str, Any], strict: bool | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "parameters": parameters}
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


TAGS = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
    "required": ["tags"],
}


async def test_strict_tools_refuse_keywords_the_grammar_cannot_enforce(
    hf_api: httpx.AsyncClient,
) -> None:
    body = {"messages": MSG, "max_tokens": 3, "tool_choice": "required"}
    r = await hf_api.post(CHAT, json={**body, "tools": [WEATHER, _tool("tag", TAGS, True)]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "tools[1].function.parameters"
    for word in ("tools[1]", "'tag'", "strict", "uniqueItems"):
        assert word in err["message"], err["message"]


async def test_other_tools_are_decoded_best_effort_with_a_warning(
    hf_api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"messages": MSG, "max_tokens": 3, "tool_choice": "required"}
    with caplog.at_level("WARNING", logger="agentcore.backends"):
        for _ in range(2):
            r = await hf_api.post(CHAT, json={**body, "tools": [_tool("tag", TAGS, False)]})
            assert r.status_code == 200, r.text
    assert sum("uniqueItems" in rec.getMessage() for rec in caplog.records) == 1


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "array"},
        {"type": "object", "properties": {"a": {"type": "strin"}}},
    ],
)
async def test_bad_tool_schemas_name_their_entry(
    hf_api: httpx.AsyncClient, parameters: dict[str, Any]
) -> None:
    tools = [WEATHER, _tool("broken", parameters)]
    r = await hf_api.post(CHAT, json={"messages": MSG, "max_tokens": 3, "tools": tools})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["message"].startswith("tools[1] ('broken'): "), err["message"]
    assert err["param"] == "tools[1].function.parameters"


async def test_legacy_functions_get_a_legacy_function_call(hf_api: httpx.AsyncClient) -> None:
    body = {
        "messages": MSG,
        "max_tokens": 120,
        "functions": [WEATHER["function"]],
        "function_call": {"name": "get_weather"},
    }
    choice = (await hf_api.post(CHAT, json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "function_call", choice
    call = choice["message"]["function_call"]
    assert call["name"] == "get_weather" and "tool_calls" not in choice["message"]
    jsonschema.validate(json.loads(call["arguments"]), WEATHER_PARAMS)
    chunks = sse_chunks((await hf_api.post(CHAT, json={**body, "stream": True})).text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    streamed = [d["function_call"] for d in deltas if "function_call" in d]
    assert streamed[0]["name"] == "get_weather"
    assert "".join(d["arguments"] for d in streamed) == call["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"
