"""The httpx client: against the real server (uvicorn on loopback, tiny engine) and, for the
retry policy and SSE edge cases, against ``httpx.MockTransport``."""

from __future__ import annotations

import json

import httpx
import pytest

from agentcore.client import APIError, AsyncClient, Client, ClientConfig, ConnectionFailedError

HI = [{"role": "user", "content": "hi"}]


def test_sync_client_against_the_server(live: str) -> None:
    with Client(live, config=ClientConfig.interactive()) as client:
        assert client.default_model() == "tiny-llama"
        plain = client.chat(HI, max_tokens=5, session="s")
        assert plain["session"] == "s"
        chunks = list(client.stream_chat(HI, max_tokens=5))
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == client.chat(HI, max_tokens=5)["choices"][0]["message"]["content"]
        scored = client.complete("abc", echo=True, logprobs=0, max_tokens=0)
        assert scored["choices"][0]["logprobs"]["tokens"] == ["a", "b", "c"]
        pieces = [c["choices"][0]["text"] for c in client.stream_complete("abc", max_tokens=3)]
        assert len("".join(pieces)) >= 1
        assert client.session("s")["tokens"] == plain["usage"]["session_tokens"]  # type: ignore[index]
        assert [s["id"] for s in client.sessions()] == ["s"]
        assert client.create_session("t")["id"] == "t"
        assert client.delete_session("t") and not client.delete_session("t")
        assert client.session("t") is None
        with pytest.raises(APIError) as info:
            client.chat(HI, max_tokens=10**6)
        assert info.value.status == 400 and info.value.param == "max_tokens"
        assert "max_tokens=1000000" in info.value.message


async def test_async_client_against_the_server(live: str) -> None:
    async with AsyncClient(live, config=ClientConfig.interactive()) as client:
        plain = await client.chat(HI, max_tokens=5)
        chunks = [c async for c in client.stream_chat(HI, max_tokens=5)]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == plain["choices"][0]["message"]["content"]
        done = await client.complete("xy", max_tokens=2, session="a")
        assert done["usage"]["session_tokens"] == 4
        assert (await client.session("a"))["tokens"] == 4  # type: ignore[index]
        assert await client.delete_session("a")
        with pytest.raises(APIError, match="temperature"):
            await client.chat(HI, temperature="hot")


class Flaky:
    """A transport that fails to connect ``fail`` times, then answers."""

    def __init__(self, fail: int, error: type[httpx.TransportError] = httpx.ConnectError) -> None:
        self.fail = fail
        self.error = error
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.error("no route", request=request)
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})


FAST = ClientConfig(retries=3, backoff=0.001)


def test_connection_errors_are_retried() -> None:
    flaky = Flaky(fail=2)
    with Client("http://server", config=FAST, transport=httpx.MockTransport(flaky)) as client:
        assert client.models() == [{"id": "m"}]
    assert flaky.calls == 3
    down = Flaky(fail=100)
    with (
        Client("http://server", config=FAST, transport=httpx.MockTransport(down)) as client,
        pytest.raises(ConnectionFailedError, match="after 4 attempts"),
    ):
        client.models()
    assert down.calls == 4


def test_other_failures_are_never_retried() -> None:
    # the request may have reached the server: sending it again could append twice
    for error in (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError):
        flaky = Flaky(fail=1, error=error)
        with (
            Client("http://server", config=FAST, transport=httpx.MockTransport(flaky)) as client,
            pytest.raises(error),
        ):
            client.models()
        assert flaky.calls == 1
    calls = []

    def broken(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, text="overloaded")

    with (
        Client("http://server", config=FAST, transport=httpx.MockTransport(broken)) as client,
        pytest.raises(APIError, match="overloaded") as info,
    ):
        client.models()
    assert info.value.status == 503 and len(calls) == 1


async def test_async_retries() -> None:
    flaky = Flaky(fail=1)
    async with AsyncClient("http://s/v1", config=FAST, transport=httpx.MockTransport(flaky)) as c:
        assert await c.models() == [{"id": "m"}]
    assert flaky.calls == 2


def sse_transport(body: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


def test_sse_variants_other_servers_send() -> None:
    a = {"choices": [{"index": 0, "delta": {"content": "a"}}]}
    b = {"choices": [{"index": 0, "delta": {"content": "b"}}]}
    variants = [
        f"data: {json.dumps(a)}\n\ndata: {json.dumps(b)}\n\ndata: [DONE]\n\n",
        # no blank lines between events, comments and other fields mixed in
        f": keep-alive\nevent: message\ndata:{json.dumps(a)}\ndata: {json.dumps(b)}\ndata: [DONE]\n",
        # one JSON document split over two data lines, no [DONE] at all
        f'data: {{"choices": [{{"index": 0,\ndata: "delta": {{"content": "a"}}}}]}}\n\ndata: {json.dumps(b)}\n\n',
    ]
    for body in variants:
        with Client("http://s", transport=sse_transport(body)) as client:
            chunks = list(client.stream_chat(HI, model="m"))
        assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["a", "b"], body


def test_error_event_inside_a_stream_raises() -> None:
    body = 'data: {"choices": []}\n\ndata: {"error": {"message": "boom", "type": "x"}}\n\n'
    with (
        Client("http://s", transport=sse_transport(body)) as client,
        pytest.raises(APIError, match="boom"),
    ):
        list(client.stream_chat(HI, model="m"))

    # llama.cpp-style error bodies
    def plain(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "context too long"})

    with (
        Client("http://s", transport=httpx.MockTransport(plain)) as client,
        pytest.raises(APIError, match="context too long"),
    ):
        client.chat(HI, model="m")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="read"):
        ClientConfig(read=0)
    assert ClientConfig.long_generations().read >= 600
