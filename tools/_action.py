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

from agentcore.tools._errors import ToolCallParseError
from agentcore.tools._grammar import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

__all__ = ["Action", "TextReply", "ToolCall", "format_tool_call", "parse_action"]


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


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The canonical text of a call, exactly as the action grammar produces it (given
    arguments whose keys are in schema order)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}"


def parse_action(text: str) -> Action:
    """Turn an answer into :class:`TextReply` or :class:`ToolCall`.

    Text without ``<tool_call>`` is a reply. Otherwise the JSON value after the first
    ``<tool_call>`` is read (up to its own end, whatever follows): an object with a string
    ``"name"`` and an object ``"arguments"``. Raises
    :class:`ToolCallParseError` (whose message tells the model the expected format) when the
    block cannot be read.
    """
    start = text.find(TOOL_CALL_OPEN)
    if start < 0:
        return TextReply(text)
    before = text[:start].strip()
    body = text[start + len(TOOL_CALL_OPEN) :].lstrip()
    try:
        # raw_decode reads exactly one JSON value, so a "</tool_call>" inside an argument
        # string does not end the call early; whatever follows the value is ignored.
        payload, _end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        shown = body.split(TOOL_CALL_CLOSE)[0].strip()
        raise ToolCallParseError(
            f"the call is not valid JSON ({exc.msg} at {exc.pos})", shown
        ) from None
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
