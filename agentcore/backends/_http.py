"""The http backend: a model behind an OpenAI-compatible server, seen as a ModelBackend.

Owns :class:`HttpBackend`, which turns each :class:`~agentcore.backends.ChatRequest` into a
``POST /v1/chat/completions`` request through :class:`agentcore.client.Client`: sampling
parameters, tools and ``tool_choice``, JSON Schema output (``response_format``), streaming
(text pieces go to ``on_token``; tool-call deltas in OpenAI's format are assembled by
``index``), cancellation (``should_stop`` closes the stream, and the server stops generating).
A request asking for ``logprobs`` is refused: the replies' log-probabilities are not read.

Sessions: against an agentcore server the session lives on the server (the request carries
``"session"`` and the server appends only what is new); against any other server (vLLM,
llama.cpp, Ollama) the transcript is kept here and the whole conversation is sent each time,
with the same rule as every backend (see :func:`~agentcore.backends._protocol.new_messages`).
Agents see no difference from the local backend. Never runs a model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from agentcore.backends._protocol import (
    ChatRequest,
    Completion,
    Message,
    ModelBackend,
    ToolCallOut,
    Usage,
    new_messages,
)
from agentcore.backends._session_locks import SessionLocks
from agentcore.client import Client, ClientConfig
from agentcore.core.params import SamplingParams

__all__ = ["HttpBackend", "ToolCallDecodeError"]

log = logging.getLogger(__name__)

SessionMode = Literal["auto", "server", "client"]


class ToolCallDecodeError(ValueError):
    """The server returned a tool call whose arguments are not a JSON object."""


def _wire_message(m: Mapping[str, Any]) -> Message:
    """A message in OpenAI wire form (tool-call arguments as JSON text)."""
    out = dict(m)
    calls = out.get("tool_calls")
    if calls:
        wired = []
        for call in calls:
            fn = dict(call.get("function", {}))
            args = fn.get("arguments", {})
            if not isinstance(args, str):
                fn["arguments"] = json.dumps(args, ensure_ascii=False)
            wired.append({"id": call.get("id"), "type": "function", "function": fn})
        out["tool_calls"] = wired
    return out


def _arguments(name: str, raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    text = raw if isinstance(raw, str) else ""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolCallDecodeError(
            f"the server's call to {name!r} has arguments that are not JSON ({exc.msg}): {text!r}"
        ) from None
    if not isinstance(value, dict):
        raise ToolCallDecodeError(
            f"the server's call to {name!r} has arguments that are not a JSON object: {text!r}"
        )
    return value


class _ToolCallAssembler:
    """Accumulates OpenAI streaming ``tool_calls`` deltas, keyed by ``index``."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Sequence[Mapping[str, Any]]) -> None:
        for d in deltas:
            index = int(d.get("index", len(self.calls)))
            slot = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if d.get("id"):
                slot["id"] = str(d["id"])
            fn = d.get("function") or {}
            if fn.get("name"):
                slot["name"] += str(fn["name"])
            if fn.get("arguments"):
                args = fn["arguments"]
                slot["arguments"] += args if isinstance(args, str) else json.dumps(args)

    def result(self) -> tuple[ToolCallOut, ...]:
        return tuple(
            ToolCallOut(s["id"] or f"call_{i}", s["name"], _arguments(s["name"], s["arguments"]))
            for i, s in sorted(self.calls.items())
        )


