"""Telling a request's messages apart: the whole conversation, only new messages, or a
different conversation under an old session name (refused, naming the first message that
differs); and the limit on sessions a persistent backend keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcore.backends import LocalBackend, SessionConflictError, SessionLimitError
from agentcore.backends._continuation import Ledger, continuation
from agentcore.core.engine import Engine
from agentcore.core.sampling import SamplingParams

SYSTEM = {"role": "system", "content": "You are terse."}
HI = {"role": "user", "content": "hi"}
REPLY = {"role": "assistant", "content": "hello"}
CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {}}}
    ],
}
RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "42"}
MORE = {"role": "user", "content": "more"}


def _ledger(*messages: dict[str, Any]) -> tuple[Ledger, list[dict[str, Any]]]:
    ledger = Ledger()
    ledger.add(messages)
    return ledger, list(messages)


def _go(ledger: Ledger, held: list[dict[str, Any]], request: list[dict[str, Any]]) -> Any:
    return continuation(ledger, request, session="s", history=lambda: iter(held))


def test_the_whole_conversation_skips_what_the_session_holds() -> None:
    ledger, held = _ledger(SYSTEM, HI, CALL, RESULT, REPLY)
    assert _go(ledger, held, [*held, MORE]) == [MORE]


def test_only_new_messages_are_all_new() -> None:
    ledger, held = _ledger(SYSTEM, HI, CALL)
    assert _go(ledger, held, [RESULT, MORE]) == [RESULT, MORE]  # answers the session's call
    assert _go(ledger, held, [MORE]) == [MORE]
    assert _go(ledger, held, [SYSTEM, MORE]) == [SYSTEM, MORE]  # an agent repeating its system


@pytest.mark.parametrize(
    ("request_messages", "index", "words"),
    [
        ([{"role": "system", "content": "Another bot."}, MORE], 0, "messages[0] (system)"),
        ([HI, {"role": "assistant", "content": "made up"}, MORE], 1, "messages[1] (assistant)"),
        ([MORE, {**RESULT, "tool_call_id": "call_never"}], 1, "a tool call the session did not"),
        ([SYSTEM, HI, {"role": "assistant", "content": "edited"}, MORE], 2, "messages[2]"),
        ([SYSTEM, HI], 1, "nothing in it is new"),
    ],
)
def test_a_different_conversation_is_refused_naming_the_message(
    request_messages: list[dict[str, Any]], index: int, words: str
) -> None:
    ledger, held = _ledger(SYSTEM, HI, CALL, RESULT, REPLY)
    with pytest.raises(SessionConflictError) as err:
        _go(ledger, held, request_messages)
    assert err.value.index == index and err.value.param == f"messages[{index}]"
    assert words in str(err.value) and "session_reset" in str(err.value)


def test_a_session_without_a_system_message_refuses_one() -> None:
    ledger, held = _ledger(HI, REPLY)
    with pytest.raises(SessionConflictError, match=r"messages\[0\] \(system\)"):
        _go(ledger, held, [SYSTEM, MORE])


def test_the_ledger_stays_bounded() -> None:
    ledger = Ledger()
    for i in range(2000):
        ledger.add([{"role": "user", "content": f"m{i}"}])
    assert ledger.n == 2000 and len(ledger.tail) <= 16
    assert ledger.first == {"role": "user", "content": "m0"}


def test_local_backend_refuses_a_different_conversation_and_resets(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path)
    p = SamplingParams(max_tokens=4)
    first = backend.chat([SYSTEM, HI], session="a", params=p)
    # the whole conversation and only the new message both continue it
    backend.chat([SYSTEM, HI, first.message(), MORE], session="a", params=p)
    backend.chat([MORE], session="a", params=p)
    tokens = backend.session_info("a")["tokens"]  # type: ignore[index]
    other = [{"role": "system", "content": "Another bot."}, HI]
    with pytest.raises(SessionConflictError):
        backend.chat(other, session="a", params=p)
    assert backend.session_info("a")["tokens"] == tokens  # type: ignore[index]  # untouched
    # a restored session remembers what it holds
    again = LocalBackend(tiny_engine, sessions_dir=tmp_path)
    with pytest.raises(SessionConflictError):
        again.chat(other, session="a", params=p)
    assert again.delete_session("a")
    assert not list(tmp_path.glob("a.session*"))  # base, journal and history are gone
    again.chat(other, session="a", params=p)
    assert again.session_info("a")["messages"] == 3  # type: ignore[index]


def test_sessions_on_disk_are_limited(tiny_engine: Engine, tmp_path: Path) -> None:
    backend = LocalBackend(tiny_engine, sessions_dir=tmp_path, max_sessions=2, max_resident=1)
    p = SamplingParams(max_tokens=2)
    backend.chat([HI], session="one", params=p)
    backend.chat([HI], session="two", params=p)
    with pytest.raises(SessionLimitError, match=r"at most 2 sessions.*--max-sessions"):
        backend.chat([HI], session="three", params=p)
    backend.chat([MORE], session="one", params=p)  # existing sessions go on
    assert backend.delete_session("two")
    backend.chat([HI], session="three", params=p)
    # a new backend on the same folder counts the files
    fresh = LocalBackend(tiny_engine, sessions_dir=tmp_path, max_sessions=2)
    with pytest.raises(SessionLimitError):
        fresh.chat([HI], session="four", params=p)
    with pytest.raises(ValueError, match="max_sessions"):
        LocalBackend(tiny_engine, sessions_dir=tmp_path, max_sessions=0)
