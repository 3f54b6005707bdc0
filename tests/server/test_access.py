"""Who may call the server and how bodies arrive: the optional API key, opt-in CORS, and JSON
bodies sent without a JSON content type (``curl -d``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentcore.backends import LocalBackend

CHAT = "/v1/chat/completions"
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
ORIGIN = "http://localhost:3000"


@pytest.fixture
def client_for(
    tiny_backend: LocalBackend, make_app: Callable[..., FastAPI]
) -> Callable[..., httpx.AsyncClient]:
    def make(**config: Any) -> httpx.AsyncClient:
        app = make_app(tiny_backend, **config)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tiny")

    return make


@pytest.fixture
async def keyed(client_for: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(api_key="sk-local", cors_origins=(ORIGIN,)) as client:
        yield client


class TestApiKey:
    async def test_requests_without_the_key_get_401(self, keyed: httpx.AsyncClient) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sk-local"}):
            r = await keyed.post(CHAT, json=BODY, headers=headers)
            assert r.status_code == 401, r.text
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"}
            assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
            assert "API key" in err["message"] and "sk-local" not in err["message"]
        assert (await keyed.get("/v1/models")).status_code == 401

    async def test_the_key_opens_every_route(self, keyed: httpx.AsyncClient) -> None:
        auth = {"Authorization": "Bearer sk-local"}
        assert (await keyed.post(CHAT, json=BODY, headers=auth)).status_code == 200
        assert (await keyed.get("/v1/models", headers=auth)).status_code == 200
        assert (await keyed.get("/health")).status_code == 200  # liveness probes need no key

    async def test_no_key_configured_means_no_check(self, api: httpx.AsyncClient) -> None:
        r = await api.post(CHAT, json=BODY, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 200

    async def test_the_agentcore_client_sends_the_key(self, keyed: httpx.AsyncClient) -> None:
        from agentcore.client import AsyncClient

        transport = keyed._transport  # the ASGI transport of the keyed app
        async with AsyncClient("http://tiny", api_key="sk-local", transport=transport) as c:
            assert (await c.chat(BODY["messages"], max_tokens=2))["object"] == "chat.completion"


class TestCors:
    async def test_preflight_and_replies_carry_the_allowed_origin(
        self, keyed: httpx.AsyncClient
    ) -> None:
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        r = await keyed.options(CHAT, headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = await keyed.post(CHAT, json=BODY, headers={"Origin": ORIGIN})
        assert r.status_code == 401  # a browser can read why
        assert r.headers["access-control-allow-origin"] == ORIGIN
        r = await keyed.options(CHAT, headers={**preflight, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers

    async def test_off_unless_asked_for(self, api: httpx.AsyncClient) -> None:
        r = await api.post(CHAT, json=BODY, headers={"Origin": ORIGIN})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


class TestUntypedBodies:
    @pytest.mark.parametrize(
        "content_type", ["application/x-www-form-urlencoded", "text/plain", None]
    )
    async def test_json_sent_as_another_type_is_read(
        self, api: httpx.AsyncClient, content_type: str | None
    ) -> None:
        headers = {"content-type": content_type} if content_type else {}
        r = await api.post(CHAT, content=json.dumps(BODY).encode(), headers=headers)
        assert r.status_code == 200, r.text

    async def test_a_body_that_is_not_json_names_its_content_type(
        self, api: httpx.AsyncClient
    ) -> None:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        r = await api.post(CHAT, content=b"messages=hi", headers=headers)
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert "not valid JSON" in message
        assert "Content-Type: application/x-www-form-urlencoded" in message
        assert "application/json" in message
        r = await api.post(CHAT, content=b"hello")
        assert "sent without a Content-Type" in r.json()["error"]["message"]


def test_serve_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcore.server._main import build_parser, config_from_args

    parser = build_parser()
    ns = parser.parse_args(["--cors-origin", ORIGIN, "--cors-origin", "*", "--api-key", "k1"])
    config = config_from_args(ns)
    assert config.cors_origins == (ORIGIN, "*") and config.api_key == "k1"
    assert "k1" not in repr(config)
    monkeypatch.setenv("AGENTCORE_API_KEY", "from-env")
    assert config_from_args(parser.parse_args([])).api_key == "from-env"
    monkeypatch.delenv("AGENTCORE_API_KEY")
    plain = config_from_args(parser.parse_args([]))
    assert plain.api_key is None and plain.cors_origins == ()
