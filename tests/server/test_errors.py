"""Bad requests get a 4xx whose OpenAI-style error says what was wrong (never a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MSG = [{"role": "user", "content": "hi"}]

# (endpoint, raw body or JSON object, status, words the message must contain, param)
CASES: list[tuple[str, Any, int, tuple[str, ...], str | None]] = [
    (CHAT, b'{"messages": [', 400, ("not valid JSON",), None),
    (CHAT, b"", 400, ("body is missing",), None),
    (CHAT, b"[1, 2]", 400, ("JSON object", "[1, 2]"), None),
    (
        CHAT,
        {"messages": MSG, "temperature": "hot"},
        400,
        ("temperature", "'hot'", "number"),
        "temperature",
    ),
    (
        CHAT,
        {"messages": MSG, "temperature": 3},
        400,
        ("temperature", "less than or equal to 2"),
        "temperature",
    ),
    (CHAT, {"messages": MSG, "max_tokens": "5"}, 400, ("max_tokens", "integer"), "max_tokens"),
    (CHAT, {"messages": MSG, "max_tokens": True}, 400, ("max_tokens",), "max_tokens"),
    (CHAT, {"messages": MSG, "max_tokens": 0}, 400, ("max_tokens >= 1",), "max_tokens"),
    (CHAT, {"messages": MSG, "max_tokens": 10**6}, 400, ("max_tokens=1000000", "64"), "max_tokens"),
    (CHAT, {"messages": MSG, "top_p": -0.1}, 400, ("top_p", "greater than or equal to 0"), "top_p"),
    (CHAT, {"messages": MSG, "seed": 2**63}, 400, ("seed",), "seed"),
    (CHAT, {"messages": MSG, "n": None, "stream": "yes"}, 400, ("stream", "'yes'"), "stream"),
    (
        CHAT,
        {"messages": MSG, "stream_options": {"include_usage": "no"}},
        400,
        ("stream_options.include_usage",),
        "stream_options.include_usage",
    ),
    (
        CHAT,
        {"messages": MSG, "repetition_scope": "all"},
        400,
        ("repetition_scope", "'context' or 'reply'"),
        "repetition_scope",
    ),
    (CHAT, {"messages": []}, 400, ("messages", "at least 1"), "messages"),
    (CHAT, {}, 400, ("messages", "required"), "messages"),
    (
        CHAT,
        {"messages": [{"role": "wizard", "content": "x"}]},
        400,
        ("messages[0].role", "'wizard'"),
        "messages[0].role",
    ),
    (
        CHAT,
        {"messages": [{"role": "user", "content": 5}]},
        400,
        ("messages[0].content", "got 5"),
        "messages[0].content",
    ),
    (
        CHAT,
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        400,
        ("messages[0].content",),
        None,
    ),
    (CHAT, {"messages": MSG, "n": 2}, 400, ("n=2", "not supported"), "n"),
    (
        CHAT,
        {"messages": MSG, "frequency_penalty": -3},
        400,
        ("frequency_penalty", "greater than or equal to -2"),
        "frequency_penalty",
    ),
    (
        CHAT,
        {"messages": MSG, "top_logprobs": 2},
        400,
        ("top_logprobs=2", "logprobs=true"),
        "top_logprobs",
    ),
    (CHAT, {"messages": MSG, "logprobs": True, "top_logprobs": 21}, 400, ("20",), "top_logprobs"),
    (CHAT, {"messages": MSG, "tool_choice": "required"}, 400, ("tools",), "tool_choice"),
    (CHAT, {"messages": MSG, "stop": ["ok", ""]}, 400, ("stop[1]", "empty"), "stop"),
    (CHAT, {"messages": MSG, "stop": [f"s{i}" for i in range(40)]}, 400, ("at most 16",), "stop"),
    (CHAT, {"messages": MSG, "session": "../etc/passwd"}, 400, ("session name",), "session"),
    (CHAT, {"messages": MSG, "model": "gpt-4o"}, 404, ("gpt-4o", "tiny-llama"), "model"),
    (
        CHAT,
        {"messages": MSG, "response_format": {"type": "xml"}},
        400,
        ("response_format",),
        "response_format",
    ),
    (
        CHAT,
        {
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "a b"}}],
        },
        400,
        ("tools[0].function.name",),
        "tools[0].function.name",
    ),
    (
        CHAT,
        {
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "f"}}] * 2,
        },
        400,
        ("appears twice",),
        "tools[1].function.name",
    ),
    (
        CHAT,
        {
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "g"}},
        },
        400,
        ("'g'", "not one of"),
        "tool_choice",
    ),
    (
        CHAT,
        {"messages": [{"role": "user", "content": "x", "tool_calls": []}, {"role": "tool"}]},
        400,
        ("tool message needs content",),
        "messages[1].content",
    ),
    (COMPLETIONS, {"prompt": ["a", "b"]}, 400, ("2 prompts",), "prompt"),
    (COMPLETIONS, {"prompt": [1, 999999]}, 400, ("prompt[1]=999999", "0..257"), None),
    (COMPLETIONS, {"prompt": ""}, 400, ("prompt is empty",), None),
    (COMPLETIONS, {"prompt": "x", "logprobs": 50}, 400, ("logprobs",), "logprobs"),
    (COMPLETIONS, {"prompt": "x", "suffix": "y"}, 400, ("suffix",), "suffix"),
    (
        COMPLETIONS,
        {"prompt": "x", "stream": True, "logprobs": 1},
        400,
        ("stream=false",),
        "logprobs",
    ),
    (COMPLETIONS, {"prompt": "x", "best_of": 3}, 400, ("best_of",), "best_of"),
]


@pytest.mark.parametrize(("path", "body", "status", "words", "param"), CASES)
async def test_bad_requests_are_explained(
    api: httpx.AsyncClient,
    path: str,
    body: Any,
    status: int,
    words: tuple[str, ...],
    param: str | None,
) -> None:
    if isinstance(body, bytes):
        r = await api.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = await api.post(path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    for word in words:
        assert word in err["message"], err["message"]
    if param is not None:
        assert err["param"] == param
    assert err["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


async def test_oversize_bodies_get_413(api: httpx.AsyncClient) -> None:
    huge = {"messages": [{"role": "user", "content": "x" * 70_000}]}
    r = await api.post(CHAT, json=huge)
    assert r.status_code == 413
    assert "at most 65536 bytes" in r.json()["error"]["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 5000
        yield b'"}]}'

    r = await api.post(COMPLETIONS, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_unknown_routes_and_methods(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/chat/completions")
    assert r.status_code == 405 and "GET" in r.json()["error"]["message"]
    r = await api.post("/v1/embeddings", json={})
    assert r.status_code == 404 and "/v1/embeddings" in r.json()["error"]["message"]


async def test_lone_surrogates_never_break_the_response(api: httpx.AsyncClient) -> None:
    body = b'{"messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 2}'
    r = await api.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400), r.text
    r = await api.post(
        COMPLETIONS,
        content=b'{"prompt": "a\\udfff", "echo": true, "max_tokens": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (200, 400), r.text


async def test_requests_during_shutdown_get_503(api: httpx.AsyncClient, tiny_app: Any) -> None:
    tiny_app.state.service.close()
    r = await api.post(CHAT, json={"messages": MSG, "max_tokens": 2})
    assert r.status_code == 503 and "shutting down" in r.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_server_bug_answers_500_without_its_exception_text(
    api: httpx.AsyncClient,
    tiny_backend: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    """A bug inside the server answers 500 with a request id; the exception's text (it may hold
    paths, prompts or keys) stays in the server log, under that id, with its traceback."""
    secret = "token=sk-live-1234 at /srv/private/state.db"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(secret)

    monkeypatch.setattr(tiny_backend, "complete", broken)
    with caplog.at_level("ERROR", logger="agentcore.server"):
        r = await api.post(CHAT, json={"messages": MSG, "max_tokens": 4, "stream": stream})
    text = r.text
    assert secret not in text and "RuntimeError" not in text
    # streamed or not, the failure comes before the first event: a plain 500 error body
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    request_id = text.split("request id ")[1].split(";")[0]
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None and secret in str(logged[0].exc_info[1])
