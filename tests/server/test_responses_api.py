"""OpenAI's Responses API (``/v1/responses``): response chains on persistent sessions.

On the scripted fake backend: the shape of a Response, what the backend is given (a chain
appends only the new input; instructions once), the 409 for an older response of a chain, the
400s that name the field, ``store: false``, function-call round trips and the event stream.
On the tiny random Llama: the session's token count grows by the new input and the reply only,
and response ids survive a restart of the app. With the official ``openai`` client against a
real uvicorn server on the tiny model (tool calls need the SmolLM2 tokenizer) and, marked
slow, against ``python -m agentcore.server`` on the real default model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from agentcore.backends import FakeBackend, LocalBackend
from agentcore.backends._fake import Reply
from agentcore.core.engine import Engine

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Lima"]}},
        "required": ["city"],
    },
}


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(name="fake")


@pytest.fixture
async def fake_api(
    fake: FakeBackend, make_app: Callable[..., FastAPI]
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield client


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each server-sent event."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        out.append((lines["event"], data))
    return out


def _error(r: httpx.Response, status: int, param: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["param"] == param, err
    return err


class TestResponseObject:
    async def test_text_reply(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add("Hello there")
        r = await fake_api.post("/v1/responses", json={"input": "hi", "max_output_tokens": 8})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "response" and body["status"] == "completed"
        assert body["id"].startswith("resp_") and body["session"] == body["id"]
        [item] = body["output"]
        assert item["type"] == "message" and item["role"] == "assistant"
        assert item["content"][0] == {
            "type": "output_text",
            "text": "Hello there",
            "annotations": [],
            "logprobs": [],
        }
        usage = body["usage"]
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert body["max_output_tokens"] == 8 and body["store"] is True
        assert fake.requests[0].params is not None and fake.requests[0].params.max_tokens == 8
        got = await fake_api.get(f"/v1/responses/{body['id']}")
        assert got.json() == body

    async def test_delete(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add("one")
        rid = (await fake_api.post("/v1/responses", json={"input": "hi"})).json()["id"]
        assert (await fake_api.delete(f"/v1/responses/{rid}")).json() == {
            "id": rid,
            "object": "response",
            "deleted": True,
        }
        _error(await fake_api.get(f"/v1/responses/{rid}"), 404, "response_id")
        _error(await fake_api.delete(f"/v1/responses/{rid}"), 404, "response_id")
        _error(await fake_api.get("/v1/responses/resp_..x"), 404, "response_id")

    async def test_text_format_json_schema(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add('{"a": 1}')
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        r = await fake_api.post(
            "/v1/responses",
            json={
                "input": "json please",
                "text": {"format": {"type": "json_schema", "name": "thing", "schema": schema}},
            },
        )
        assert r.status_code == 200, r.text
        assert fake.requests[0].json_schema == schema
        assert r.json()["text"]["format"]["schema"] == schema

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/responses", {"input": "weather in Oslo and a 10 minute timer"}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ],
    )
    async def test_parallel_tool_calls_reaches_the_backend(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient, path: str, body: dict[str, Any]
    ) -> None:
        for flag in (False, True, None):
            fake.add("ok")
            r = await fake_api.post(path, json={**body, "parallel_tool_calls": flag})
            assert r.status_code == 200, r.text
            assert fake.requests[-1].parallel_tool_calls is (flag is not False), flag


class TestChains:
    async def test_continuing_appends_only_the_new_input(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first", "second")
        one = (
            await fake_api.post("/v1/responses", json={"instructions": "Be terse.", "input": "a"})
        ).json()
        assert fake.requests[0].messages == (
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "a"},
        )
        two = await fake_api.post(
            "/v1/responses",
            json={"instructions": "Be terse.", "input": "b", "previous_response_id": one["id"]},
        )
        assert two.status_code == 200, two.text
        assert fake.requests[1].messages == ({"role": "user", "content": "b"},)
        assert fake.requests[1].session == one["id"] == two.json()["session"]
        assert two.json()["previous_response_id"] == one["id"]
        assert len(fake.transcripts[one["id"]]) == 5  # system, user, reply, user, reply

    async def test_an_older_response_of_the_chain_is_refused(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first", "second")
        one = (await fake_api.post("/v1/responses", json={"input": "a"})).json()
        await fake_api.post("/v1/responses", json={"input": "b", "previous_response_id": one["id"]})
        held = list(fake.transcripts[one["id"]])
        r = await fake_api.post(
            "/v1/responses", json={"input": "c", "previous_response_id": one["id"]}
        )
        err = _error(r, 409, "previous_response_id")
        assert err["code"] == "response_not_latest" and "not the latest" in err["message"]
        assert fake.transcripts[one["id"]] == held and len(fake.requests) == 2

    async def test_a_session_appended_to_elsewhere_is_refused(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first", "aside")
        one = (await fake_api.post("/v1/responses", json={"input": "a"})).json()
        aside = await fake_api.post(
            "/v1/chat/completions",
            json={"session": one["session"], "messages": [{"role": "user", "content": "x"}]},
        )
        assert aside.status_code == 200
        r = await fake_api.post(
            "/v1/responses", json={"input": "c", "previous_response_id": one["id"]}
        )
        _error(r, 409, "previous_response_id")

    async def test_two_requests_racing_from_one_response(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first", "second", "third")
        one = (await fake_api.post("/v1/responses", json={"input": "a"})).json()
        body = {"input": "b", "previous_response_id": one["id"]}
        results = await asyncio.gather(
            fake_api.post("/v1/responses", json=body), fake_api.post("/v1/responses", json=body)
        )
        assert sorted(r.status_code for r in results) == [200, 409]

    async def test_a_chain_opens_its_session_when_names_are_not_created(
        self, fake: FakeBackend, make_app: Callable[..., FastAPI]
    ) -> None:
        """The server names a chain's session, so it opens one even when requests may not."""
        fake.add("first", "second")
        app = make_app(fake, auto_create_sessions=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            chat = await client.post(
                "/v1/chat/completions",
                json={"session": "mine", "messages": [{"role": "user", "content": "a"}]},
            )
            assert chat.status_code == 404
            one = await client.post("/v1/responses", json={"input": "a"})
            assert one.status_code == 200, one.text
            two = await client.post(
                "/v1/responses", json={"input": "b", "previous_response_id": one.json()["id"]}
            )
            assert two.status_code == 200, two.text

    async def test_unknown_previous_response(self, fake_api: httpx.AsyncClient) -> None:
        for rid in ("resp_" + "0" * 32, "nonsense/../x"):
            r = await fake_api.post(
                "/v1/responses", json={"input": "a", "previous_response_id": rid}
            )
            err = _error(r, 404, "previous_response_id")
            assert err["code"] == "previous_response_not_found" and rid in err["message"]

    async def test_deleted_session(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add("first")
        one = (await fake_api.post("/v1/responses", json={"input": "a"})).json()
        assert (await fake_api.delete(f"/v1/sessions/{one['session']}")).status_code == 200
        r = await fake_api.post(
            "/v1/responses", json={"input": "b", "previous_response_id": one["id"]}
        )
        assert "no longer exists" in _error(r, 404, "previous_response_id")["message"]

    async def test_changed_instructions(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first", "second")
        one = (
            await fake_api.post("/v1/responses", json={"instructions": "Be terse.", "input": "a"})
        ).json()
        r = await fake_api.post(
            "/v1/responses",
            json={"instructions": "Be chatty.", "input": "b", "previous_response_id": one["id"]},
        )
        assert _error(r, 409, "instructions")["code"] == "instructions_changed"
        left_out = await fake_api.post(
            "/v1/responses", json={"input": "b", "previous_response_id": one["id"]}
        )
        assert left_out.status_code == 200
        assert fake.requests[-1].messages == ({"role": "user", "content": "b"},)


class TestStoreFalse:
    async def test_nothing_is_kept(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add("stateless")
        r = await fake_api.post("/v1/responses", json={"input": "a", "store": False})
        body = r.json()
        assert r.status_code == 200 and body["store"] is False and "session" not in body
        assert fake.requests[0].session is None and fake.transcripts == {}
        _error(await fake_api.get(f"/v1/responses/{body['id']}"), 404, "response_id")
        assert (await fake_api.get("/v1/sessions")).json()["data"] == []

    async def test_cannot_continue_a_chain(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add("first")
        one = (await fake_api.post("/v1/responses", json={"input": "a"})).json()
        r = await fake_api.post(
            "/v1/responses",
            json={"input": "b", "previous_response_id": one["id"], "store": False},
        )
        _error(r, 400, "store")

    async def test_a_whole_conversation_with_a_call(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        """What a stateless client sends: every item so far, its own calls and their results."""
        fake.add("It is sunny in Paris.")
        r = await fake_api.post(
            "/v1/responses",
            json={
                "store": False,
                "instructions": "Be brief.",
                "tools": [WEATHER],
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                    {
                        "type": "function_call",
                        "call_id": "call_a",
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                    {"type": "function_call_output", "call_id": "call_a", "output": "Sunny"},
                ],
            },
        )
        assert r.status_code == 200, r.text
        call = {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
        }
        assert fake.requests[0].messages == (
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "Sunny", "tool_call_id": "call_a"},
        )
        assert fake.requests[0].tools == ("get_weather",)


class TestFunctionCalls:
    async def test_round_trip_on_a_chain(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add(Reply.call("get_weather", city="Lima"), "Lima is cloudy.")
        r = await fake_api.post(
            "/v1/responses",
            json={"input": "Weather in Lima?", "tools": [WEATHER], "tool_choice": "required"},
        )
        body = r.json()
        [item] = body["output"]
        assert item["type"] == "function_call" and item["name"] == "get_weather"
        assert json.loads(item["arguments"]) == {"city": "Lima"}
        assert item["id"].startswith("fc_") and item["call_id"]
        assert body["tool_choice"] == "required" and body["tools"][0]["name"] == "get_weather"
        assert fake.requests[0].tool_choice == "required"
        result = {"type": "function_call_output", "call_id": item["call_id"], "output": "Cloudy"}
        two = await fake_api.post(
            "/v1/responses",
            json={"previous_response_id": body["id"], "input": [result], "tools": [WEATHER]},
        )
        assert two.status_code == 200, two.text
        assert two.json()["output"][0]["content"][0]["text"] == "Lima is cloudy."
        assert fake.requests[1].messages == (
            {"role": "tool", "content": "Cloudy", "tool_call_id": item["call_id"]},
        )

    async def test_named_tool_choice(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add(Reply.call("get_weather", city="Paris"))
        choice = {"type": "function", "name": "get_weather"}
        r = await fake_api.post(
            "/v1/responses", json={"input": "x", "tools": [WEATHER], "tool_choice": choice}
        )
        assert r.status_code == 200, r.text
        assert fake.requests[0].tool_choice == {
            "type": "function",
            "function": {"name": "get_weather"},
        }
        assert r.json()["tool_choice"] == choice


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "param", "words"),
        [
            ({}, "input", "required"),
            ({"input": ""}, "input", "empty"),
            ({"input": []}, "input", "at least 1"),
            ({"input": 5}, "input", "got 5"),
            ({"input": [{"type": "input_image"}]}, "input[0].type", "'input_image' item"),
            ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type", "reasoning"),
            (
                {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
                "input[0].content[0].type",
                "text only",
            ),
            ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "robot"),
            (
                {"input": [{"type": "function_call_output", "output": "x"}]},
                "input[0].call_id",
                "required",
            ),
            (
                {"input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
                "input[0].arguments",
                "required",
            ),
            ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
            (
                {"input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]},
                "tools[0].name",
                "flat",
            ),
            ({"input": "x", "tools": [{**WEATHER, "name": "a b"}]}, "tools[0].name", "pattern"),
            ({"input": "x", "tools": [WEATHER, WEATHER]}, "tools[1].name", "twice"),
            ({"input": "x", "tool_choice": "required"}, "tool_choice", "tools"),
            (
                {
                    "input": "x",
                    "tools": [WEATHER],
                    "tool_choice": {"type": "function", "name": "z"},
                },
                "tool_choice",
                "'z'",
            ),
            ({"input": "x", "temperature": 3}, "temperature", "less than or equal"),
            ({"input": "x", "max_output_tokens": 0}, "max_output_tokens", "greater than"),
            ({"input": "x", "max_output_tokens": 10_000}, "max_output_tokens", "max_output_tokens"),
            ({"input": "x", "model": "gpt-4o"}, "model", "gpt-4o"),
            ({"input": "x", "conversation": "conv_1"}, "conversation", "previous_response_id"),
            ({"input": "x", "background": True}, "background", "not served"),
            ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "instructions"),
        ],
    )
    async def test_names_the_field(
        self, fake_api: httpx.AsyncClient, body: dict[str, Any], param: str, words: str
    ) -> None:
        err = _error(
            await fake_api.post("/v1/responses", json=body), 400 if param != "model" else 404, param
        )
        assert words in err["message"], err


class TestStream:
    async def test_text_events(self, fake: FakeBackend, fake_api: httpx.AsyncClient) -> None:
        fake.add("Hello there, friend")
        r = await fake_api.post("/v1/responses", json={"input": "hi", "stream": True})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.text)
        names = [name for name, _ in events]
        deltas = names.count("response.output_text.delta")
        assert deltas > 1  # the fake streams 4 characters at a time
        assert names == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            *["response.output_text.delta"] * deltas,
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
        text = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
        assert text == "Hello there, friend" == events[-4][1]["text"]
        final = events[-1][1]["response"]
        assert events[0][1]["response"]["id"] == final["id"]
        assert events[0][1]["response"]["status"] == "in_progress"
        assert final["output"][0]["id"] == events[2][1]["item"]["id"]
        assert (await fake_api.get(f"/v1/responses/{final['id']}")).json() == final

    async def test_function_call_events(
        self, fake: FakeBackend, fake_api: httpx.AsyncClient
    ) -> None:
        fake.add(Reply.call("get_weather", city="Paris"))
        r = await fake_api.post(
            "/v1/responses",
            json={"input": "x", "tools": [WEATHER], "tool_choice": "required", "stream": True},
        )
        events = _events(r.text)
        assert [n for n, _ in events] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
        done = events[4][1]
        assert json.loads(done["arguments"]) == {"city": "Paris"} and done["name"] == "get_weather"
        assert events[2][1]["item"]["arguments"] == ""
        assert events[-1][1]["response"]["output"] == [events[5][1]["item"]]

    async def test_a_failure_mid_stream(
        self, make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
    ) -> None:
        class Breaks(FakeBackend):
            def complete(self, request: Any, **kwargs: Any) -> Any:
                kwargs["on_token"]("partial ")
                raise RuntimeError("secret detail")

        transport = httpx.ASGITransport(app=make_app(Breaks()))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            r = await client.post("/v1/responses", json={"input": "a", "stream": True})
        events = _events(r.text)
        assert [n for n, _ in events][-2:] == ["error", "response.failed"]
        assert "secret" not in r.text and "internal server error" in events[-2][1]["message"]
        assert events[-1][1]["response"]["status"] == "failed"


class TestOnTheTinyModel:
    async def test_the_session_grows_by_the_new_input_only(self, api: httpx.AsyncClient) -> None:
        first = {"instructions": "You are terse.", "input": "Hello there.", "max_output_tokens": 4}
        one = (await api.post("/v1/responses", json=first)).json()
        sid = one["session"]
        tokens = (await api.get(f"/v1/sessions/{sid}")).json()["tokens"]
        assert tokens == one["usage"]["total_tokens"] == one["usage"]["session_tokens"]
        two = (
            await api.post(
                "/v1/responses",
                json={
                    "input": "And now?",
                    "previous_response_id": one["id"],
                    "max_output_tokens": 4,
                },
            )
        ).json()
        after = (await api.get(f"/v1/sessions/{sid}")).json()["tokens"]
        assert after == tokens + two["usage"]["input_tokens"] + two["usage"]["output_tokens"]
        assert after == two["usage"]["session_tokens"]
        # the same turn as a whole conversation reads everything again
        reply = one["output"][0]["content"][0]["text"]
        whole = (
            await api.post(
                "/v1/responses",
                json={
                    "store": False,
                    "instructions": "You are terse.",
                    "input": [
                        {"role": "user", "content": "Hello there."},
                        {"role": "assistant", "content": reply},
                        {"role": "user", "content": "And now?"},
                    ],
                    "max_output_tokens": 4,
                },
            )
        ).json()
        assert whole["usage"]["input_tokens"] > one["usage"]["input_tokens"]
        assert two["usage"]["input_tokens"] < whole["usage"]["input_tokens"] - len(reply)

    async def test_a_reply_cut_by_max_output_tokens(self, api: httpx.AsyncClient) -> None:
        body = {"input": "Count to ten.", "max_output_tokens": 2, "stream": True}
        events = _events((await api.post("/v1/responses", json=body)).text)
        name, last = events[-1]
        assert name == "response.incomplete"
        response = last["response"]
        assert response["incomplete_details"] == {"reason": "max_output_tokens"}
        assert response["usage"]["output_tokens"] == 2
        assert response["output"][0]["status"] == "incomplete"

    async def test_a_made_up_reply_on_a_chain_is_a_conflict(self, api: httpx.AsyncClient) -> None:
        one = (
            await api.post("/v1/responses", json={"input": "Hi.", "max_output_tokens": 2})
        ).json()
        r = await api.post(
            "/v1/responses",
            json={
                "previous_response_id": one["id"],
                "input": [
                    {"role": "user", "content": "b"},
                    {"role": "assistant", "content": "made up"},
                ],
            },
        )
        err = _error(r, 409, "input[1]")
        assert err["code"] == "chain_conflict" and "messages[" not in err["message"]

    async def test_ids_survive_a_restart(
        self,
        tiny_engine: Engine,
        sessions_dir: Path,
        make_app: Callable[..., FastAPI],
    ) -> None:
        async def client(app: FastAPI) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

        first_app = make_app(LocalBackend(tiny_engine, sessions_dir=sessions_dir))
        async with await client(first_app) as api:
            one = (
                await api.post("/v1/responses", json={"input": "Hi.", "max_output_tokens": 3})
            ).json()
        first_app.state.service.close()
        assert (sessions_dir / "responses" / f"{one['id']}.json").is_file()
        second_app = make_app(LocalBackend(tiny_engine, sessions_dir=sessions_dir))
        async with await client(second_app) as api:
            assert (await api.get(f"/v1/responses/{one['id']}")).json() == one
            two = await api.post(
                "/v1/responses",
                json={"input": "Again.", "previous_response_id": one["id"], "max_output_tokens": 3},
            )
            assert two.status_code == 200, two.text
            usage = two.json()["usage"]
            assert usage["session_tokens"] == one["usage"]["session_tokens"] + usage["total_tokens"]


# ---------------------------------------------------------------------- the official client
@pytest.fixture
def tiny_client(
    smollm2_engine: Engine,
    sessions_dir: Path,
    make_app: Callable[..., FastAPI],
    serve_app: Callable[[FastAPI], str],
) -> Iterator[openai.OpenAI]:
    app = make_app(LocalBackend(smollm2_engine, sessions_dir=sessions_dir), max_tokens_limit=256)
    url = serve_app(app)
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as c:
        yield c


TOOLS: Any = [WEATHER]  # plain dicts, as users write them


def test_openai_client_on_the_tiny_model(tiny_client: openai.OpenAI) -> None:
    """``responses.create`` plain, chained, streamed, with a function call and its output, then
    ``retrieve`` and ``delete``; the client parses every object and event."""
    c = tiny_client
    one = c.responses.create(
        model="default", instructions="Be brief.", input="Hi!", max_output_tokens=4
    )
    assert one.status in ("completed", "incomplete") and one.output[0].type == "message"
    assert one.usage is not None and one.usage.output_tokens <= 4
    call = c.responses.create(
        model="default",
        input="Weather in Paris?",
        previous_response_id=one.id,
        tools=TOOLS,
        tool_choice="required",
        max_output_tokens=40,
    )
    [item] = call.output
    assert item.type == "function_call" and item.name == "get_weather"
    assert json.loads(item.arguments)["city"] in ("Paris", "Lima")
    stream = c.responses.create(
        model="default",
        previous_response_id=call.id,
        input=[{"type": "function_call_output", "call_id": item.call_id, "output": "Sunny, 21 C"}],
        tools=TOOLS,
        max_output_tokens=6,
        stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == streamed and final.previous_response_id == call.id
    # the session grew by this turn only: the tool's result, the turn markup and the tools
    # section again (tool_choice changed from "required" to "auto"), then the reply
    after: Any = final.usage
    before: Any = call.usage
    assert after.session_tokens - before.session_tokens == after.total_tokens
    again = c.responses.retrieve(final.id)
    assert again.output_text == streamed
    with pytest.raises(openai.ConflictError, match="not the latest"):
        c.responses.create(model="default", previous_response_id=one.id, input="Older.")
    with pytest.raises(openai.NotFoundError, match="previous_response_id"):
        c.responses.create(model="default", previous_response_id="resp_nope", input="x")
    image: Any = [{"type": "input_image", "image_url": "https://example.com/a.png"}]
    with pytest.raises(openai.BadRequestError, match="input"):
        c.responses.create(model="default", input=image)
    c.responses.delete(final.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(final.id)


FACT = "My secret code word is Zorblax. Please remember it."
QUESTION = "What is my secret code word?"


@pytest.mark.slow
def test_openai_client_on_the_default_model(tmp_path: Path, server_process: Any) -> None:
    """The real default model: a chain remembers what it was told, streamed, and gives the
    reply a chat session gives to the same turns (greedy: the same prompt, the same words);
    then it answers a tool's result."""
    server = server_process(tmp_path / "sessions", "--threads", "2")
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as c:
        one = c.responses.create(model="default", input=FACT, max_output_tokens=12)
        two = c.responses.create(
            model="default",
            previous_response_id=one.id,
            input=QUESTION,
            max_output_tokens=12,
            stream=True,
        )
        final = list(two)[-1].response  # type: ignore[union-attr]
        assert "zorblax" in final.output_text.lower(), final.output_text
        twin = []
        for text in (FACT, QUESTION):
            chat = c.chat.completions.create(
                model="default",
                messages=[{"role": "user", "content": text}],
                max_tokens=12,
                extra_body={"session": "twin"},
            )
            twin.append(chat.choices[0].message.content)
        assert [one.output_text, final.output_text] == twin
        info = httpx.get(f"{server.url}/v1/sessions/{one.id}").json()
        assert final.usage is not None and one.usage is not None
        assert info["tokens"] == one.usage.total_tokens + final.usage.total_tokens
        call = c.responses.create(
            model="default",
            previous_response_id=final.id,
            input="What's the weather in Paris?",
            tools=TOOLS,
            max_output_tokens=40,
        )
        item = call.output[0]
        assert item.type == "function_call" and item.name == "get_weather", call.output
        result: Any = [{"type": "function_call_output", "call_id": item.call_id, "output": "Sunny"}]
        answer = c.responses.create(
            model="default",
            previous_response_id=call.id,
            input=result,
            tools=TOOLS,
            max_output_tokens=40,
        )
        text = answer.output_text
        assert text.strip() and "<tool_response>" not in text and not text.lstrip().startswith("{")
