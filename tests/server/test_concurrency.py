"""16 concurrent clients x 10 requests on distinct sessions: no errors and no cross-talk.

Every reply is compared with the reply the same session gets when its requests run alone, one
after another, in-process (greedy decoding: any mixing of sessions would change the text).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams

CLIENTS = 16
REQUESTS = 10
MAX_TOKENS = 6


def user_text(client: int, turn: int) -> str:
    return f"client {client} turn {turn}: remember {client * 7919 % 1000}"


async def run_client(http: httpx.AsyncClient, client: int) -> list[tuple[str, int]]:
    sid = f"c{client}"
    out: list[tuple[str, int]] = []
    for turn in range(REQUESTS):
        body = {
            "messages": [{"role": "user", "content": user_text(client, turn)}],
            "session": sid,
            "max_tokens": MAX_TOKENS,
        }
        if (client + turn) % 2:  # half the requests stream
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
            r = await http.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            chunks = [json.loads(x[6:]) for x in r.text.split("\n") if x and x != "data: [DONE]"]
            text = "".join(
                c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]
            )
            tokens = chunks[-1]["usage"]["session_tokens"]
        else:
            r = await http.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            data = r.json()
            assert data["session"] == sid
            text = data["choices"][0]["message"]["content"]
            tokens = data["usage"]["session_tokens"]
        out.append((text, tokens))
    return out


async def test_concurrent_sessions_do_not_interfere(
    tiny_engine: Engine,
    tiny_backend: LocalBackend,
    make_app: Callable[..., FastAPI],
    serve_app: Callable[..., str],
) -> None:
    url = serve_app(make_app(tiny_backend, workers=CLIENTS))
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        results = await asyncio.gather(*(run_client(http, c) for c in range(CLIENTS)))
        health = (await http.get("/health")).json()
        listed = (await http.get("/v1/sessions")).json()["data"]
    assert health["errors"] == 0 and health["active_requests"] == 0
    assert sorted(s["id"] for s in listed) == sorted(f"c{c}" for c in range(CLIENTS))

    alone = LocalBackend(tiny_engine)  # in memory: the same sessions, run one at a time
    p = SamplingParams(max_tokens=MAX_TOKENS)
    for client in range(CLIENTS):
        for turn in range(REQUESTS):
            ref = alone.chat(
                [{"role": "user", "content": user_text(client, turn)}],
                session=f"c{client}",
                params=p,
            )
            assert results[client][turn] == (ref.text, ref.usage.session_tokens), (client, turn)