class HttpBackend(ModelBackend):
    """A :class:`~agentcore.backends.ModelBackend` over HTTP.

    ``sessions``: ``"server"`` (the server keeps sessions: agentcore), ``"client"`` (keep the
    transcript here and resend it: any OpenAI-compatible server), or ``"auto"`` (ask
    ``/v1/models`` whether the server is agentcore).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        model: str | None = None,
        api_key: str | None = None,
        sessions: SessionMode = "auto",
        client: Client | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        if sessions not in ("auto", "server", "client"):
            raise ValueError(f"sessions={sessions!r}: expected 'auto', 'server' or 'client'")
        self.client = client or Client(base_url, api_key=api_key, config=config)
        self._model = model
        self._mode = sessions
        self._server_sessions: bool | None = {"auto": None, "server": True, "client": False}[
            sessions
        ]
        self.transcripts: dict[str, list[Message]] = {}
        self._session_tokens: dict[str, int] = {}
        self._locks = SessionLocks()  # one per session in use, dropped when released

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> None:
        models = self.client.models()
        if self._model is None:
            if not models:
                raise ValueError(f"{self.client.base_url}/models lists no model; pass model=...")
            self._model = str(models[0]["id"])
        if self._server_sessions is None:
            card = next((m for m in models if m.get("id") == self._model), {})
            extra = card.get("agentcore") if isinstance(card, dict) else None
            self._server_sessions = bool(
                card.get("owned_by") == "agentcore"
                and isinstance(extra, dict)
                and extra.get("sessions")
            )
        log.info(
            "%s: model %r, sessions kept by the %s",
            self.client.base_url,
            self._model,
            "server" if self._server_sessions else "client",
        )

    @property
    def name(self) -> str:
        if self._model is None:
            self._discover()
        assert self._model is not None
        return self._model

    @property
    def server_sessions(self) -> bool:
        """Whether the server keeps sessions (agentcore) or this backend keeps transcripts."""
        if self._server_sessions is None:
            self._discover()
        return bool(self._server_sessions)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def _body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params or SamplingParams()
        body: dict[str, Any] = {"max_tokens": p.max_tokens, "temperature": p.temperature}
        if p.top_p != 1.0:
            body["top_p"] = p.top_p
        if p.top_k:
            body["top_k"] = p.top_k
        if self.server_sessions:
            # agentcore's server: the penalty exactly as given, none included (a chat request
            # naming no penalty gets the server's default reply penalty)
            body["repetition_penalty"] = p.repetition_penalty
            body["repetition_scope"] = p.repetition_scope
            body["penalize_digits"] = p.penalize_digits
        elif p.repetition_penalty != 1.0 and p.repetition_scope == "context":
            body["repetition_penalty"] = p.repetition_penalty
        # elsewhere a reply-scoped penalty would also hit the prompt's words (the thing to
        # repeat back), so it is left out there
        if p.presence_penalty:
            body["presence_penalty"] = p.presence_penalty
        if p.frequency_penalty:
            body["frequency_penalty"] = p.frequency_penalty
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop_token_ids is not None:
            if p.stop_token_ids:
                body["stop_token_ids"] = list(p.stop_token_ids)
            else:
                body["ignore_eos"] = True
        tool_choice, json_schema = request.tool_choice, request.json_schema
        if request.tools:
            body["tools"] = [dict(t) for t in request.tools]
            body["tool_choice"] = (
                dict(tool_choice) if isinstance(tool_choice, Mapping) else tool_choice
            )
            if not request.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": dict(json_schema), "strict": True},
            }
        return body

    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        if request.logprobs is not None:
            raise ValueError(
                f"ChatRequest.logprobs={request.logprobs}: the http backend does not read "
                "log-probabilities from the server; use the local backend (a Scorer)"
            )
        body = self._body(request)
        messages, session = request.messages, request.session
        if session is None:
            return self._send(list(messages), body, None, on_token, should_stop)
        if self.server_sessions:
            body["session"] = session
            return self._send(list(messages), body, session, on_token, should_stop)
        with self._locks.hold(session):
            transcript = self.transcripts.get(session, [])
            full = [*transcript, *new_messages(transcript, messages)]
            completion = self._send(full, body, None, on_token, should_stop)
            self.transcripts[session] = [*full, completion.message()]
            total = completion.usage.prompt_tokens + completion.usage.completion_tokens
            self._session_tokens[session] = total
            usage = Usage(completion.usage.prompt_tokens, completion.usage.completion_tokens, total)
            return Completion(
                text=completion.text,
                tool_calls=completion.tool_calls,
                finish_reason=completion.finish_reason,
                usage=usage,
                session=session,
            )

    def _send(
        self,
        messages: list[Message],
        body: dict[str, Any],
        session: str | None,
        on_token: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Completion:
        wire = [_wire_message(m) for m in messages]
        log.debug("chat: %d messages to %s (session %s)", len(wire), self.client.base_url, session)
        if on_token is None and should_stop is None:
            data = self.client.chat(wire, model=self.name, **body)
            return self._completion(data, session)
        return self._stream(wire, body, session, on_token, should_stop)

    def _completion(self, data: Mapping[str, Any], session: str | None) -> Completion:
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = tuple(
            ToolCallOut(
                str(c.get("id") or f"call_{i}"),
                str(c["function"]["name"]),
                _arguments(str(c["function"]["name"]), c["function"].get("arguments")),
            )
            for i, c in enumerate(message.get("tool_calls") or ())
        )
        return Completion(
            text=str(message.get("content") or ""),
            tool_calls=calls,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            usage=_usage(data.get("usage"), session),
            session=session,
        )

    def _stream(
        self,
        wire: list[Message],
        body: dict[str, Any],
        session: str | None,
        on_token: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Completion:
        text: list[str] = []
        calls = _ToolCallAssembler()
        finish = "stop"
        usage: Any = None
        events = self.client.stream_chat(
            wire, model=self.name, stream_options={"include_usage": True}, **body
        )
        try:
            for chunk in events:
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    piece = delta.get("content")
                    if piece:
                        text.append(piece)
                        if on_token is not None:
                            on_token(piece)
                    if delta.get("tool_calls"):
                        calls.add(delta["tool_calls"])
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
                if should_stop is not None and should_stop():
                    finish = "cancelled"
                    break
        finally:
            events.close()  # closing the stream early tells the server to stop
        tool_calls = calls.result()
        return Completion(
            text="".join(text) if not tool_calls else "",
            tool_calls=tool_calls,
            finish_reason="tool_calls" if tool_calls and finish != "cancelled" else finish,
            usage=_usage(usage, session),
            session=session,
        )

    # ------------------------------------------------------------------ sessions
    def session_info(self, session: str) -> dict[str, Any] | None:
        if self.server_sessions:
            return self.client.session(session)
        if session not in self.transcripts:
            return None
        return {
            "id": session,
            "messages": len(self.transcripts[session]),
            "tokens": self._session_tokens.get(session, 0),
            "kept": "client",
        }

    def list_sessions(self) -> list[str]:
        if self.server_sessions:
            return [str(s["id"]) for s in self.client.sessions()]
        return sorted(self.transcripts)

    def delete_session(self, session: str) -> bool:
        if self.server_sessions:
            return self.client.delete_session(session)
        self._session_tokens.pop(session, None)
        return self.transcripts.pop(session, None) is not None


def _usage(raw: Any, session: str | None) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage(0, 0)
    return Usage(
        int(raw.get("prompt_tokens") or 0),
        int(raw.get("completion_tokens") or 0),
        int(raw.get("session_tokens") or 0) if session else 0,
    )
