"""Chat and session endpoints on the tiny engine, in-process (ASGI transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine

USER = {"role": "user", "content": "hello there"}


def sse_events(text: str) -> list[Any]:
    """Parse an SSE body strictly: only ``data:`` lines separated by blank lines."""
    blocks = [b for b in text.split("\n\n") if b]
    assert text.endswith("\n\n")
    events: list[Any] = []
    for block in blocks:
        assert block.startswith("data: ") and "\n" not in block, block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_models_and_health(api: httpx.AsyncClient) -> None:
    models = (await api.get("/v1/models")).json()
    assert models["object"] == "list"
    card = models["data"][0]
    assert card["id"] == "tiny-llama" and card["owned_by"] == "agentcore"
    assert card["agentcore"]["sessions"] is True and card["agentcore"]["device"] == "cpu"
    assert (await api.get("/v1/models/tiny-llama")).json()["id"] == "tiny-llama"
    assert (await api.get("/v1/models/gpt-4")).status_code == 404
    health = (await api.get("/health")).json()
    assert health["status"] == "ok" and health["model"] == "tiny-llama"


async def test_stream_and_plain_replies_agree(api: httpx.AsyncClient) -> None:
    body = {"model": "tiny-llama", "messages": [USER], "max_tokens": 12}
    plain = (await api.post("/v1/chat/completions", json=body)).json()
    assert plain["object"] == "chat.completion"
    msg = plain["choices"][0]["message"]
    assert msg["role"] == "assistant" and isinstance(msg["content"], str)
    assert plain["usage"]["completion_tokens"] <= 12
    assert plain["usage"]["total_tokens"] == (
        plain["usage"]["prompt_tokens"] + plain["usage"]["completion_tokens"]
    )
    r = await api.post(
        "/v1/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == msg["content"]  # greedy: the same reply either way
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [f["choices"][0]["finish_reason"] for f in finals] == [
        plain["choices"][0]["finish_reason"]
    ]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]


async def test_stop_strings_and_seeded_sampling(api: httpx.AsyncClient) -> None:
    base = {"messages": [USER], "max_tokens": 20}
    full = (await api.post("/v1/chat/completions", json=base)).json()["choices"][0]
    text = full["message"]["content"]
    stop = text[3:5]
    cut = (await api.post("/v1/chat/completions", json={**base, "stop": stop})).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    sampled = {**base, "temperature": 1.5, "top_p": 0.95, "top_k": 50, "seed": 7}
    a = (await api.post("/v1/chat/completions", json=sampled)).json()
    b = (await api.post("/v1/chat/completions", json=sampled)).json()
    c = (await api.post("/v1/chat/completions", json={**sampled, "seed": 8})).json()
    assert a["choices"][0]["message"] == b["choices"][0]["message"]
    assert a["choices"][0]["message"] != c["choices"][0]["message"]
    exact = (await api.post("/v1/chat/completions", json={**base, "ignore_eos": True})).json()
    assert exact["usage"]["completion_tokens"] == 20


async def test_unseeded_sampling_differs_per_request(api: httpx.AsyncClient) -> None:
    sampled = {"messages": [USER], "max_tokens": 12, "temperature": 1.0}
    replies = [
        (await api.post("/v1/chat/completions", json=sampled)).json()["choices"][0]["message"]
        for _ in range(3)
    ]
    assert len({r["content"] for r in replies}) == 3
    seeded = [
        (await api.post("/v1/chat/completions", json={**sampled, "seed": -42})).json()
        for _ in range(2)
    ]
    assert seeded[0]["choices"] == seeded[1]["choices"]


async def test_session_appends_only_what_is_new(
    api: httpx.AsyncClient, tiny_engine: Engine
) -> None:
    p = {"max_tokens": 6}
    first = (
        await api.post("/v1/chat/completions", json={"messages": [USER], "session": "a", **p})
    ).json()
    assert first["session"] == "a"
    reply = first["choices"][0]["message"]
    turn2 = {"role": "user", "content": "and then?"}
    # a client that resends the whole conversation appends only the new message ...
    resent = (
        await api.post(
            "/v1/chat/completions",
            json={"messages": [USER, reply, turn2], "session": "a", **p},
        )
    ).json()
    # ... exactly as much as a client that sends only the new message to an identical session
    await api.post("/v1/chat/completions", json={"messages": [USER], "session": "b", **p})
    only_new = (
        await api.post("/v1/chat/completions", json={"messages": [turn2], "session": "b", **p})
    ).json()
    assert resent["usage"]["prompt_tokens"] == only_new["usage"]["prompt_tokens"]
    assert resent["choices"][0]["message"] == only_new["choices"][0]["message"]
    new_part = "<|im_end|>\n<|im_start|>user\nand then?<|im_end|>\n<|im_start|>assistant\n"
    assert resent["usage"]["prompt_tokens"] <= len(tiny_engine.codec.encode(new_part)) + 1
    info = (await api.get("/v1/sessions/a")).json()
    assert info["tokens"] == resent["usage"]["session_tokens"]
    assert info["tokens"] == (first["usage"]["total_tokens"] + resent["usage"]["total_tokens"])
    assert info["saved_bytes"] > 0 and info["cache_bytes"] > 0 and info["messages"] == 4
    # stateless requests leave no session behind
    await api.post("/v1/chat/completions", json={"messages": [USER], **p})
    ids = [s["id"] for s in (await api.get("/v1/sessions")).json()["data"]]
    assert ids == ["a", "b"]


async def test_session_survives_a_restart_exactly(
    tiny_engine: Engine, sessions_dir: Path, make_app: Callable[..., FastAPI]
) -> None:
    p = {"max_tokens": 8}
    msgs = [{"role": "user", "content": "the code word is kiwi"}]
    question = [{"role": "user", "content": "what is the code word?"}]

    async def post(app: FastAPI, body: dict[str, Any]) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

    first = make_app(LocalBackend(tiny_engine, sessions_dir=sessions_dir))
    for sid in ("kept", "restarted"):
        await post(first, {"messages": msgs, "session": sid, **p})
    expected = await post(first, {"messages": question, "session": "kept", **p})
    second = make_app(LocalBackend(tiny_engine, sessions_dir=sessions_dir))  # a new process
    got = await post(second, {"messages": question, "session": "restarted", **p})
    assert got["choices"] == expected["choices"]
    assert got["usage"] == expected["usage"]


async def test_session_endpoints(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/sessions", json={"id": "notes"})
    assert created.status_code == 201 and created.json()["tokens"] == 0
    again = await api.post("/v1/sessions", json={"id": "notes"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    anonymous = (await api.post("/v1/sessions", json={})).json()
    assert anonymous["id"].startswith("s-")
    ids = {s["id"] for s in (await api.get("/v1/sessions")).json()["data"]}
    assert ids == {"notes", anonymous["id"]}
    deleted = await api.delete("/v1/sessions/notes")
    assert deleted.json() == {"id": "notes", "object": "session.deleted", "deleted": True}
    for method in ("GET", "DELETE"):
        gone = await api.request(method, "/v1/sessions/notes")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "session_not_found"
    bad = await api.get("/v1/sessions/..hidden")
    assert bad.status_code == 400 and "session name" in bad.json()["error"]["message"]


async def test_unknown_sessions_refused_without_auto_create(
    tiny_backend: LocalBackend, make_app: Callable[..., FastAPI]
) -> None:
    app = make_app(tiny_backend, auto_create_sessions=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        body = {"messages": [USER], "session": "new", "max_tokens": 3}
        r = await c.post("/v1/chat/completions", json=body)
        assert r.status_code == 404 and "POST /v1/sessions" in r.json()["error"]["message"]
        r = await c.post("/v1/completions", json={"prompt": "x", "session": "new"})
        assert r.status_code == 404
        assert (await c.post("/v1/sessions", json={"id": "new"})).status_code == 201
        assert (await c.post("/v1/chat/completions", json=body)).status_code == 200


async def test_tool_calls_need_a_real_tokenizer(api: httpx.AsyncClient) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    r = await api.post(
        "/v1/chat/completions", json={"messages": [USER], "tools": [tool], "session": "t"}
    )
    assert r.status_code == 400
    assert "Hugging Face tokenizer" in r.json()["error"]["message"]
    # the failed request left the session usable
    ok = await api.post(
        "/v1/chat/completions", json={"messages": [USER], "session": "t", "max_tokens": 2}
    )
    assert ok.status_code == 200


async def test_a_message_longer_than_the_window_streams_through(
    api: httpx.AsyncClient, tiny_engine: Engine
) -> None:
    budget = tiny_engine.default_streaming().budget
    long_text = "x" * (budget + 900)
    body = {"messages": [{"role": "user", "content": long_text}], "session": "big", "max_tokens": 2}
    r = await api.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] > budget + 900
    info = (await api.get("/v1/sessions/big")).json()
    assert info["tokens"] == r.json()["usage"]["session_tokens"]
    assert info["cached_tokens"] <= budget


def test_serve_refuses_a_residency_cap_below_one(capsys: Any, tmp_path: Path) -> None:
    from agentcore.cli import main

    code = main(["serve", "--max-resident-sessions", "0", "--sessions-dir", str(tmp_path)])
    assert code == 1
    assert "--max-resident-sessions must be >= 1, got 0" in capsys.readouterr().err


async def test_presence_and_frequency_penalties_change_the_reply(api: httpx.AsyncClient) -> None:
    base = {"messages": [USER], "max_tokens": 24, "ignore_eos": True, "logprobs": True}

    async def tokens(**extra: Any) -> list[str]:
        r = await api.post("/v1/chat/completions", json={**base, **extra})
        assert r.status_code == 200, r.text
        return [t["token"] for t in r.json()["choices"][0]["logprobs"]["content"]]

    plain = await tokens()
    assert len(set(plain)) < len(plain)  # the tiny model repeats itself
    penalised = await tokens(frequency_penalty=2, presence_penalty=2)
    assert penalised != plain
    assert len(set(penalised)) > len(set(plain))
    r = await api.post("/v1/chat/completions", json={**base, "presence_penalty": 2.5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "presence_penalty"


async def test_chat_logprobs_in_openai_shape(api: httpx.AsyncClient) -> None:
    body = {"messages": [USER], "max_tokens": 6, "logprobs": True, "top_logprobs": 3}
    plain = (await api.post("/v1/chat/completions", json=body)).json()
    choice = plain["choices"][0]
    content = choice["logprobs"]["content"]
    assert choice["logprobs"]["refusal"] is None
    assert len(content) == plain["usage"]["completion_tokens"] - (choice["finish_reason"] == "stop")
    for entry in content:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        assert entry["bytes"] == list(entry["token"].encode())
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True) and tops[0] <= 0
        assert entry["logprob"] == tops[0]  # greedy: the most likely token was picked
    events = sse_events(
        (await api.post("/v1/chat/completions", json={**body, "stream": True})).text
    )
    last = [e for e in events[:-1] if e["choices"] and e["choices"][0]["finish_reason"]]
    assert last[0]["choices"][0]["logprobs"] == choice["logprobs"]
    off = {**body, "logprobs": False, "top_logprobs": None}
    without = (await api.post("/v1/chat/completions", json=off)).json()
    assert without["choices"][0]["logprobs"] is None
    r = await api.post("/v1/chat/completions", json={**body, "logprobs": None})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_logprobs"
