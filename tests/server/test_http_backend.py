"""The http backend behaves like the local one: against the agentcore server (sessions on the
server), against a server without sessions (transcript kept by the backend), and with OpenAI's
streamed tool-call deltas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentcore.backends import FakeBackend, LocalBackend, ModelBackend
from agentcore.backends._http import HttpBackend, ToolCallDecodeError
from agentcore.client import Client
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams
from agentcore.server import ServerConfig
from agentcore.server._schemas import ChatCompletionBody, CompletionBody
from agentcore.server._service import ModelService

P = SamplingParams(max_tokens=6)
TURNS = ["first question", "second question", "third question"]


def conversation(backend: Any, session: str | None, resend: bool) -> list[tuple[str, int]]:
    """Three turns; with ``resend`` the whole history is sent each time (an OpenAI habit)."""
    history: list[dict[str, Any]] = []
    out = []
    for text in TURNS:
        history.append({"role": "user", "content": text})
        pieces: list[str] = []
        sent = history if resend else history[-1:]
        c = backend.chat(sent, session=session, params=P, on_token=pieces.append)
        assert "".join(pieces) == c.text
        history.append(c.message())
        out.append((c.text, c.usage.session_tokens))
    return out


def test_http_backend_matches_the_local_backend(tiny_engine: Engine, live: str) -> None:
    local = LocalBackend(tiny_engine)
    expected = conversation(local, "chat", resend=False)
    with HttpBackend(live) as remote:
        assert isinstance(remote, ModelBackend)
        assert remote.name == "tiny-llama" and remote.server_sessions
        assert conversation(remote, "chat", resend=False) == expected
        assert conversation(remote, "again", resend=True) == expected  # resent history dedups
        info = remote.session_info("chat")
        assert info is not None and info["tokens"] == expected[-1][1]
        assert remote.list_sessions() == ["again", "chat"]
        assert remote.delete_session("chat") and remote.session_info("chat") is None
        plain = remote.chat([{"role": "user", "content": "hi"}], params=P)
        assert plain.text == local.chat([{"role": "user", "content": "hi"}], params=P).text


def test_client_kept_transcripts_against_a_sessionless_server(
    tiny_engine: Engine, live: str
) -> None:
    sent: list[dict[str, Any]] = []
    real = httpx.HTTPTransport()

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                sent.append(json.loads(request.content))
            return real.handle_request(request)

    client = Client(live, transport=Recording())
    with HttpBackend(live, sessions="client", client=client) as remote:
        assert not remote.server_sessions
        got = conversation(remote, "kept", resend=False)
        assert remote.session_info("kept")["messages"] == 6  # type: ignore[index]
        assert remote.list_sessions() == ["kept"]
    # every request carried the whole conversation and no session field
    assert [len(b["messages"]) for b in sent] == [1, 3, 5]
    assert all("session" not in b for b in sent)
    # and the server answered each as the stateless local backend answers the full history
    local = LocalBackend(tiny_engine)
    history: list[dict[str, Any]] = []
    for (text, _), question in zip(got, TURNS, strict=True):
        history.append({"role": "user", "content": question})
        assert local.chat(history, params=P).text == text
        history.append({"role": "assistant", "content": text})


def test_should_stop_cancels_the_server_generation(
    tiny_backend: LocalBackend, make_app: Callable[..., FastAPI], serve_app: Callable[..., str]
) -> None:
    url = serve_app(make_app(tiny_backend, max_tokens_limit=20_000))
    pieces: list[str] = []
    with HttpBackend(url) as remote:
        c = remote.chat(
            [{"role": "user", "content": "go on"}],
            session="long",
            params=SamplingParams(max_tokens=20_000, stop_token_ids=()),
            on_token=pieces.append,
            should_stop=lambda: len(pieces) >= 3,
        )
        assert c.finish_reason == "cancelled" and len(pieces) == 3
        info = remote.session_info("long")
    assert info is not None and info["tokens"] < 10_000


def openai_stream(chunks: list[dict[str, Any]]) -> httpx.MockTransport:
    """What api.openai.com sends for a streamed tool call (arguments split across chunks)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "gpt-x", "owned_by": "openai"}]})
        body = json.loads(request.content)
        assert body["stream"] is True and body["tools"][0]["function"]["name"] == "get_weather"
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def test_streamed_tool_call_deltas_are_assembled() -> None:
    chunks = [
        delta({"role": "assistant", "content": None}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        delta(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ]
            }
        ),
        delta({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
    ]
    client = Client("http://openai", transport=openai_stream(chunks))
    backend = HttpBackend("http://openai", client=client)
    pieces: list[str] = []
    c = backend.chat(
        [{"role": "user", "content": "weather?"}],
        session="w",
        tools=[WEATHER],
        on_token=pieces.append,
    )
    assert not backend.server_sessions and backend.name == "gpt-x"
    assert pieces == [] and c.text == "" and c.finish_reason == "tool_calls"
    assert [(t.id, t.name, t.arguments) for t in c.tool_calls] == [
        ("call_1", "get_weather", {"city": "Oslo"}),
        ("call_2", "get_weather", {}),
    ]
    assert c.usage.prompt_tokens == 9 and c.usage.completion_tokens == 4
    # the call is in the client-kept transcript, in the shape agents send back
    assert backend.transcripts["w"][-1]["tool_calls"][0]["function"]["arguments"] == {
        "city": "Oslo"
    }


def test_bad_tool_arguments_from_a_server_are_reported() -> None:
    chunks = [
        delta(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c",
                        "function": {"name": "get_weather", "arguments": "{oops"},
                    }
                ]
            }
        ),
        delta({}, "tool_calls"),
    ]
    backend = HttpBackend(
        "http://openai", client=Client("http://openai", transport=openai_stream(chunks))
    )
    with pytest.raises(ToolCallDecodeError, match="get_weather"):
        backend.chat([{"role": "user", "content": "x"}], tools=[WEATHER], on_token=print)


