"""OpenAI-shaped response bodies and server-sent-event chunks.

Owns the JSON of ``chat.completion``, ``chat.completion.chunk`` and ``text_completion`` objects,
the SSE framing (``data: {...}`` lines ending with ``data: [DONE]``), and
:class:`ChatStreamShaper`, which turns the raw text a tool-enabled model streams into OpenAI
deltas: plain text streams as ``content``, a ``<tool_call>`` answer streams as ``tool_calls``
deltas (``index``, ``id``, ``function.name``, then ``function.arguments``) and never leaks as
text. Never runs a model and never reads requests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from agentcore.backends._protocol import Completion
from agentcore.server._completions import TextCompletion
from agentcore.server._errors import json_bytes

__all__ = [
    "SSE_DONE",
    "ChatStreamShaper",
    "Ids",
    "chat_chunk",
    "chat_logprobs_json",
    "chat_response",
    "completion_chunk",
    "completion_response",
    "finish_reason",
    "sse",
    "tool_calls_json",
    "usage_json",
]

SSE_DONE = b"data: [DONE]\n\n"
_TOOL_OPEN = "<tool_call>"


def sse(obj: Any) -> bytes:
    return b"data: " + json_bytes(obj) + b"\n\n"


class Ids:
    """The id, creation time and model name every object of one response shares."""

    def __init__(self, prefix: str, model: str) -> None:
        self.id = f"{prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model


def usage_json(prompt: int, completion: int, session_tokens: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if session_tokens is not None:
        out["session_tokens"] = session_tokens
    return out


def tool_calls_json(c: Completion) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": json.dumps(call.arguments, ensure_ascii=False),
            },
        }
        for call in c.tool_calls
    ]


def _token_json(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs_json(
    c: Completion, decode: Callable[..., str], stop_ids: Collection[int]
) -> dict[str, Any]:
    """OpenAI's ``choices[0].logprobs`` of a chat reply: one entry per token of ``content``
    (the end-of-turn token and tokens past a stop string left out; none for a tool call).
    ``decode(ids, skip_special=...)`` is the model's detokenizer."""
    if c.tool_calls:
        return {"content": None, "refusal": None}
    content: list[dict[str, Any]] = []
    ids: Sequence[int] = c.token_ids
    for k, (token, logprob) in enumerate(zip(ids, c.logprobs, strict=False)):
        if len(decode(ids[:k], skip_special=True)) >= len(c.text):
            break  # the content is complete: the rest is a stop string or markup
        if token in stop_ids:
            continue
        entry = _token_json(decode([token]), logprob)
        tops = c.top_logprobs[k] if k < len(c.top_logprobs) else ()
        entry["top_logprobs"] = [_token_json(decode([t]), v) for t, v in tops]
        content.append(entry)
    return {"content": content, "refusal": None}


def finish_reason(c: Completion, legacy: bool = False) -> str:
    """``c.finish_reason``, as a client that declared legacy ``functions`` expects it."""
    return "function_call" if legacy and c.tool_calls else c.finish_reason


def chat_response(
    c: Completion, ids: Ids, logprobs: dict[str, Any] | None = None, *, legacy: bool = False
) -> dict[str, Any]:
    """The ``chat.completion`` object; ``legacy``: a call as ``function_call`` (the request
    declared ``functions``), not ``tool_calls``."""
    message: dict[str, Any] = {"role": "assistant", "content": c.content}
    if c.tool_calls and legacy:
        message["function_call"] = tool_calls_json(c)[0]["function"]
    elif c.tool_calls:
        message["tool_calls"] = tool_calls_json(c)
    out: dict[str, Any] = {
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish_reason(c, legacy),
            }
        ],
        "usage": usage_json(
            c.usage.prompt_tokens,
            c.usage.completion_tokens,
            c.usage.session_tokens if c.session else None,
        ),
    }
    if c.session:
        out["session"] = c.session
    return out


