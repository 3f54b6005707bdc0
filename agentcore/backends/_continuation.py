"""How a request's messages continue a named session, and when they cannot.

Owns :class:`Ledger`, what a session remembers of the requests it answered (a bounded record:
the count of messages, a hash chain over all of them, the first message, the last few, the tool
calls it made), and :func:`continuation`, which tells the two ways a request names a session
apart:

- **the whole conversation** (what OpenAI clients send): the session's messages, then new ones;
  the part the session holds is recognised by its hash chain and skipped;
- **only the new messages** (what the project's own client and Agent send).

A request that is neither, a different conversation under an old name, is refused with
:class:`SessionConflictError` naming the first message that differs: it opens with a system
message other than the session's, or carries an assistant turn or a tool result for a call the
session never made, without repeating the session's conversation. Recognising a continuation
costs the request's length, never the session's history; only naming the differing message of a
refused request reads the history (the session's ``"raw"`` records). A new conversation that
opens with the session's own system message and carries no assistant turns cannot be told from
an agent repeating its system message before new ones: it is taken as new messages (a client
starting over sends ``session_reset``).

Never renders or generates anything: the backend does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agentcore.backends._protocol import Message

__all__ = ["Ledger", "SessionConflictError", "continuation"]

_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")  # what makes two messages equal
_TAIL = 16  # recent messages the ledger keeps
_CALLS = 256  # recent tool call ids the ledger keeps


class SessionConflictError(ValueError):
    """A request names a session but carries a different conversation (HTTP 409)."""

    def __init__(self, session: str, index: int, detail: str) -> None:
        super().__init__(
            f"session {session!r} holds a different conversation: {detail}. A request continues "
            "a session with the whole conversation (the session's messages, then new ones) or "
            "with only the new messages (no system message, no assistant turns or tool results "
            'the session did not produce). To start the session over, send "session_reset": '
            "true; or use another session name"
        )
        self.session = session
        self.index = index
        self.param = f"messages[{index}]"


def _canonical(m: Message) -> str:
    return json.dumps({k: m.get(k) for k in _KEYS}, sort_keys=True, ensure_ascii=False, default=str)


def _link(chain: str, m: Message) -> str:
    return hashlib.sha256((chain + _canonical(m)).encode()).hexdigest()


@dataclasses.dataclass
class Ledger:
    """What a session remembers of its requests (bounded; JSON in the session's meta)."""

    n: int = 0  # messages the session holds (requests' and its own replies)
    chain: str = ""  # hash chain over all of them
    first: Message | None = None
    tail: list[Message] = dataclasses.field(default_factory=list)
    calls: list[str] = dataclasses.field(default_factory=list)  # tool call ids it made

    def add(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self.chain = _link(self.chain, m)
            if self.first is None:
                self.first = dict(m)
            self.tail.append(dict(m))
            self.n += 1
            for call in m.get("tool_calls") or ():
                if m.get("role") == "assistant" and call.get("id"):
                    self.calls.append(str(call["id"]))
        del self.tail[:-_TAIL]
        del self.calls[:-_CALLS]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        return cls(**data)


def continuation(
    ledger: Ledger,
    messages: Sequence[Message],
    *,
    session: str,
    history: Callable[[], Iterable[Message]],
) -> list[Message]:
    """The messages of a request the session does not hold yet (see the module docstring);
    raises :class:`SessionConflictError` for a different conversation. ``history`` yields the
    session's messages (read only to name the message that differs)."""
    n = ledger.n
    if n == 0:
        return [dict(m) for m in messages]
    if len(messages) > n:
        chain = ""
        for m in messages[:n]:
            chain = _link(chain, m)
        if chain == ledger.chain:
            return [dict(m) for m in messages[n:]]
    odd = _not_new(ledger, messages)
    first = ledger.first
    if odd is None:
        if (
            first is not None
            and first.get("role") in ("system", "developer")
            and messages
            and _canonical(messages[0]) == _canonical(first)
        ):
            # the session's system message again: an agent repeating its system message before new
            # ones, or the start of the conversation resent with nothing new (refused); reads
            # the first len(messages) messages of the history only
            held = history()
            if len(messages) <= n and all(
                _canonical(mine) == _canonical(theirs)
                for mine, theirs in zip(messages, held, strict=False)
            ):
                raise _conflict(ledger, messages, session, history)
        return [dict(m) for m in messages]
    if first is not None and messages and _canonical(messages[0]) == _canonical(first):
        raise _conflict(ledger, messages, session, history)  # a whole conversation that differs
    m = messages[odd]
    what = (
        "a system message other than the one the session opened with"
        if odd == 0 and m.get("role") in ("system", "developer")
        else "an assistant turn the session did not produce"
        if m.get("role") == "assistant"
        else "the result of a tool call the session did not make"
    )
    raise SessionConflictError(
        session,
        odd,
        f"messages[{odd}] ({m.get('role')}) is {what}, and the request does not repeat the "
        "session's conversation",
    )


def _not_new(ledger: Ledger, messages: Sequence[Message]) -> int | None:
    """The first message that cannot be new (None: all can): a system message opening them
    other than the session's own (an agent repeats it), an assistant turn, a tool result for a
    call the session did not make."""
    calls = set(ledger.calls)
    for i, m in enumerate(messages):
        role = m.get("role")
        if i == 0 and role in ("system", "developer"):
            first = ledger.first
            if first is None or _canonical(first) != _canonical(m):
                return i
        if role == "assistant":
            return i
        if role == "tool" and m.get("tool_call_id") and str(m["tool_call_id"]) not in calls:
            return i
    return None


def _conflict(
    ledger: Ledger,
    messages: Sequence[Message],
    session: str,
    history: Callable[[], Iterable[Message]],
) -> SessionConflictError:
    """The error naming the first message of the request that differs from the session's."""
    i = 0  # messages compared equal so far
    theirs: Message | None = None
    for mine, held in zip(messages, history(), strict=False):
        if _canonical(mine) != _canonical(held):
            theirs = held
            break
        i += 1
    if theirs is not None:
        detail = (
            f"messages[{i}] ({messages[i].get('role')}) differs from the session's message {i} "
            f"({theirs.get('role')})"
        )
        return SessionConflictError(session, i, detail)
    if i < len(messages):  # the request is longer than what could be compared
        return SessionConflictError(
            session, i, f"messages[{i}] ({messages[i].get('role')}) is not one the session holds"
        )
    last = len(messages) - 1
    return SessionConflictError(
        session,
        max(last, 0),
        f"the request's {len(messages)} messages repeat the start of the session, which holds "
        f"{ledger.n}: nothing in it is new",
    )
