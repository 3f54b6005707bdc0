"""OpenAI's Responses API (``/v1/responses``) on the chat path, with chains on persistent sessions.

Owns the translation of a Responses request into the internal chat job
(:meth:`ModelService.chat_job`, the one path every chat request takes) and of its result into a
Response object (``message`` and ``function_call`` output items, ``usage``) or the Responses
event stream (``response.created`` ... ``response.completed``, each with its
``sequence_number``). The routes (``POST /v1/responses``, ``GET`` and ``DELETE
/v1/responses/{id}``) are ``_routes_responses``'s.

A response chain is a persistent session: a stored response (``store``, true by default) that
opens a chain creates a session named by its id; ``previous_response_id`` continues the session
of that response and appends only the new ``input`` (plus the chat template's turn markup), so a
turn costs its new tokens, never the chain's history. ``store: false`` runs the request on no
session (the input is the whole conversation) and keeps nothing. The ids live in a
:class:`~agentcore.server._response_store.ResponseStore` next to the sessions, so they survive a
restart exactly when the sessions do.

A chain continues only from its latest response: each record holds the session's size right
after it, checked under the session's lock before anything is appended, so a request naming an
older response of the chain (or one whose session was appended to through
``/v1/chat/completions``) gets **409** ``response_not_latest`` instead of being appended to a
conversation that has moved on; two requests racing from the same response are told apart the
same way (the second gets the 409). Forking is not offered: it would re-read the whole
conversation, which a session exists to avoid. ``instructions`` become the chain's system
message: a continuation may repeat them or leave them out, and different ones get 409
``instructions_changed`` (the session cannot take its system message back).

Never touches the model or the session files itself: the service and the backend do.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agentcore.backends._continuation import SessionConflictError
from agentcore.backends._protocol import Completion
from agentcore.server._errors import ErrorReply, describe_validation_errors
from agentcore.server._jobs import Emit, ShouldStop
from agentcore.server._response_store import ResponseStore, StoredResponse
from agentcore.server._responses import ChatStreamShaper, sse
from agentcore.server._responses_schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    ResponsesBody,
)
from agentcore.server._schemas import ChatCompletionBody
from agentcore.server._service import ModelService, error_reply_for

__all__ = [
    "Answer",
    "ResponseEvents",
    "ResponseShape",
    "chat_request",
    "output_items",
    "responses_job",
]

_MESSAGE_INDEX = re.compile(r"messages\[(\d+)\]")


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a Responses job returns: the chat completion and the Response object made of it."""

    completion: Completion
    response: dict[str, Any]


