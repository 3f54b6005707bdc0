"""One chat request to a model backend, as a value: :class:`ChatRequest`.

Owns what a caller asks of one assistant turn (messages, session, sampling, tools and
``tool_choice``, a JSON Schema for the answer, log-probabilities) and its validation, which
names the field at fault. It is what :meth:`ModelBackend.complete` takes; the keyword
``chat(...)`` builds one. The per-call callbacks (``on_token``, ``should_stop``) are not part of
it: a request is data that can be logged, compared and sent again. Never talks to a model, and
never checks what only a backend can (a session name's characters, a tool's JSON Schema, a
forced tool's existence): the backends raise those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agentcore.core.params import SamplingParams

__all__ = ["ChatRequest", "Message", "ToolChoice"]

Message = dict[str, Any]
ToolChoice = Literal["auto", "none", "required"] | Mapping[str, Any]

_CHOICES = ("auto", "none", "required")


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """One assistant turn to generate.

    ``messages`` are OpenAI chat messages (``role``, ``content``, ``tool_calls``, ...); with a
    ``session`` they continue that session (only what it does not hold yet is appended, see
    :func:`~agentcore.backends.new_messages`), without one the request is stateless. ``params``
    None means the backend's defaults. ``tools`` are OpenAI ``tools`` entries (an empty list is
    kept as None: no tools), ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or
    ``{"type": "function", "function": {"name": ...}}``. ``json_schema``: the answer is one JSON
    value valid under it. ``parallel_tool_calls=False``: an answer holds at most one call
    (OpenAI's field of that name; by default a request that asks for several things may get a
    call for each). ``logprobs=k`` asks a :class:`~agentcore.backends.Scorer` backend for
    each generated token's log-probability and its ``k`` best alternatives; other backends
    refuse it.

    Raises ``ValueError`` (``TypeError`` for a value of the wrong type) naming the field, e.g.
    ``ChatRequest.messages[1]: expected a message dict with a 'role', got 'hi' (str)``. The
    sequences are stored as tuples; the message dicts themselves are not copied.
    """

    messages: Sequence[Message]
    session: str | None = None
    params: SamplingParams | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: ToolChoice = "auto"
    json_schema: Mapping[str, Any] | None = None
    logprobs: int | None = None
    parallel_tool_calls: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", _messages(self.messages))
        _check_session(self.session)
        if self.params is not None and not isinstance(self.params, SamplingParams):
            raise TypeError(
                f"ChatRequest.params: expected SamplingParams or None, got "
                f"{_kind(self.params)}; build one with SamplingParams(max_tokens=..., ...)"
            )
        object.__setattr__(self, "tools", _tools(self.tools))
        _check_tool_choice(self.tool_choice)
        if self.json_schema is not None and not isinstance(self.json_schema, Mapping):
            raise TypeError(
                f"ChatRequest.json_schema: expected a JSON Schema as a dict or None, got "
                f"{_kind(self.json_schema)}" + _json_hint(self.json_schema)
            )
        _check_logprobs(self.logprobs)
        if not isinstance(self.parallel_tool_calls, bool):
            raise TypeError(
                f"ChatRequest.parallel_tool_calls: expected True or False, got "
                f"{_kind(self.parallel_tool_calls)}"
            )


def _kind(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else f"{text[:57]}..."
    return f"{text} ({type(value).__name__})"


def _json_hint(value: Any) -> str:
    return " (parse JSON text with json.loads first)" if isinstance(value, str | bytes) else ""


def _messages(messages: Any) -> tuple[Message, ...]:
    if isinstance(messages, Mapping):
        raise TypeError(
            "ChatRequest.messages: expected a list of messages, got one message (dict); "
            "wrap it in a list: [message]"
        )
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError(
            f"ChatRequest.messages: expected a list of message dicts, got {_kind(messages)}; "
            'e.g. [{"role": "user", "content": "..."}]'
        )
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise TypeError(
                f"ChatRequest.messages[{i}]: expected a message dict with a 'role', got {_kind(m)}"
            )
    return tuple(messages)


def _check_session(session: Any) -> None:
    if session is None:
        return
    if not isinstance(session, str):
        raise TypeError(
            f"ChatRequest.session: expected a session name (str) or None, got {_kind(session)}"
        )
    if not session:
        raise ValueError(
            "ChatRequest.session: got an empty name; pass None for a stateless request"
        )


def _tools(tools: Any) -> tuple[Mapping[str, Any], ...] | None:
    if tools is None:
        return None
    if isinstance(tools, Mapping | str | bytes) or not isinstance(tools, Sequence):
        raise TypeError(
            f"ChatRequest.tools: expected a list of OpenAI tool entries or None, got {_kind(tools)}"
        )
    for i, entry in enumerate(tools):
        if not isinstance(entry, Mapping):
            raise TypeError(
                f"ChatRequest.tools[{i}]: expected a tool entry dict "
                f'({{"type": "function", "function": {{"name": ..., "parameters": ...}}}}), '
                f"got {_kind(entry)}"
            )
    return tuple(tools) or None


def _check_tool_choice(choice: Any) -> None:
    if isinstance(choice, Mapping) or (isinstance(choice, str) and choice in _CHOICES):
        return
    raise ValueError(
        f"ChatRequest.tool_choice: got {_kind(choice)}; expected 'auto', 'none', 'required' "
        'or {"type": "function", "function": {"name": "<tool name>"}}'
    )


def _check_logprobs(logprobs: Any) -> None:
    if logprobs is None:
        return
    if isinstance(logprobs, bool) or not isinstance(logprobs, int):
        raise TypeError(
            f"ChatRequest.logprobs: expected an integer >= 0 (how many best alternatives per "
            f"token) or None, got {_kind(logprobs)}"
        )
    if logprobs < 0:
        raise ValueError(
            f"ChatRequest.logprobs: got {logprobs}; expected an integer >= 0 (0: each token's "
            "own log-probability only) or None"
        )
