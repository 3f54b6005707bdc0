"""The tools section of a system prompt, and tool results as the model reads them back.

Owns :func:`render_tools_prompt` (the permitted tools as one JSON object per line inside
``<tools></tools>``, with the call format the action grammar enforces) and
:func:`format_tool_result` (a ``<tool_response>`` block). Same Hermes / Qwen / SmolLM format
as :mod:`tools._grammar` and :mod:`tools._action`. Never talks to a model and never writes the
rest of the system prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tools._grammar import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolChoice, resolve_action_space
from tools._registry import ToolRegistry
from tools._tool import Tool

__all__ = ["format_tool_result", "render_tools_prompt"]


def render_tools_prompt(
    tools: ToolRegistry | Iterable[Tool],
    tool_choice: ToolChoice = "auto",
    *,
    permitted: Iterable[str] | None = None,
    require_tool: bool = False,
    allow_text: bool = True,
) -> str:
    """The system-prompt text that lists the callable tools and how to call them.

    Takes the same arguments as :func:`~tools.build_action_grammar` and lists exactly the
    tools that grammar allows; returns ``""`` when no tool may be called.
    """
    space = resolve_action_space(
        tools, tool_choice, permitted=permitted, require_tool=require_tool, allow_text=allow_text
    )
    if not space.tools:
        return ""
    lines = [
        "You can call tools. Each tool is described by one JSON object inside <tools></tools>:",
        "<tools>",
        *(json.dumps(t.openai_tool(), ensure_ascii=False) for t in space.tools),
        "</tools>",
        "",
        "To call a tool, answer with only this, the arguments matching the tool's parameters:",
        TOOL_CALL_OPEN,
        '{"name": "<tool name>", "arguments": {<arguments as a JSON object>}}',
        TOOL_CALL_CLOSE,
    ]
    if len(space.tools) == 1 and not space.text:
        lines.append(f"Call the tool {space.tools[0].name!r} now.")
    elif not space.text:
        lines.append("Answer with exactly one tool call.")
    else:
        lines.append("If no tool is needed, answer in plain text.")
    return "\n".join(lines)


def format_tool_result(name: str, content: str) -> str:
    """A tool result as the model reads it: a ``<tool_response>`` block around a JSON object.

    The content is JSON-encoded and ``</`` is written ``<\\/`` (the same string in JSON), so
    an untrusted result cannot close the block early and pose as the assistant.
    """
    body = json.dumps({"name": name, "content": content}, ensure_ascii=False)
    body = body.replace("</", "<\\/")
    return f"<tool_response>\n{body}\n</tool_response>"
