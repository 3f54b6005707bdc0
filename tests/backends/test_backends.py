"""Model backends: the scripted fake and the local backend (tiny model; real model when slow)."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentcore.backends import (
    FakeBackend,
    LocalBackend,
    ModelBackend,
    Reply,
    ScriptExhaustedError,
    new_messages,
    normalize_messages,
)
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import Session, SessionConfig

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}


def test_fake_plays_its_script_and_records_requests() -> None:
    fake = FakeBackend(["hello there", Reply.call("get_weather", city="Oslo")])
    assert isinstance(fake, ModelBackend)
    pieces: list[str] = []
    a = fake.chat([{"role": "user", "content": "hi"}], session="s", on_token=pieces.append)
    assert a.text == "hello there" and "".join(pieces) == "hello there"
    b = fake.chat(
        [{"role": "user", "content": "hi"}, a.message(), {"role": "user", "content": "weather?"}],
        session="s",
        tools=[WEATHER],
    )
    assert b.finish_reason == "tool_calls"
    assert b.tool_calls[0].arguments == {"city": "Oslo"}
    # only the new message reached the fake: the session already held the first turn
    assert [m["content"] for m in fake.requests[1].messages] == ["weather?"]
    with pytest.raises(ScriptExhaustedError):
        fake.chat([{"role": "user", "content": "more"}])


def test_fake_refuses_calls_the_real_decoder_could_not_make() -> None:
    fake = FakeBackend([Reply.call("get_weather", city=3)])
    with pytest.raises(ValueError, match="do not match its schema"):
        fake.chat([{"role": "user", "content": "x"}], tools=[WEATHER])
    fake = FakeBackend([Reply.call("delete_all")])
    with pytest.raises(ValueError, match="offered"):
        fake.chat([{"role": "user", "content": "x"}], tools=[WEATHER])


def test_new_messages_detects_resent_history() -> None:
    hist = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert new_messages(hist, [*hist, {"role": "user", "content": "c"}]) == [
        {"role": "user", "content": "c"}
    ]
    assert new_messages(hist, [{"role": "user", "content": "c"}]) == [
        {"role": "user", "content": "c"}
    ]


def test_normalize_messages_formats_tool_turns() -> None:
    msgs = normalize_messages(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "5 C"},
        ]
    )
    assert "<tool_call>" in msgs[1]["content"] and '"city": "Oslo"' in msgs[1]["content"]
    assert "get_weather" in msgs[2]["content"] and "<tool_response>" in msgs[2]["content"]
    with pytest.raises(ValueError, match=r"messages\[0\]\.role"):
        normalize_messages([{"role": "wizard", "content": "x"}])


def _call(call_id: str, name: str) -> dict[str, Any]:
    fn = {"name": name, "arguments": "{}"}
    return {"id": call_id, "type": "function", "function": fn}


CUE = "Answer with the result."
TWO_ROUNDS: list[dict[str, Any]] = [
    {"role": "user", "content": "weather and time?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [_call("a", "weather"), _call("b", "now")],
    },
    {"role": "tool", "tool_call_id": "a", "content": "5 C"},
    {"role": "tool", "tool_call_id": "b", "content": "09:30"},
    {"role": "assistant", "content": None, "tool_calls": [_call("c", "weather")]},
    {"role": "tool", "tool_call_id": "c", "content": "6 C"},
]


@pytest.mark.parametrize("native", [False, True])
def test_the_cue_follows_each_run_of_tool_results(native: bool) -> None:
    """One cue after the last result of a run (never between results of one run), the same
    for a run inside the conversation as for the last one."""
    msgs = normalize_messages(TWO_ROUNDS, native=native, cue=CUE)
    roles = [m["role"] for m in msgs]
    assert roles == ["user", "assistant", "tool", "tool", "user", "assistant", "tool", "user"]
    assert msgs[4]["content"] == CUE and msgs[7]["content"] == CUE
    assert [m["role"] for m in normalize_messages(TWO_ROUNDS, native=native)] == [
        r for i, r in enumerate(roles) if i not in (4, 7)
    ]


def test_a_native_template_reads_the_result_as_it_is() -> None:
    """A template that writes the <tool_response> tags itself gets the result's text (as
    transformers' apply_chat_template shows it), not the {"name", "content"} record."""
    msgs = normalize_messages(TWO_ROUNDS, native=True)
    assert [m["content"] for m in msgs if m["role"] == "tool"] == ["5 C", "09:30", "6 C"]