def chat_chunk(
    ids: Ids,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    session: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
    out: dict[str, Any] = {
        "id": ids.id,
        "object": "chat.completion.chunk",
        "created": ids.created,
        "model": ids.model,
        "choices": [] if delta is None else [choice],
    }
    if usage is not None:
        out["usage"] = usage
    if session is not None:
        out["session"] = session
    return out


class ChatStreamShaper:
    """Raw streamed text -> OpenAI chat deltas, keeping tool calls out of ``content``.

    ``tools``: whether the answer may be a tool call; ``forced``: whether it must be one
    (``tool_choice`` ``required`` or a named function); ``legacy``: a call streams as
    ``function_call`` deltas (the request declared legacy ``functions``).
    """

    def __init__(self, tools: bool, forced: bool, legacy: bool = False) -> None:
        self.tools = tools
        self.forced = forced
        self.legacy = legacy
        self.mode = "call" if forced else ("undecided" if tools else "text")
        self._held = ""
        self.emitted = ""

    def feed(self, text: str) -> list[dict[str, Any]]:
        """Deltas for one streamed piece (empty while a tool call may be starting)."""
        if self.mode == "call":
            return []
        if self.mode == "undecided":
            self._held += text
            probe = self._held.lstrip()
            if _TOOL_OPEN.startswith(probe):
                return []  # could still become "<tool_call>"
            if probe.startswith(_TOOL_OPEN):
                self.mode = "call"
                return []
            self.mode = "text"
            text, self._held = self._held, ""
        self.emitted += text
        return [{"content": text}]

    def finish(self, c: Completion) -> list[dict[str, Any]]:
        """Deltas that complete the message once the backend returned ``c``."""
        out: list[dict[str, Any]] = []
        if c.tool_calls and self.legacy:
            fn = tool_calls_json(c)[0]["function"]
            out.append({"function_call": {"name": fn["name"], "arguments": ""}})
            out.append({"function_call": {"arguments": fn["arguments"]}})
        elif c.tool_calls:
            for i, call in enumerate(tool_calls_json(c)):
                fn = call["function"]
                out.append(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                out.append(
                    {"tool_calls": [{"index": i, "function": {"arguments": fn["arguments"]}}]}
                )
        else:
            text = _without_call_markup(c.text) if self.tools else c.text
            if text.startswith(self.emitted) and len(text) > len(self.emitted):
                rest = text[len(self.emitted) :]
                self.emitted += rest
                out.append({"content": rest})
        return out


def _without_call_markup(text: str) -> str:
    """The text before a tool call that was cut off (by ``max_tokens``) before it could be
    read: its ``<tool_call>`` markup, or the start of it, is never shown as content."""
    cut = text.find(_TOOL_OPEN)
    if cut >= 0:
        return text[:cut]
    return "" if _TOOL_OPEN.startswith(text.lstrip()) else text


def _logprobs_json(tc: TextCompletion, echo: bool) -> dict[str, Any] | None:
    if tc.logprobs is None:
        return None
    tokens: list[str] = []
    values: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    offsets: list[int] = []
    at = 0
    for item in tc.logprobs:
        tokens.append(item.token)
        values.append(item.logprob)
        tops.append(item.top)
        offsets.append(at)
        at += len(item.token)
    has_top = any(t is not None for t in tops)
    return {
        "tokens": tokens,
        "token_logprobs": values,
        "top_logprobs": tops if has_top else None,
        "text_offset": offsets,
    }


def completion_response(
    tc: TextCompletion, ids: Ids, *, echo: bool, session: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ids.id,
        "object": "text_completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [
            {
                "index": 0,
                "text": (tc.prompt_text if echo else "") + tc.text,
                "logprobs": _logprobs_json(tc, echo),
                "finish_reason": tc.finish_reason,
            }
        ],
        "usage": usage_json(
            tc.prompt_tokens, tc.completion_tokens, tc.session_tokens if session else None
        ),
    }
    if session:
        out["session"] = session
    return out


def completion_chunk(
    ids: Ids,
    text: str | None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ids.id,
        "object": "text_completion",
        "created": ids.created,
        "model": ids.model,
        "choices": []
        if text is None
        else [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out
