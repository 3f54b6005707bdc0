"""Fuzzed request bodies: whatever arrives, the answer is never a 5xx, and errors keep shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.server import ServerConfig, create_app

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
role = st.sampled_from(["system", "user", "assistant", "tool", "developer", "bot", ""])
message = st.fixed_dictionaries(
    {"role": role},
    optional={
        "content": st.one_of(
            st.text(max_size=40),
            st.none(),
            st.lists(
                st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}),
                max_size=2,
            ),
            json_value,
        ),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=5),
                    "function": st.fixed_dictionaries(
                        {
                            "name": st.text(max_size=8),
                            "arguments": st.one_of(st.text(max_size=20), json_value),
                        }
                    ),
                }
            ),
            max_size=2,
        ),
        "tool_call_id": st.text(max_size=5),
        "name": json_value,
    },
)
tool = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["function", "other"]),
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["f", "get_weather", "bad name", ""])},
            optional={"parameters": json_value, "description": st.text(max_size=10)},
        ),
    }
)
common: dict[str, Any] = {
    "model": st.one_of(st.sampled_from(["tiny-llama", "default", "other"]), json_value),
    "max_tokens": st.one_of(st.integers(min_value=-2, max_value=80), json_value),
    "temperature": st.one_of(st.floats(min_value=-1, max_value=3), json_value),
    "top_p": st.one_of(st.floats(min_value=-0.5, max_value=1.5), json_value),
    "top_k": st.one_of(st.integers(min_value=-1, max_value=300), json_value),
    "repetition_penalty": st.floats(min_value=-1, max_value=12),
    "stop": st.one_of(st.text(max_size=4), st.lists(st.text(max_size=4), max_size=20), json_value),
    "seed": st.one_of(st.integers(min_value=-5, max_value=2**64), json_value),
    "stream": st.one_of(st.booleans(), json_value),
    "stream_options": st.one_of(
        st.fixed_dictionaries({"include_usage": st.booleans()}), json_value
    ),
    "n": st.one_of(st.integers(min_value=0, max_value=3), json_value),
    "session": st.one_of(st.sampled_from(["s1", "s2", "../x", "", "a" * 200]), json_value),
    "ignore_eos": st.one_of(st.booleans(), json_value),
    "stop_token_ids": st.one_of(
        st.lists(st.integers(min_value=-1, max_value=300), max_size=3), json_value
    ),
    "logprobs": st.one_of(st.booleans(), st.integers(min_value=-1, max_value=25), json_value),
    "unknown_field": json_value,
}
chat_body = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.one_of(st.lists(message, max_size=3), json_value),
        "tools": st.one_of(st.lists(tool, max_size=2), json_value),
        "tool_choice": st.one_of(
            st.sampled_from(["auto", "none", "required", "any"]),
            st.fixed_dictionaries(
                {
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries({"name": st.text(max_size=4)}),
                }
            ),
            json_value,
        ),
        "response_format": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "json_object", "json_schema", "yaml"])},
                optional={
                    "json_schema": st.fixed_dictionaries(
                        {}, optional={"schema": json_value, "name": st.text(max_size=5)}
                    )
                },
            ),
            json_value,
        ),
        "max_completion_tokens": st.integers(min_value=-1, max_value=100),
        **common,
    },
)
completion_body = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.one_of(
            st.text(max_size=60),
            st.lists(st.integers(min_value=-3, max_value=400), max_size=8),
            st.lists(st.text(max_size=5), max_size=3),
            json_value,
        ),
        "echo": st.one_of(st.booleans(), json_value),
        "suffix": st.one_of(st.text(max_size=3), json_value),
        "best_of": st.one_of(st.integers(min_value=0, max_value=3), json_value),
        **common,
    },
)

# near-valid bodies: every field in or next to its valid range, so generation paths run too
short_text = st.text(min_size=1, max_size=12)
plausible: dict[str, Any] = {
    "max_tokens": st.integers(min_value=1, max_value=70),
    "temperature": st.floats(min_value=0, max_value=2),
    "top_p": st.floats(min_value=0.01, max_value=1),
    "top_k": st.integers(min_value=0, max_value=50),
    "repetition_penalty": st.floats(min_value=0.5, max_value=2),
    "stop": st.one_of(short_text, st.lists(short_text, max_size=3)),
    "seed": st.integers(min_value=0, max_value=2**63 - 1),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "session": st.sampled_from(["p1", "p2", "p3"]),
    "ignore_eos": st.booleans(),
    "stop_token_ids": st.lists(st.integers(min_value=0, max_value=257), max_size=3),
}
plausible_chat = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["system", "user", "assistant", "developer"]),
                    "content": st.text(max_size=40),
                }
            ),
            min_size=1,
            max_size=3,
        )
    },
    optional={
        "response_format": st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object"])}
        ),
        **plausible,
    },
)
plausible_completion = st.fixed_dictionaries(
    {
        "prompt": st.one_of(
            st.text(min_size=1, max_size=60),
            st.lists(st.integers(min_value=0, max_value=257), min_size=1, max_size=8),
        )
    },
    optional={
        "echo": st.booleans(),
        "logprobs": st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
        **plausible,
    },
)


@pytest.fixture(scope="module")
def fuzz_client(
    tiny_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("fuzz-sessions")
    app = create_app(LocalBackend(tiny_engine, sessions_dir=folder), ServerConfig.small())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        err = response.json()["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert set(err) == {"message", "type", "param", "code"}
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.endswith("data: [DONE]\n\n")
        for line in response.text.split("\n"):
            if line and line != "data: [DONE]":
                event = json.loads(line[6:])
                assert "error" not in event, event


FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=st.one_of(chat_body, plausible_chat))
def test_fuzzed_chat_bodies(fuzz_client: TestClient, body: dict[str, Any]) -> None:
    check(fuzz_client.post("/v1/chat/completions", json=body))


@FUZZ
@given(body=st.one_of(completion_body, plausible_completion))
def test_fuzzed_completion_bodies(fuzz_client: TestClient, body: dict[str, Any]) -> None:
    check(fuzz_client.post("/v1/completions", json=body))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)),
    path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/sessions"]),
)
def test_fuzzed_raw_bytes(fuzz_client: TestClient, raw: bytes, path: str) -> None:
    check(fuzz_client.post(path, content=raw, headers={"content-type": "application/json"}))
