"""Clients that leave: the generation stops, the session lock is freed, the server goes on.

A real uvicorn on a loopback port (in a thread) serves the tiny engine; each test asks for far
more tokens than it waits for and disconnects mid-stream, mid-generation or while queued.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentcore.backends import LocalBackend

LONG = 20_000  # tokens asked for; the tests never wait for them


@pytest.fixture
def url(
    tiny_backend: LocalBackend, make_app: Callable[..., FastAPI], serve_app: Callable[..., str]
) -> str:
    """The base URL of the tiny app behind a real uvicorn server."""
    return serve_app(make_app(tiny_backend, max_tokens_limit=LONG))


def body(session: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "tell me everything"}],
        "session": session,
        "max_tokens": LONG,
        "ignore_eos": True,
        **extra,
    }


def info(url: str, sid: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/sessions/{sid}", timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_disconnect_mid_stream_stops_generation(url: str) -> None:
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body("s", stream=True)) as r,
    ):
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen += 1
            if seen == 5:
                break  # leaving the block closes the connection mid-stream
    start = time.monotonic()
    state = info(url, "s")  # waits for the session lock: free once the worker stopped
    assert time.monotonic() - start < 10
    assert state["tokens"] < LONG // 2  # generation stopped long before max_tokens
    follow = httpx.post(
        f"{url}/v1/chat/completions",
        json={**body("s"), "max_tokens": 3, "ignore_eos": True},
        timeout=30,
    )
    assert follow.status_code == 200 and follow.json()["usage"]["completion_tokens"] == 3
    health = httpx.get(f"{url}/health").json()
    assert health["active_requests"] == 0 and health["errors"] == 0


def test_disconnect_during_a_plain_request(url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{url}/v1/completions",
            json={"prompt": "go", "session": "p", "max_tokens": LONG, "ignore_eos": True},
            timeout=0.5,
        )
    state = info(url, "p")
    assert 0 < state["tokens"] < LONG // 2
    assert httpx.get(f"{url}/health").json()["cancelled"] >= 1


def test_a_request_abandoned_while_queued_never_runs(url: str) -> None:
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body("q", stream=True)) as r,
    ):
        lines = r.iter_lines()  # (kept referenced: a dropped iterator closes the connection)
        streamed = 0
        while streamed < 20:  # the first request holds the session and is generating
            streamed += next(lines).startswith("data: ")
        queued = {**body("q"), "messages": [{"role": "user", "content": "QUEUED"}]}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json=queued, timeout=0.5)
        while streamed < 40:  # the first request runs on after the second gave up waiting
            streamed += next(lines).startswith("data: ")
    time.sleep(0.2)
    state = info(url, "q")
    assert state["messages"] == 2  # the first user message and its (cut) reply only
    # counted in streamed tokens, not in time: a loaded machine may stream few in 0.5 s
    assert state["tokens"] > streamed
    r2 = httpx.post(f"{url}/v1/chat/completions", json={**body("q"), "max_tokens": 2}, timeout=30)
    assert r2.status_code == 200
    assert info(url, "q")["messages"] == 4


def test_stream_events_are_well_formed_until_done(url: str) -> None:
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={**body("w", stream=True), "max_tokens": 40},
        timeout=30,
    )
    lines = r.text.split("\n")
    data = [line for line in lines if line]
    assert all(line.startswith("data: ") for line in data)
    assert data[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in data[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
