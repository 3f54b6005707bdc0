"""The client's server-sent-events reader against the event-stream rules' edge cases: streams
served by ``httpx.MockTransport`` in awkward network chunks, read through ``Client`` and
``AsyncClient`` as a caller would."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from agentcore.client import APIError, AsyncClient, Client

HI = [{"role": "user", "content": "hi"}]


def chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


A, B = json.dumps(chunk("a")), json.dumps(chunk("b"))


def transport(parts: Sequence[str | bytes]) -> httpx.MockTransport:
    """A stream sent in exactly these pieces (a line ending or a character may fall between
    two)."""

    def handler(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for part in parts:
                yield part if isinstance(part, bytes) else part.encode()

        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


def texts(parts: Sequence[str | bytes]) -> list[str]:
    with Client("http://s", transport=transport(parts)) as client:
        return [c["choices"][0]["delta"]["content"] for c in client.stream_chat(HI, model="m")]


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([f"data: {A}\n\ndata: {B}\n\ndata: [DONE]\n\n"], id="plain"),
        pytest.param([f"data: {A}\r\n\r\ndata: {B}\r\n\r\n"], id="crlf"),
        pytest.param([f"data: {A}\r", f"\n\r\ndata: {B}\r", "\n\r", "\n"], id="crlf-split"),
        pytest.param([f"data: {A}\r\rdata: {B}\r\r"], id="cr"),
        pytest.param([f"\ufeffdata: {A}\n\ndata: {B}\n\n"], id="byte-order-mark"),
        pytest.param([f": ping\n\ndata: {A}\n: ping\n\n:\n\ndata: {B}\n\n"], id="comments"),
        pytest.param([f"data:{A}\n\ndata:  {B}\n\n"], id="no-or-two-spaces"),
        pytest.param(
            [f"event: message\ndata: {A}\n\nevent: delta\nid: 7\nretry: 3000\ndata: {B}\n\n"],
            id="event-id-retry",
        ),
        pytest.param(
            [f"retry: soon\nid: x\0y\nfoo: bar\ndata\n\ndata: {A}\n\ndata: {B}\n"], id="odd"
        ),
        pytest.param([f"data: {A}\n\ndata: {B}"], id="last-event-without-blank-line"),
        pytest.param([f"data: {A}\ndata: {B}\ndata: [DONE]\n"], id="no-blank-lines"),
        pytest.param(
            [f"data: {A}\n\ndata: {B}\n\ndata: [DONE]\n\ndata: {json.dumps(chunk('c'))}\n\n"],
            id="nothing-after-done",
        ),
    ],
)
def test_every_variant_reads_as_the_same_two_chunks(parts: list[str]) -> None:
    assert texts(parts) == ["a", "b"]


def test_lines_end_only_where_the_event_stream_says() -> None:
    # U+2028, U+2029 and U+0085 are line breaks to str.splitlines (and httpx's iter_lines) but
    # text inside JSON, which agentcore's server sends unescaped
    odd = "one\u2028two\u2029three\x85four\x0bfive\x0csix\x1cseven"
    event = json.dumps(chunk(odd), ensure_ascii=False).encode()
    assert texts([b"data: " + event + b"\n\n"]) == [odd]
    # a character split between two network chunks
    euro = json.dumps(chunk("20 \u20ac"), ensure_ascii=False).encode()
    cut = euro.index("\u20ac".encode()) + 1
    assert texts([b"data: " + euro[:cut], euro[cut:] + b"\n\n"]) == ["20 \u20ac"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    pretty = json.dumps(chunk("a"), indent=2).splitlines()
    event = "".join(f"data: {line}\n" for line in pretty)
    assert texts([event, "\n", f"data: {B}\n\n"]) == ["a", "b"]
    # split inside a line, and an open multi-line event at the end of the stream
    assert texts([event[:7], event[7:]]) == ["a"]


def test_an_error_event_raises_with_the_servers_message() -> None:
    parts = [f"data: {A}\n\n", 'event: error\ndata: {"message": "overloaded"}\n\n']
    with pytest.raises(APIError, match="overloaded") as info:
        texts(parts)
    assert info.value.status == 200
    # an error object in the data, as OpenAI and vLLM send it
    with pytest.raises(APIError, match="boom"):
        texts(['data: {"error": {"message": "boom", "type": "server_error"}}\n\n'])
    # a plain text error event
    with pytest.raises(APIError, match="context too long"):
        texts(["event: error\ndata: context too long\n\n"])


def test_data_that_is_not_json_says_so() -> None:
    with pytest.raises(APIError, match=r"not JSON .*'hello\\nworld'"):
        texts(["data: hello\ndata: world\n\n"])
    with pytest.raises(APIError, match="not JSON"):
        texts([f'data: {A}\n\ndata: {{"choices": [\n'])  # the stream stopped inside an event


async def test_the_async_client_reads_the_same_way() -> None:
    parts = [f": ping\r\n\r\ndata: {A}\r", "\n\r\nevent: delta\ndata: ", f"{B}"]

    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> Any:
            for part in parts:
                yield part.encode()

        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    async with AsyncClient("http://s", transport=httpx.MockTransport(handler)) as client:
        got = [c["choices"][0]["delta"]["content"] async for c in client.stream_chat(HI, model="m")]
    assert got == ["a", "b"]
