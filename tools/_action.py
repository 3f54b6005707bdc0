"""Read an assistant answer back into an action: a text reply or a tool call.

Owns :class:`TextReply`, :class:`ToolCall`, :func:`parse_action` (the inverse of the action
grammar in :mod:`tools._grammar`) and :func:`format_tool_call` (the canonical text of a call,
for prompts and history). Parsing is lenient where models commonly drift (a missing closing
tag, ``"parameters"`` instead of ``"arguments"``, arguments as a JSON string) and precise when
it fails. Never checks the arguments against a schema: that is :meth:`ToolRegistry.validate`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from agentcore.tools._call_format import HERMES, CallFormat
from agentcore.tools._errors import ToolCallParseError

__all__ = ["Action", "TextReply", "ToolCall", "format_tool_call", "parse_action", "parse_calls"]


@dataclasses.dataclass(frozen=True)
class TextReply:
    """The model answered in words."""

    text: str


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """The model asked to run ``name`` with ``arguments``; ``text`` is any prose it wrote
    before the call (always empty under the action grammar)."""

    name: str
    arguments: dict[str, Any]
    text: str = ""


Action = TextReply | ToolCall


def format_tool_call(name: str, arguments: dict[str, Any], call_format: CallFormat = HERMES) -> str:
    """The canonical text of a call, exactly as the action grammar produces it (given
    arguments whose keys are in schema order)."""
    return call_format.render([(name, arguments)])


def parse_action(text: str, call_format: CallFormat = HERMES) -> Action:
    """Turn an answer into :class:`TextReply` or :class:`ToolCall` (its first call).

    Text that does not start a call of ``call_format`` (for the default, text without
    ``<tool_call>``) is a reply. Otherwise the JSON value of the call is read (up to its own
    end, whatever follows): an object with a string ``"name"`` and an object ``"arguments"``
    (or ``"parameters"``). Raises :class:`ToolCallParseError` (whose message tells the model
    the expected format) when the call cannot be read.
    """
    calls = parse_calls(text, call_format)
    return calls[0] if calls else TextReply(text)


def parse_calls(text: str, call_format: CallFormat = HERMES) -> list[ToolCall]:
    """Every call in an answer, in order (``[]`` for a reply in words); see :func:`parse_action`."""
    start = call_format.starts_call(text)
    if start < 0:
        return []
    before = text[:start].strip()
    rest = text[start:]
    alternate = call_format.alternate(rest)
    if alternate is not None:  # one call, bare or fenced, as the whole answer
        body = rest[len(alternate[0]) :]
        payload, _end = _read_json(body, call_format)
        return [_to_call(payload, body, before)]
    opener = call_format.group_open or call_format.call_open.strip()
    if opener and rest.startswith(opener):
        rest = rest[len(opener) :]
    elif rest.startswith(call_format.trigger) and call_format.trigger_anywhere:
        rest = rest[len(call_format.trigger) :]
    calls: list[ToolCall] = []
    while True:
        body = rest.lstrip()
        payload, end = _read_json(body, call_format)
        calls.append(_to_call(payload, body, before if not calls else ""))
        rest = body[end:].lstrip()
        close = call_format.call_close.strip()
        if close and rest.startswith(close):
            rest = rest[len(close) :].lstrip()
        if not call_format.parallel:
            return calls
        sep, again = call_format.separator.strip(), call_format.call_open.strip()
        if sep and rest.startswith(sep):
            rest = rest[len(sep) :].lstrip()
        elif not (again and rest.startswith(again)):
            return calls
        if again and rest.startswith(again):
            rest = rest[len(again) :]
        if not rest.strip():
            return calls


def _read_json(body: str, call_format: CallFormat) -> tuple[Any, int]:
    try:
        # raw_decode reads exactly one JSON value, so a closing tag inside an argument
        # string does not end the call early; whatever follows the value is ignored.
        return json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        close = call_format.call_close.strip() or call_format.group_close
        shown = body.split(close)[0].strip() if close else body.strip()
        raise ToolCallParseError(
            f"the call is not valid JSON ({exc.msg} at {exc.pos})", shown
        ) from None


def _to_call(payload: Any, body: str, before: str) -> ToolCall:
    if not isinstance(payload, dict):
        raise ToolCallParseError("the call must be a JSON object", body)
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallParseError('"name" must be a non-empty string', body)
    arguments: Any = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI wire form: arguments as JSON text
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolCallParseError(
                f'"arguments" is a string that is not valid JSON ({exc.msg})', body
            ) from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolCallParseError('"arguments" must be a JSON object', body)
    return ToolCall(name=name, arguments=arguments, text=before)