def recording_backend(
    content: str, sessions: str = "client"
) -> tuple[HttpBackend, list[dict[str, Any]]]:
    """A backend whose server answers ``content`` to everything and keeps the request bodies."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        msg = {"role": "assistant", "content": content}
        return httpx.Response(200, json={"choices": [{"message": msg, "finish_reason": "stop"}]})

    client = Client("http://vllm", transport=httpx.MockTransport(handler))
    backend = HttpBackend("http://vllm", model="m", sessions=sessions, client=client)  # type: ignore[arg-type]
    return backend, seen


def test_request_bodies_carry_the_sampling_parameters() -> None:
    backend, seen = recording_backend('{"a": 1}')
    params = SamplingParams(
        max_tokens=7,
        temperature=0.5,
        top_p=0.9,
        top_k=4,
        stop=("x",),
        seed=3,
        stop_token_ids=(),
        presence_penalty=0.5,
        frequency_penalty=-0.25,
    )
    backend.chat(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "1",
                        "type": "function",
                        "function": {"name": "f", "arguments": {"k": 1}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "1", "content": "ok"},
        ],
        params=params,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    body = seen[0]
    assert body["model"] == "m"
    assert {
        k: body[k] for k in ("max_tokens", "temperature", "top_p", "top_k", "stop", "seed")
    } == {"max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 4, "stop": ["x"], "seed": 3}
    assert body["ignore_eos"] is True
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, -0.25)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"k": 1}'
    assert (
        backend.generate_json([{"role": "user", "content": "j"}], {"type": "object"}) == '{"a": 1}'
    )
    assert seen[1]["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert "parallel_tool_calls" not in body  # the server's default: several calls
    backend.chat([{"role": "user", "content": "q"}], tools=[WEATHER], parallel_tool_calls=False)
    assert seen[-1]["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("scope", "sessions", "expected"),
    [
        ("context", "client", {"repetition_penalty": 1.2}),
        ("reply", "client", {}),  # another server would also penalise the prompt: left out
        ("reply", "server", {"repetition_penalty": 1.2, "repetition_scope": "reply"}),
    ],
)
def test_repetition_penalty_is_sent_where_the_server_means_the_same(
    scope: str, sessions: str, expected: dict[str, Any]
) -> None:
    backend, seen = recording_backend("ok", sessions)
    params = SamplingParams(repetition_penalty=1.2, repetition_scope=scope)  # type: ignore[arg-type]
    backend.chat([{"role": "user", "content": "q"}], params=params)
    got = {k: seen[0][k] for k in ("repetition_penalty", "repetition_scope") if k in seen[0]}
    assert got == expected


def test_reply_scoped_penalty_means_the_same_on_the_server(tiny_engine: Engine, live: str) -> None:
    params = SamplingParams(max_tokens=12, repetition_penalty=1.5, repetition_scope="reply")
    msgs = [{"role": "user", "content": "aaaa aaaa aaaa"}]
    local = LocalBackend(tiny_engine).chat(msgs, params=params)
    context = LocalBackend(tiny_engine).chat(msgs, params=SamplingParams(max_tokens=12))
    with HttpBackend(live) as remote:
        assert remote.chat(msgs, params=params).text == local.text
    assert local.token_ids != context.token_ids  # the penalty did change the reply


def test_a_chat_request_naming_no_penalty_gets_the_reply_penalty(
    tiny_engine: Engine, live: str
) -> None:
    """Greedy alone made SmolLM2 loop (docs/benchmarks/replies.md): a chat request that names
    no penalty decodes as the Agent does; a client's own parameters reach the server as given."""
    msgs = [{"role": "user", "content": "aaaa aaaa aaaa"}]
    local = LocalBackend(tiny_engine)
    reply = local.chat(msgs, params=SamplingParams.reply(12))
    plain = local.chat(msgs, params=SamplingParams.greedy(12))
    assert reply.token_ids != plain.token_ids  # the penalty changes this reply
    body = {"messages": msgs, "max_tokens": 12}
    with httpx.Client(base_url=live) as http:
        got = http.post("/v1/chat/completions", json=body).json()
        off = http.post("/v1/chat/completions", json=body | {"repetition_penalty": 1.0}).json()
    assert got["choices"][0]["message"]["content"] == reply.text
    assert off["choices"][0]["message"]["content"] == plain.text
    with HttpBackend(live) as remote:  # plain greedy asked for is plain greedy
        assert remote.chat(msgs, params=SamplingParams.greedy(12)).text == plain.text
        assert remote.chat(msgs, params=SamplingParams.reply(12)).text == reply.text


def test_the_reply_penalty_is_the_default_of_chat_requests_only() -> None:
    service = ModelService(FakeBackend(), ServerConfig(reply_penalty=1.3))
    msgs = [{"role": "user", "content": "q"}]
    p = service.sampling(ChatCompletionBody(messages=msgs), None, 16, chat=True)
    assert (p.repetition_penalty, p.repetition_scope, p.penalize_digits) == (1.3, "reply", False)
    # a request that names any penalty gets what it names, and only that
    named = ChatCompletionBody(messages=msgs, presence_penalty=0.5)
    p = service.sampling(named, None, 16, chat=True)
    assert (p.repetition_penalty, p.presence_penalty, p.penalize_digits) == (1.0, 0.5, True)
    named = ChatCompletionBody(messages=msgs, repetition_penalty=1.2, penalize_digits=False)
    p = service.sampling(named, None, 16, chat=True)
    assert (p.repetition_penalty, p.repetition_scope, p.penalize_digits) == (1.2, "context", False)
    # a raw completion continues text as written: no penalty unless asked
    assert service.sampling(CompletionBody(prompt="q"), None, 16).repetition_penalty == 1.0
    with pytest.raises(ValueError, match="reply_penalty"):
        ServerConfig(reply_penalty=0)