def test_the_backend_cues_the_answer_after_a_result(tiny_engine: Engine) -> None:
    """A session holds the backend's cue after the result, before the answer; without a cue
    the result is followed by the answer alone."""
    backend = LocalBackend(tiny_engine)
    p = SamplingParams(max_tokens=2, stop_token_ids=())
    backend.answer_cue = CUE
    backend.chat(TWO_ROUNDS, session="cued", params=p)
    rendered = backend.get_session("cued").rendered
    assert rendered.count(CUE) == 2 and rendered.index("6 C") < rendered.rindex(CUE)
    backend.answer_cue = None
    backend.chat(TWO_ROUNDS, session="plain", params=p)
    assert CUE not in backend.get_session("plain").rendered


def test_local_backend_persists_sessions(tiny_engine: Engine, tmp_path: Path) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path)
    p = SamplingParams(max_tokens=5, stop_token_ids=())
    first = backend.chat([{"role": "user", "content": "hello"}], session="a", params=p)
    assert first.usage.session_tokens > 0
    assert (tmp_path / "a.session").is_file()
    reopened = LocalBackend(tiny_engine, sessions_dir=tmp_path)
    info = reopened.session_info("a")
    assert info is not None and info["tokens"] == first.usage.session_tokens
    second = reopened.chat([{"role": "user", "content": "again"}], session="a", params=p)
    assert second.usage.session_tokens > first.usage.session_tokens
    assert reopened.list_sessions() == ["a"]
    assert reopened.delete_session("a") and reopened.session_info("a") is None
    with pytest.raises(ValueError, match="session name"):
        reopened.chat([{"role": "user", "content": "x"}], session="../evil", params=p)


def _turns(backend: LocalBackend, plan: list[tuple[str, str]]) -> list[tuple[int, ...]]:
    p = SamplingParams(max_tokens=4, stop_token_ids=())
    return [
        backend.chat([{"role": "user", "content": text}], session=sid, params=p).token_ids
        for sid, text in plan
    ]


def test_least_recently_used_sessions_wait_in_their_files(
    tiny_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a window small enough that every session evicts, with recall on: the store must come back
    config = SessionConfig(
        streaming=StreamingConfig(n_sink=2, window=24, chunk_size=12),
        recall=RecallConfig(block_size=8, top_k=1, candidates=2, refresh=2, host_blocks=2),
    )
    plan = [
        (sid, f"{sid} turn {i}: " + "the river runs on " * 4) for i in range(3) for sid in "abc"
    ]
    capped = LocalBackend(
        tiny_engine, sessions_dir=tmp_path / "capped", session_config=config, max_resident=1
    )
    free = LocalBackend(tiny_engine, sessions_dir=tmp_path / "free", session_config=config)
    writes: list[str] = []
    real_save = Session.save
    monkeypatch.setattr(
        Session, "save", lambda self, path: writes.append(self.id) or real_save(self, path)
    )
    assert _turns(capped, plan) == _turns(free, plan)  # offloading changes no answer
    # each turn saved its session once: a session saved after its turn is not written again
    # when it is let go
    assert len(writes) == 2 * len(plan)
    assert capped.resident_sessions() == ["c"]
    assert free.resident_sessions() == ["a", "b", "c"]
    info = capped.session_info("a")  # restored from its file: the last one out is "c" now
    assert info is not None and info["tokens"] == free.session_info("a")["tokens"]  # type: ignore[index]
    assert info["recall"]["blocks"] > 2  # more than the RAM tier holds: some came from disk
    assert capped.resident_sessions() == ["a"]
    assert capped.list_sessions() == ["a", "b", "c"]


def test_a_session_in_use_is_not_offloaded(tiny_engine: Engine, tmp_path: Path) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path, max_resident=2)
    _turns(backend, [("a", "one"), ("b", "two")])
    with backend.lock("a"):  # a request is running on "a"
        _turns(backend, [("c", "three")])
        assert backend.resident_sessions() == ["a", "c"]  # "b" went although "a" is older
    info = backend.session_info("b")  # back from its file; now "a" is idle and the oldest
    assert info is not None and info["tokens"] > 0
    assert backend.resident_sessions() == ["c", "b"]


