"""A scripted model backend for tests: replies and tool calls decided in advance.

Owns :class:`FakeBackend`, which answers each request with the next scripted :class:`Reply`
(or what a callable returns for the request), streams its text through ``on_token``, keeps
per-session transcripts like a real backend, and records every request for assertions. It
validates scripted tool calls against the tools offered, as constrained decoding would, so a
script cannot produce a call the real backend could not. Never loads a model.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agentcore.backends._protocol import (
    ChatRequest,
    Completion,
    Message,
    ModelBackend,
    ToolCallOut,
    Usage,
    new_messages,
)
from agentcore.core.params import SamplingParams

__all__ = ["FakeBackend", "FakeRequest", "Reply", "ScriptExhaustedError"]


class ScriptExhaustedError(RuntimeError):
    """The test asked the fake for more replies than it scripted."""


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted answer: text, or a tool call (``tool`` + ``arguments``)."""

    text: str = ""
    tool: str | None = None
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def call(cls, tool: str, **arguments: Any) -> Reply:
        return cls(tool=tool, arguments=arguments)


@dataclasses.dataclass(frozen=True)
class FakeRequest:
    """What a caller asked for, as the fake saw it."""

    messages: tuple[Message, ...]
    session: str | None
    tools: tuple[str, ...]
    tool_choice: Any
    json_schema: Mapping[str, Any] | None
    params: SamplingParams | None
    parallel_tool_calls: bool = True


Script = Reply | str | Callable[[FakeRequest], "Reply | str"]


class FakeBackend(ModelBackend):
    """A :class:`~agentcore.backends.ModelBackend` that plays a script."""

    def __init__(
        self, script: Iterable[Script] = (), *, name: str = "fake", default: Script | None = None
    ) -> None:
        self._script = list(script)
        self._default = default
        self._name = name
        self.requests: list[FakeRequest] = []
        self.transcripts: dict[str, list[Message]] = {}
        self._ids = itertools.count(1)

    @property
    def name(self) -> str:
        return self._name

    def add(self, *replies: Script) -> None:
        self._script.extend(replies)

    def _next(self, request: FakeRequest) -> Reply:
        if self._script:
            item = self._script.pop(0)
        elif self._default is not None:
            item = self._default
        else:
            raise ScriptExhaustedError(
                f"the fake backend ran out of scripted replies after {len(self.requests)} requests"
            )
        if callable(item) and not isinstance(item, Reply):
            item = item(request)
        return Reply(text=item) if isinstance(item, str) else item

    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        if request.logprobs is not None:
            raise ValueError(
                f"ChatRequest.logprobs={request.logprobs}: the fake backend scores no tokens "
                "(a Scorer does: the local backend)"
            )
        session, tools, tool_choice = request.session, request.tools, request.tool_choice
        json_schema = request.json_schema
        transcript = self.transcripts.setdefault(session, []) if session else []
        fresh = new_messages(transcript, request.messages)
        offered = {t["function"]["name"]: t["function"] for t in tools or () if "function" in t}
        seen = FakeRequest(
            messages=tuple(fresh),
            session=session,
            tools=tuple(offered) if tool_choice != "none" else (),
            tool_choice=tool_choice,
            json_schema=json_schema,
            params=request.params,
            parallel_tool_calls=request.parallel_tool_calls,
        )
        self.requests.append(seen)
        reply = self._next(seen)
        calls: tuple[ToolCallOut, ...] = ()
        if reply.tool is not None:
            if reply.tool not in seen.tools:
                raise ValueError(
                    f"scripted call to {reply.tool!r}, but the request offered {list(seen.tools)}"
                )
            _check_arguments(
                offered[reply.tool].get("parameters") or {}, dict(reply.arguments), reply.tool
            )
            calls = (ToolCallOut(f"call_{next(self._ids)}", reply.tool, dict(reply.arguments)),)
        text = reply.text
        if json_schema is not None and not calls:
            json.loads(text)  # a scripted JSON answer must at least parse
        finish = "tool_calls" if calls else "stop"
        if on_token is not None and text:
            for i in range(0, len(text), 4):
                if should_stop is not None and should_stop():
                    text, finish = text[:i], "cancelled"
                    break
                on_token(text[i : i + 4])
        completion = Completion(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=Usage(sum(len(str(m.get("content") or "")) for m in fresh), len(text)),
            session=session,
        )
        if session:
            transcript.extend(fresh)
            transcript.append(completion.message())
        return completion

    def list_sessions(self) -> list[str]:
        return sorted(self.transcripts)

    def session_info(self, session: str) -> dict[str, Any] | None:
        if session not in self.transcripts:
            return None
        return {"id": session, "messages": len(self.transcripts[session])}

    def delete_session(self, session: str) -> bool:
        return self.transcripts.pop(session, None) is not None


def _check_arguments(schema: Mapping[str, Any], arguments: dict[str, Any], tool: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(arguments, dict(schema))
    except jsonschema.ValidationError as exc:
        raise ValueError(
            f"scripted arguments for {tool!r} do not match its schema: {exc.message}"
        ) from None
