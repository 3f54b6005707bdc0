"""A session name that no longer matches: both ways of naming a session keep working, a
different conversation under an old name gets 409 naming the message that differs,
``"session_reset": true`` starts over, and the sessions on disk are limited (507)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine

SYSTEM = {"role": "system", "content": "You are terse."}
HI = {"role": "user", "content": "hi"}
MORE = {"role": "user", "content": "more"}
P = {"max_tokens": 4}


async def _chat(api: httpx.AsyncClient, messages: list[Any], **extra: Any) -> httpx.Response:
    body = {"messages": messages, "session": "s", **P, **extra}
    return await api.post("/v1/chat/completions", json=body)


async def test_both_modes_continue_and_a_different_conversation_is_refused(
    api: httpx.AsyncClient,
) -> None:
    first = await _chat(api, [SYSTEM, HI])
    reply = first.json()["choices"][0]["message"]
    # an OpenAI client resends everything; the project's client sends only what is new
    assert (await _chat(api, [SYSTEM, HI, reply, MORE])).status_code == 200
    assert (await _chat(api, [MORE])).status_code == 200
    held = (await api.get("/v1/sessions/s")).json()
    other = [{"role": "system", "content": "You are a pirate."}, HI]
    r = await _chat(api, other)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "session_conflict" and error["param"] == "messages[0]"
    assert "session_reset" in error["message"]
    edited = [SYSTEM, HI, {"role": "assistant", "content": "an edited reply"}, MORE]
    r = await _chat(api, edited)
    assert r.status_code == 409 and r.json()["error"]["param"] == "messages[2]"
    assert (await api.get("/v1/sessions/s")).json()["tokens"] == held["tokens"]  # untouched
    # starting over
    r = await _chat(api, other, session_reset=True)
    assert r.status_code == 200, r.text
    info = (await api.get("/v1/sessions/s")).json()
    assert info["messages"] == 3 and info["tokens"] == r.json()["usage"]["session_tokens"]
    r = await api.post("/v1/chat/completions", json={"messages": [HI], "session_reset": True, **P})
    assert r.status_code == 400 and r.json()["error"]["param"] == "session_reset"


async def test_completions_can_start_a_session_over(api: httpx.AsyncClient) -> None:
    body = {"prompt": "once upon a time", "session": "doc", "max_tokens": 3}
    first = (await api.post("/v1/completions", json=body)).json()
    again = (await api.post("/v1/completions", json={**body, "session_reset": True})).json()
    assert again["usage"]["session_tokens"] == first["usage"]["session_tokens"]
    assert again["choices"][0]["text"] == first["choices"][0]["text"]


@pytest.fixture
async def limited(
    tiny_engine: Engine, sessions_dir: Path, make_app: Callable[..., FastAPI]
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(LocalBackend(tiny_engine, sessions_dir=sessions_dir, max_sessions=2))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_sessions_on_disk_are_limited(limited: httpx.AsyncClient) -> None:
    for sid in ("a", "b"):
        body = {"messages": [HI], "session": sid, **P}
        assert (await limited.post("/v1/chat/completions", json=body)).status_code == 200
    r = await limited.post("/v1/chat/completions", json={"messages": [HI], "session": "c", **P})
    assert r.status_code == 507, r.text
    error = r.json()["error"]
    assert error["code"] == "session_limit" and "--max-sessions" in error["message"]
    r = await limited.post("/v1/sessions", json={"id": "c"})
    assert r.status_code == 507
    stateless = await limited.post("/v1/chat/completions", json={"messages": [HI], **P})
    assert stateless.status_code == 200  # requests without a session are not limited
    assert (await limited.delete("/v1/sessions/a")).status_code == 200
    r = await limited.post("/v1/chat/completions", json={"messages": [HI], "session": "c", **P})
    assert r.status_code == 200


def test_serve_refuses_a_negative_session_limit(capsys: Any, tmp_path: Path) -> None:
    from agentcore.cli import main

    code = main(["serve", "--max-sessions", "-1", "--sessions-dir", str(tmp_path)])
    assert code == 1 and "--max-sessions" in capsys.readouterr().err
