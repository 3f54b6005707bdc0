"""ChatRequest: its validation, ``chat(...)`` as the keyword form of ``complete(request)`` on the
fake and the local backend (tiny model), and a third-party backend that writes only
``complete`` (and its sessions) working under the agent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentcore.agent import Agent
from agentcore.backends import (
    ChatRequest,
    Completion,
    FakeBackend,
    HttpBackend,
    LocalBackend,
    Message,
    ModelBackend,
    Reply,
    Scorer,
    ToolCallOut,
    Usage,
    new_messages,
)
from agentcore.core.engine import Engine
from agentcore.core.params import SamplingParams
from agentcore.memory import HashEmbeddingFunction, LongTermMemory

HI: list[Message] = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class TestValidation:
    def test_a_valid_request_stores_tuples(self) -> None:
        r = ChatRequest(HI, session="s", tools=[WEATHER], logprobs=0)
        assert r.messages == (HI[0],) and r.tools == (WEATHER,)
        assert r.tool_choice == "auto" and r.params is None and r.json_schema is None
        assert ChatRequest(HI, tools=[]).tools is None  # no tools, however said
        assert r == ChatRequest(list(HI), session="s", tools=(WEATHER,), logprobs=0)

    @pytest.mark.parametrize(
        ("fields", "error", "message"),
        [
            ({"messages": HI[0]}, TypeError, r"ChatRequest\.messages: .*one message .*\[message\]"),
            ({"messages": "hi"}, TypeError, r"ChatRequest\.messages: expected a list"),
            (
                {"messages": [*HI, "hi"]},
                TypeError,
                r"ChatRequest\.messages\[1\]: expected a message dict with a 'role', got 'hi'",
            ),
            ({"messages": [{"content": "x"}]}, TypeError, r"ChatRequest\.messages\[0\]"),
            ({"session": ""}, ValueError, r"ChatRequest\.session: .*pass None"),
            ({"session": 3}, TypeError, r"ChatRequest\.session: expected a session name"),
            (
                {"params": {"max_tokens": 5}},
                TypeError,
                r"ChatRequest\.params: expected SamplingParams .*SamplingParams\(",
            ),
            ({"tools": WEATHER}, TypeError, r"ChatRequest\.tools: expected a list"),
            ({"tools": [WEATHER, "calc"]}, TypeError, r"ChatRequest\.tools\[1\]: expected a tool"),
            ({"tool_choice": "any"}, ValueError, r"ChatRequest\.tool_choice: got 'any'"),
            ({"tool_choice": None}, ValueError, r"ChatRequest\.tool_choice: got None"),
            (
                {"json_schema": '{"type": "object"}'},
                TypeError,
                r"ChatRequest\.json_schema: .*json\.loads",
            ),
            ({"logprobs": -1}, ValueError, r"ChatRequest\.logprobs: got -1"),
            ({"logprobs": True}, TypeError, r"ChatRequest\.logprobs: expected an integer"),
            ({"logprobs": 2.0}, TypeError, r"ChatRequest\.logprobs: expected an integer"),
            (
                {"parallel_tool_calls": "no"},
                TypeError,
                r"ChatRequest\.parallel_tool_calls: expected True or False, got 'no'",
            ),
        ],
    )
    def test_errors_name_the_field(
        self, fields: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        fields.setdefault("messages", HI)
        with pytest.raises(error, match=message):
            ChatRequest(**fields)

    def test_chat_validates_the_same_way(self) -> None:
        with pytest.raises(ValueError, match=r"ChatRequest\.tool_choice"):
            FakeBackend(["x"]).chat(HI, tool_choice="sometimes")  # type: ignore[arg-type]

    def test_it_is_frozen(self) -> None:
        r = ChatRequest(HI)
        with pytest.raises(AttributeError):
            r.session = "other"  # type: ignore[misc]


class TestChatIsComplete:
    def test_on_the_fake(self) -> None:
        script = ["hello there, how are you", Reply.call("get_weather", city="Oslo")]
        by_keywords, by_request = FakeBackend(script), FakeBackend(script)
        pieces: tuple[list[str], list[str]] = ([], [])
        params = SamplingParams(max_tokens=9)
        a = by_keywords.chat(HI, session="s", params=params, on_token=pieces[0].append)
        b = by_request.complete(
            ChatRequest(HI, session="s", params=params), on_token=pieces[1].append
        )
        assert a == b and pieces[0] == pieces[1] and "".join(pieces[0]) == a.text
        follow = [*HI, a.message(), {"role": "user", "content": "weather?"}]
        c = by_keywords.chat(follow, session="s", tools=[WEATHER], tool_choice="required")
        d = by_request.complete(
            ChatRequest(follow, session="s", tools=[WEATHER], tool_choice="required")
        )
        assert c == d and c.tool_calls[0].arguments == {"city": "Oslo"}
        assert by_keywords.requests == by_request.requests
        assert by_keywords.transcripts == by_request.transcripts

    def test_generate_json_is_a_stateless_request(self) -> None:
        fake = FakeBackend(['{"a": 1}'])
        assert fake.generate_json(HI, {"type": "object"}, max_tokens=7) == '{"a": 1}'
        (seen,) = fake.requests
        assert seen.session is None and seen.json_schema == {"type": "object"}
        assert seen.params == SamplingParams(max_tokens=7)

    def test_on_the_local_backend(self, tiny_engine: Engine, tmp_path: Path) -> None:
        p = SamplingParams(max_tokens=6, stop_token_ids=())
        one = LocalBackend(tiny_engine, sessions_dir=tmp_path / "one")
        two = LocalBackend(tiny_engine, sessions_dir=tmp_path / "two")
        pieces: tuple[list[str], list[str]] = ([], [])
        a = one.chat(HI, params=p, logprobs=2, on_token=pieces[0].append)
        b = two.complete(ChatRequest(HI, params=p, logprobs=2), on_token=pieces[1].append)
        assert a.token_ids == b.token_ids and a.text == b.text and pieces[0] == pieces[1]
        assert a.logprobs == b.logprobs and len(a.top_logprobs[0]) == 2
        assert a.top_logprobs == b.top_logprobs
        for text in ("first", "second"):
            msgs = [{"role": "user", "content": text}]
            c = one.chat(msgs, session="s", params=p)
            d = two.complete(ChatRequest(msgs, session="s", params=p))
            assert (c.text, c.token_ids, c.usage) == (d.text, d.token_ids, d.usage)
        assert one.session_info("s") == two.session_info("s")

    def test_the_local_backend_stops_when_asked(self, tiny_engine: Engine) -> None:
        backend = LocalBackend(tiny_engine)
        request = ChatRequest(HI, params=SamplingParams(max_tokens=20, stop_token_ids=()))
        done = backend.complete(request, should_stop=lambda: True)
        assert done.finish_reason == "cancelled"


class TestCapabilities:
    def test_only_the_local_backend_scores(self, tiny_engine: Engine) -> None:
        assert isinstance(LocalBackend(tiny_engine), Scorer)
        fake = FakeBackend(["x"])
        assert not isinstance(fake, Scorer)
        with pytest.raises(ValueError, match=r"logprobs=3: the fake backend scores no tokens"):
            fake.chat(HI, logprobs=3)
        with HttpBackend("http://127.0.0.1:9", sessions="client", model="m") as remote:
            assert not isinstance(remote, Scorer)
            with pytest.raises(ValueError, match=r"logprobs=1: the http backend"):
                remote.complete(ChatRequest(HI, logprobs=1))

    def test_a_subclass_missing_complete_cannot_be_made(self) -> None:
        class Half(ModelBackend):
            name = "half"

            def session_info(self, session: str) -> dict[str, Any] | None:
                return None

            def delete_session(self, session: str) -> bool:
                return False

        with pytest.raises(TypeError, match="abstract method complete"):
            Half()  # type: ignore[abstract]


class Calculator(ModelBackend):
    """A third-party backend: it writes ``complete`` and its sessions, nothing else. It keeps
    each session's transcript (the agent sends only what is new) and calls ``calculate`` once
    when it is offered, then answers with the tool's result."""

    name = "calculator"

    def __init__(self) -> None:
        self.transcripts: dict[str, list[Message]] = {}
        self.requests: list[ChatRequest] = []

    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        self.requests.append(request)
        held = self.transcripts.get(request.session or "", [])
        conversation = [*held, *new_messages(held, request.messages)]
        last = conversation[-1]
        offered = {t["function"]["name"] for t in request.tools or ()}
        if last["role"] == "user" and "calculate" in offered:
            call = ToolCallOut("c1", "calculate", {"expression": "2+3"})
            reply = Completion("", (call,), "tool_calls", Usage(1, 1), request.session)
        else:
            text = f"The answer is {last['content']}."
            if on_token is not None:
                on_token(text)
            reply = Completion(text, usage=Usage(1, 1), session=request.session)
        if request.session is not None:
            self.transcripts[request.session] = [*conversation, reply.message()]
        return reply

    def session_info(self, session: str) -> dict[str, Any] | None:
        held = self.transcripts.get(session)
        return None if held is None else {"id": session, "messages": len(held)}

    def delete_session(self, session: str) -> bool:
        return self.transcripts.pop(session, None) is not None


def test_a_backend_that_writes_only_complete_runs_an_agent(tmp_path: Path) -> None:
    backend = Calculator()
    assert isinstance(backend, ModelBackend)
    memory = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    try:
        agent = Agent(backend, memory=memory, home=tmp_path / "home", planner="off", name="t")
        result = agent.run("What is 2+3?")
    finally:
        memory.close()
    assert result.answer == "The answer is 5." and result.tool_calls == 1, result
    first, second = backend.requests
    assert first.session == second.session == "agent-t"
    assert first.tools is not None and second.messages[-1]["role"] == "tool"
    # the inherited keyword form goes through complete too
    assert backend.chat(HI).text == "The answer is hi."
    assert backend.requests[-1] == ChatRequest(HI)