# ---------------------------------------------------------------------- request -> chat job
def chat_request(
    body: ResponsesBody, session: str | None, previous: StoredResponse | None
) -> tuple[ChatCompletionBody, list[str]]:
    """The chat request that answers ``body`` on ``session``, and for each of its messages the
    request field it came from (``instructions``, ``input``, ``input[3]``), to name it in errors.

    Continuing a chain (``previous``), the messages are only what ``input`` adds."""
    messages: list[dict[str, Any]] = []
    origins: list[str] = []
    if body.instructions is not None:
        if previous is None:
            messages.append({"role": "system", "content": body.instructions})
            origins.append("instructions")
        elif body.instructions != previous.instructions:
            raise ErrorReply(
                409,
                f"instructions differ from those the chain of response {previous.id!r} opened "
                "with: its session holds them as its system message and cannot take them back. "
                "Repeat them or leave them out to continue the chain, or start a new chain (no "
                "previous_response_id) with the whole conversation as input",
                param="instructions",
                code="instructions_changed",
            )
    for i, item in enumerate(body.items):
        origin = "input" if isinstance(body.input, str) else f"input[{i}]"
        if isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last.get("_calls"):  # consecutive calls: one assistant turn
                last["tool_calls"].append(call)
                continue
            messages.append(
                {"role": "assistant", "content": None, "tool_calls": [call], "_calls": True}
            )
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        else:
            messages.append({"role": item.role, "content": item.text()})
        origins.append(origin)
    for m in messages:
        m.pop("_calls", None)
    fields: dict[str, Any] = {
        "messages": messages,
        "session": session,
        "stream": body.stream,
        "max_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "parallel_tool_calls": body.parallel_tool_calls,
    }
    if body.function_tools:
        fields["tools"] = [
            {
                "type": "function",
                "function": {
                    k: v
                    for k, v in {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                        "strict": t.strict,
                    }.items()
                    if v is not None
                },
            }
            for t in body.function_tools
        ]
    choice = body.tool_choice
    if isinstance(choice, FunctionChoice):
        fields["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        fields["tool_choice"] = choice
    fmt = body.text.format if body.text is not None else None
    if fmt is not None and fmt.type == "json_object":
        fields["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_ or {"type": "object"}}
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        fields["response_format"] = {"type": "json_schema", "json_schema": spec}
    try:
        return ChatCompletionBody.model_validate(fields), origins
    except ValidationError as exc:  # what the Responses schema let through and chat refuses
        message, param = describe_validation_errors(exc.errors())
        raise ErrorReply(
            400, message, param=_input_param(param, origins), code="invalid_request"
        ) from None


def _input_param(param: str | None, origins: list[str]) -> str | None:
    """A chat field path (``messages[2].content``) as the Responses field it came from."""
    if param is None:
        return None
    param = param.replace(".function.", ".").removesuffix(".function")
    match = _MESSAGE_INDEX.match(param)
    if match and int(match.group(1)) < len(origins):
        return origins[int(match.group(1))] + param[match.end() :]
    return param


def _renamed(err: ErrorReply, origins: list[str]) -> ErrorReply:
    """A chat-path refusal in the Responses API's field names."""
    if err.param == "max_tokens":
        return ErrorReply(
            err.status,
            err.message.replace("max_tokens", "max_output_tokens"),
            param="max_output_tokens",
            code=err.code,
            type=err.type,
        )
    message = _MESSAGE_INDEX.sub(
        lambda m: origins[int(m.group(1))] if int(m.group(1)) < len(origins) else m.group(0),
        err.message,
    )
    return ErrorReply(
        err.status, message, param=_input_param(err.param, origins), code=err.code, type=err.type
    )


# ---------------------------------------------------------------------- chat result -> Response
def output_items(c: Completion, message_id: str) -> list[dict[str, Any]]:
    """The ``output`` of a Response: a ``message`` (text), or one ``function_call`` per call."""
    if not c.tool_calls:
        status = "incomplete" if c.finish_reason in ("length", "cancelled") else "completed"
        part = {"type": "output_text", "text": c.content or "", "annotations": [], "logprobs": []}
        return [
            {
                "id": message_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [part],
            }
        ]
    return [
        {
            "id": f"fc_{uuid.uuid4().hex}",
            "type": "function_call",
            "status": "completed",
            "call_id": call.id,
            "name": call.name,
            "arguments": json.dumps(call.arguments, ensure_ascii=False),
        }
        for call in c.tool_calls
    ]


class ResponseShape:
    """The parts of one Response object the request decides (ids, echoed settings)."""

    def __init__(self, body: ResponsesBody, model: str, session: str | None) -> None:
        self.body = body
        self.id = f"resp_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.session = session

    def skeleton(self, status: str) -> dict[str, Any]:
        """The Response object before (or without) an answer."""
        body = self.body
        choice = body.tool_choice
        text_format: dict[str, Any] = {"type": "text"}
        fmt = body.text.format if body.text is not None else None
        if fmt is not None:
            text_format = fmt.model_dump(by_alias=True, exclude_none=True)
        out: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.model,
            "output": [],
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": None,
            "store": body.store,
            "temperature": body.temperature if body.temperature is not None else 0.0,
            "text": {"format": text_format},
            "tool_choice": choice.model_dump()
            if isinstance(choice, FunctionChoice)
            else choice or "auto",
            "tools": [t.wire() for t in body.function_tools],
            "top_p": body.top_p if body.top_p is not None else 1.0,
            "truncation": body.truncation or "disabled",
            "usage": None,
            "user": body.user,
            "metadata": body.metadata or {},
        }
        if self.session is not None:
            out["session"] = self.session  # agentcore extra: the session holding the chain
        return out

    def done(self, c: Completion) -> dict[str, Any]:
        """The Response object of a finished answer."""
        out = self.skeleton("completed")
        if c.finish_reason == "length":
            out["status"] = "incomplete"
            out["incomplete_details"] = {"reason": "max_output_tokens"}
        elif c.finish_reason == "cancelled":
            out["status"] = "cancelled"
        out["output"] = output_items(c, self.message_id)
        u = c.usage
        usage: dict[str, Any] = {
            "input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.total_tokens,
        }
        if c.session:
            usage["session_tokens"] = u.session_tokens  # agentcore extra, as in chat usage
        out["usage"] = usage
        return out


# ---------------------------------------------------------------------- the job
def _state(info: dict[str, Any]) -> dict[str, int]:
    """A session's size, as records compare it (tokens when the backend counts them)."""
    return {k: int(info[k]) for k in ("tokens", "messages") if k in info}


def responses_job(
    service: ModelService,
    store: ResponseStore,
    body: ResponsesBody,
    shape: ResponseShape,
    previous: StoredResponse | None,
) -> Callable[[Emit, ShouldStop], Answer]:
    """The blocking call that answers ``body`` (run under the chain session's lock)."""
    sid = shape.session
    chat, origins = chat_request(body, sid, previous)
    try:
        inner = service.chat_job(chat, create=True)
    except ErrorReply as err:
        raise _renamed(err, origins) from None
    backend = service.backend
    instructions = previous.instructions if previous is not None else body.instructions

    def run(emit: Emit, should_stop: ShouldStop) -> Answer:
        if previous is not None:
            _check_latest(service, previous)
        try:
            c = inner(emit, should_stop)
        except SessionConflictError as exc:
            raise _chain_conflict(exc, origins, previous) from None
        except Exception as exc:
            err = error_reply_for(exc)
            if err is None:
                raise
            raise _renamed(err, origins) from None
        response = shape.done(c)
        if body.store and sid is not None:
            info = backend.session_info(sid) or {}
            store.put(StoredResponse(response, sid, _state(info), instructions))
        return Answer(c, response)

    return run


def _check_latest(service: ModelService, previous: StoredResponse) -> None:
    """Refuse to continue ``previous`` unless its session still ends with it."""
    sid = previous.session
    info = service.backend.session_info(sid)
    if info is None:
        raise ErrorReply(
            404,
            f"response {previous.id!r} continued session {sid!r}, which no longer exists (it "
            "was deleted): start a new chain without previous_response_id, with the whole "
            "conversation as input",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    now = _state(info)
    if now != previous.state:
        unit = "tokens" if "tokens" in now else "messages"
        raise ErrorReply(
            409,
            f"response {previous.id!r} is not the latest of its chain: its session {sid!r} has "
            f"moved on since ({now.get(unit)} {unit} now, {previous.state.get(unit)} right "
            "after that response), and continuing it would append to a conversation that no "
            "longer ends with it. Continue from the chain's latest response, or start a new "
            "chain (no previous_response_id) with the conversation you mean as input",
            param="previous_response_id",
            code="response_not_latest",
        )


def _chain_conflict(
    exc: SessionConflictError, origins: list[str], previous: StoredResponse | None
) -> ErrorReply:
    origin = origins[exc.index] if exc.index < len(origins) else "input"
    of = f"response {previous.id!r}" if previous is not None else "this chain"
    return ErrorReply(
        409,
        f"{origin} does not continue {of}: with previous_response_id, input carries only what "
        "is new (user messages, and function_call_output items for the chain's own calls), and "
        f"the chain's session did not produce {origin}. To send a whole conversation, leave "
        "out previous_response_id",
        param=origin,
        code="chain_conflict",
    )


# ---------------------------------------------------------------------- the event stream
class ResponseEvents:
    """One response's server-sent events, numbered by ``sequence_number``.

    Text streams as ``response.output_text.delta`` events of one ``message`` item; a function
    call (which a tool-enabled model's stream holds back until it is read whole) arrives as its
    ``function_call`` item with the arguments in one ``response.function_call_arguments.delta``.
    """

    def __init__(self, shape: ResponseShape, shaper: ChatStreamShaper) -> None:
        self.shape = shape
        self.shaper = shaper
        self.seq = 0
        self.opened = False

    def event(self, kind: str, **fields: Any) -> bytes:
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\n".encode() + sse(body)

    def begin(self) -> list[bytes]:
        return [
            self.event("response.created", response=self.shape.skeleton("in_progress")),
            self.event("response.in_progress", response=self.shape.skeleton("in_progress")),
        ]

    def feed(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        for delta in self.shaper.feed(text):
            out += self._text(delta["content"])
        return out

    def _open_message(self) -> list[bytes]:
        self.opened = True
        mid = self.shape.message_id
        item = {
            "id": mid,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            self.event("response.output_item.added", output_index=0, item=item),
            self.event(
                "response.content_part.added",
                item_id=mid,
                output_index=0,
                content_index=0,
                part=part,
            ),
        ]

    def _text(self, piece: str) -> list[bytes]:
        out = [] if self.opened else self._open_message()
        out.append(
            self.event(
                "response.output_text.delta",
                item_id=self.shape.message_id,
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        )
        return out

    def finish(self, answer: Answer) -> list[bytes]:
        out: list[bytes] = []
        for delta in self.shaper.finish(answer.completion):
            if "content" in delta:
                out += self._text(delta["content"])
        response = answer.response
        for index, item in enumerate(response["output"]):
            if item["type"] == "message":
                out += self._message_done(index, item)
            else:
                out += self._call(index, item)
        final = {
            "completed": "response.completed",
            "incomplete": "response.incomplete",
        }.get(response["status"], "response.failed")
        out.append(self.event(final, response=response))
        return out

    def _message_done(self, index: int, item: dict[str, Any]) -> list[bytes]:
        out = [] if self.opened else self._open_message()
        part = item["content"][0]
        common = {"item_id": item["id"], "output_index": index, "content_index": 0}
        out.append(
            self.event("response.output_text.done", text=part["text"], logprobs=[], **common)
        )
        out.append(self.event("response.content_part.done", part=part, **common))
        out.append(self.event("response.output_item.done", output_index=index, item=item))
        return out

    def _call(self, index: int, item: dict[str, Any]) -> list[bytes]:
        started = {**item, "arguments": "", "status": "in_progress"}
        common = {"item_id": item["id"], "output_index": index}
        return [
            self.event("response.output_item.added", output_index=index, item=started),
            self.event("response.function_call_arguments.delta", delta=item["arguments"], **common),
            self.event(
                "response.function_call_arguments.done",
                name=item["name"],
                arguments=item["arguments"],
                **common,
            ),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def failed(self, error: dict[str, Any]) -> list[bytes]:
        """An ``error`` event, then ``response.failed`` (the job failed after the stream began)."""
        detail = error["error"]
        response = self.shape.skeleton("failed")
        response["error"] = {
            "code": detail.get("code") or "server_error",
            "message": detail["message"],
        }
        return [
            self.event(
                "error",
                code=detail.get("code"),
                message=detail["message"],
                param=detail.get("param"),
            ),
            self.event("response.failed", response=response),
        ]
