"""The outcome of one tool call, as the agent and the model see it.

Owns :class:`ToolResult` (success or failure, the text handed to the model, the raw value,
timing) and the rendering of any Python value to that text, cut to the tool's size limit.
Never runs tools and never decides what the agent does with a failure.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pydantic_core
from pydantic import BaseModel

from agentcore.tools._errors import ErrorKind, ToolError

__all__ = ["ToolOutput", "ToolResult", "render_value", "truncate_text"]


@dataclasses.dataclass(frozen=True)
class ToolOutput:
    """What a tool may return to choose the text the model reads (``text``) separately from
    the value programs get (``value``); imported MCP tools return one."""

    value: Any
    text: str


def render_value(value: Any) -> str:
    """The text form of a tool's return value: strings as they are, everything else as JSON."""
    if isinstance(value, ToolOutput):
        return value.text
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    jsonable = pydantic_core.to_jsonable_python(value, fallback=repr)
    return json.dumps(jsonable, ensure_ascii=False)


def truncate_text(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` characters, saying how much was dropped."""
    if len(text) <= limit:
        return text, False
    marker = "\n[... truncated {} more characters]"
    keep = max(0, limit - len(marker.format(len(text))))
    return text[:keep] + marker.format(len(text) - keep), True


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """One finished call.

    ``content`` is what goes back to the model: the rendered value when ``ok``, the error
    message (which names what to fix) when not. It is an untrusted observation: the tool may
    have read it from anywhere. ``value`` is the raw return value (``None`` on failure).
    """

    tool: str
    arguments: dict[str, Any]
    ok: bool
    content: str
    value: Any = None
    error: ToolError | None = None
    error_kind: ErrorKind | None = None
    truncated: bool = False
    elapsed_s: float = 0.0

    @classmethod
    def success(
        cls,
        tool: str,
        arguments: dict[str, Any],
        value: Any,
        *,
        max_chars: int,
        elapsed_s: float,
    ) -> ToolResult:
        text, cut = truncate_text(render_value(value), max_chars)
        if isinstance(value, ToolOutput):
            value = value.value
        return cls(tool, arguments, True, text, value, truncated=cut, elapsed_s=elapsed_s)

    @classmethod
    def failure(
        cls,
        tool: str,
        arguments: dict[str, Any],
        error: ToolError,
        *,
        max_chars: int,
        elapsed_s: float = 0.0,
    ) -> ToolResult:
        text, cut = truncate_text(f"Error: {error}", max_chars)
        return cls(tool, arguments, False, text, None, error, error.kind, cut, elapsed_s)