class _GuardedSessions(OrderedDict[str, Any]):
    """A session map that fails any read or change made without the backend's guard."""

    def __init__(self, guard: Any) -> None:
        super().__init__()
        self.guard = guard

    def _check(self) -> None:
        assert self.guard.locked(), "the session map was used outside its guard"

    def __getitem__(self, key: str) -> Any:
        self._check()
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)

    def __contains__(self, key: object) -> bool:
        self._check()
        return super().__contains__(key)

    def __iter__(self) -> Any:
        self._check()
        return super().__iter__()

    def get(self, key: str, default: Any = None) -> Any:
        self._check()
        return super().get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self._check()
        return super().pop(key, *default)


def test_the_session_map_is_only_used_under_its_guard(tiny_engine: Engine, tmp_path: Path) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path, max_resident=2)
    backend._sessions = _GuardedSessions(backend._guard)
    _turns(backend, [("a", "one"), ("b", "two"), ("c", "three")])  # "a" is offloaded
    assert backend.list_sessions() == ["a", "b", "c"]
    assert backend.session_info("b") is not None
    backend.save("b")
    assert backend.delete_session("b") and backend.delete_session("a")
    assert backend.resident_sessions() == ["c"]


def test_session_locks_are_dropped_when_released(tiny_engine: Engine, tmp_path: Path) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path, max_resident=2)
    _turns(backend, [(f"s{i}", "hi") for i in range(5)])
    for i in range(5):
        assert backend.session_info(f"s{i}") is not None
    backend.delete_session("s0")
    with backend.lock("busy"):
        assert len(backend._locks) == 1  # only the lock held now
    assert len(backend._locks) == 0


def test_without_a_folder_every_session_stays(tiny_engine: Engine) -> None:
    backend = LocalBackend(tiny_engine, max_resident=1)
    _turns(backend, [("a", "one"), ("b", "two")])
    assert backend.resident_sessions() == ["a", "b"]
    with pytest.raises(ValueError, match="max_resident must be >= 1 or None, got 0"):
        LocalBackend(tiny_engine, max_resident=0)


@pytest.mark.slow
def test_real_model_tool_calls_and_json_are_valid(real_engine: Any, tmp_path: Path) -> None:
    backend = LocalBackend(real_engine)
    p = SamplingParams(max_tokens=60)
    for city in ("Paris", "Tokyo", "Lima"):
        c = backend.chat(
            [{"role": "user", "content": f"What's the weather in {city}?"}],
            tools=[WEATHER],
            tool_choice="required",
            params=p,
        )
        assert c.finish_reason == "tool_calls", c.text
        jsonschema.validate(c.tool_calls[0].arguments, WEATHER["function"]["parameters"])
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    text = backend.chat(
        [{"role": "user", "content": "A person named Ann, 31."}], json_schema=schema, params=p
    ).text
    jsonschema.validate(json.loads(text), schema)
    assert json.loads(
        backend.generate_json([{"role": "user", "content": "Ann, 31"}], schema, max_tokens=40)
    )


@pytest.mark.slow
def test_real_model_call_cut_off_by_max_tokens_shows_no_markup(
    real_engine: Any, tmp_path: Path
) -> None:
    backend = LocalBackend(real_engine, sessions_dir=tmp_path)
    msgs = [{"role": "user", "content": "What's the weather in Paris?"}]
    c = backend.chat(
        msgs,
        session="cut",
        tools=[WEATHER],
        tool_choice="required",
        params=SamplingParams(max_tokens=4),
    )
    assert c.finish_reason == "length" and not c.tool_calls
    assert c.text == "" and c.message()["content"] is None  # the call's markup is never shown
    # the turn is recorded: the next request appends only what is new
    follow = [*msgs, c.message(), {"role": "user", "content": "Try again."}]
    again = backend.chat(
        follow,
        session="cut",
        tools=[WEATHER],
        tool_choice="required",
        params=SamplingParams(max_tokens=60),
    )
    assert again.finish_reason == "tool_calls" and again.tool_calls[0].id.startswith("call_")


@pytest.mark.parametrize(
    ("text", "free"),
    [
        ("", False),  # undecided: no penalty until the reply shows which branch it takes
        ("<tool", False),
        ('<tool_call>\n{"name": "calc', False),
        ("  <tool_call>", False),
        ("The answer", True),
        ("<b>bold</b>", True),
    ],
)
def test_penalty_gate_spares_tool_calls(text: str, free: bool) -> None:
    from agentcore.backends._local import _outside_tool_call

    assert _outside_tool_call(text) is free
