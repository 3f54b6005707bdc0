"""The model backend protocol: one interface for local, HTTP and scripted models.

Owns the types every backend speaks: chat messages in OpenAI shape, :class:`ToolCallOut`,
:class:`Completion`, and the :class:`ModelBackend` protocol the agent layers use. Never
implements a model: see ``_local`` (in-process long-memory core), ``_http`` (OpenAI-compatible
servers) and ``_fake`` (scripted replies for tests).

One method generates: ``complete(request, on_token=..., should_stop=...)`` with a
:class:`~agentcore.backends.ChatRequest`. ``chat(messages, session=..., tools=..., ...)`` is the
keyword form of the same call; it is written once, here, and a backend that subclasses
:class:`ModelBackend` inherits it (and ``generate_json``), so a backend writes only ``complete``
and its session methods.

Sessions: a request with ``session="id"`` appends to that session's endless stream. When the
session's transcript is a prefix of the request's messages (clients that resend the whole
conversation) only the new suffix is appended; otherwise every message given is new (the local
backend refuses a different conversation under the name instead: ``_continuation``). Without
``session`` a request is stateless.

Capabilities beyond the protocol are declared, not guessed from a class: :class:`SessionStore`
(a backend that holds model sessions in this process: raw-text completions and explicit
creation need them), :class:`Scorer` (a backend that honours ``ChatRequest.logprobs``),
:class:`SessionLister` and :class:`Described` (model details for a model card).
``isinstance(backend, SessionStore)`` is how callers ask.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agentcore.backends._request import ChatRequest, Message, ToolChoice
from agentcore.core.params import SamplingParams

if TYPE_CHECKING:
    from agentcore.core.codec import Codec
    from agentcore.core.session import Session

__all__ = [
    "ChatRequest",
    "Completion",
    "Described",
    "Message",
    "ModelBackend",
    "Scorer",
    "SessionLister",
    "SessionStore",
    "ToolCallOut",
    "ToolChoice",
    "Usage",
    "new_messages",
]


@dataclasses.dataclass(frozen=True)
class ToolCallOut:
    """A tool call the model made (valid under the tool's schema when decoded locally)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Usage:
    prompt_tokens: int  # tokens appended for this request (new messages + template)
    completion_tokens: int
    session_tokens: int = 0  # the session's whole stream after the request (0: stateless)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True)
class Completion:
    """One assistant turn."""

    text: str
    tool_calls: tuple[ToolCallOut, ...] = ()
    finish_reason: str = "stop"  # stop | length | tool_calls | cancelled
    usage: Usage = dataclasses.field(default_factory=lambda: Usage(0, 0))
    session: str | None = None
    logprobs: tuple[float, ...] = ()  # per generated token, when asked for
    token_ids: tuple[int, ...] = ()
    top_logprobs: tuple[tuple[tuple[int, float], ...], ...] = ()  # per token: (id, logprob) best
    # calls decoded again after their arguments failed validation (0 or 1; the local backend)
    argument_retries: int = 0

    @property
    def content(self) -> str | None:
        """The message's ``content``: None beside tool calls, and for a reply cut off by
        ``max_tokens`` before any text."""
        if self.tool_calls or (not self.text and self.finish_reason == "length"):
            return None
        return self.text

    def message(self) -> Message:
        """This turn as an OpenAI-style assistant message."""
        msg: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return msg


@runtime_checkable
class ModelBackend(Protocol):
    """What the agent layers need from a model.

    A backend implements ``name``, :meth:`complete` and the session methods (a session is the
    backend's to keep: the agent sends each turn's new messages only). Subclassing this
    protocol (``class MyBackend(ModelBackend): ...``) gives it :meth:`chat` and
    :meth:`generate_json`, written on top of :meth:`complete`, and makes a missing method an
    error when the class is instantiated; a class that only matches the protocol by shape must
    write those two itself.
    """

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """Generate one assistant turn for ``request``. ``on_token`` receives the text as it
        is generated; ``should_stop`` is polled while generating, and a True ends the turn
        with ``finish_reason="cancelled"``."""
        ...

    def chat(
        self,
        messages: Sequence[Message],
        *,
        session: str | None = None,
        params: SamplingParams | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice = "auto",
        json_schema: Mapping[str, Any] | None = None,
        logprobs: int | None = None,
        parallel_tool_calls: bool = True,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """:meth:`complete` with the request's fields as keywords (see :class:`ChatRequest`)."""
        request = ChatRequest(
            messages,
            session=session,
            params=params,
            tools=tools,
            tool_choice=tool_choice,
            json_schema=json_schema,
            logprobs=logprobs,
            parallel_tool_calls=parallel_tool_calls,
        )
        return self.complete(request, on_token=on_token, should_stop=should_stop)

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str:
        """Stateless: an answer that is one JSON value valid under ``schema``."""
        request = ChatRequest(
            messages, params=SamplingParams(max_tokens=max_tokens), json_schema=schema
        )
        return self.complete(request).text

    @abstractmethod
    def session_info(self, session: str) -> dict[str, Any] | None:
        """Token count and memory sizes of a session, or None when it does not exist."""
        ...

    @abstractmethod
    def delete_session(self, session: str) -> bool:
        """Forget a session; False when there was none."""
        ...


@runtime_checkable
class SessionLister(Protocol):
    """A backend that can name the sessions it holds."""

    def list_sessions(self) -> list[str]: ...


@runtime_checkable
class Described(Protocol):
    """A backend that can describe the model it runs (device, dtype, sizes) for model cards."""

    def model_details(self) -> dict[str, Any]: ...


@runtime_checkable
class SessionStore(SessionLister, Protocol):
    """A backend that keeps model sessions in this process (the local backend).

    ``get_session(None)`` is a fresh stateless session (use it in a ``with`` block); a named one
    is restored or created. Hold ``lock(name)`` around any use of a named session and
    ``save(name)`` after changing it. ``sessions_dir`` is where saved sessions live (None: in
    memory only).
    """

    @property
    def sessions_dir(self) -> Path | None: ...

    def lock(self, sid: str) -> AbstractContextManager[None]: ...

    def get_session(self, sid: str | None) -> Session: ...

    def save(self, sid: str) -> None: ...


@runtime_checkable
class Scorer(Protocol):
    """A :class:`ModelBackend` that honours ``ChatRequest.logprobs=k``: its completions carry
    :attr:`Completion.logprobs`, ``token_ids`` and ``top_logprobs``, and ``codec`` names the
    tokens. (Only ``codec`` is checked: ``isinstance`` on a protocol that also listed ``name``
    would make an http backend ask its server for the model.)"""

    @property
    def codec(self) -> Codec: ...


def _same(a: Message, b: Message) -> bool:
    keys = ("role", "content", "tool_calls", "tool_call_id", "name")
    return all(a.get(k) == b.get(k) for k in keys)


def new_messages(transcript: Sequence[Message], messages: Sequence[Message]) -> list[Message]:
    """The messages not yet in ``transcript`` (see the module docstring)."""
    n = len(transcript)
    if n and len(messages) > n and all(_same(transcript[i], messages[i]) for i in range(n)):
        return [dict(m) for m in messages[n:]]
    return [dict(m) for m in messages]
