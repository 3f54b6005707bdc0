"""The tools section of a system prompt, and tool results as the model reads them back.

Owns :func:`render_tools_prompt` (the permitted tools as one JSON object per line inside
``<tools></tools>``, with the call format the action grammar enforces) and
:func:`format_tool_result` (a ``<tool_response>`` block; :func:`format_tool_result_body` for a
template that writes the block itself). Same Hermes / Qwen / SmolLM format as
:mod:`tools._grammar` and :mod:`tools._action`. Never talks to a model and never writes the
rest of the system prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agentcore.tools._call_format import HERMES, CallFormat
from agentcore.tools._grammar import ToolChoice, resolve_action_space
from agentcore.tools._registry import ToolRegistry
from agentcore.tools._tool import Tool

__all__ = ["format_tool_result", "format_tool_result_body", "render_tools_prompt"]


def render_tools_prompt(
    tools: ToolRegistry | Iterable[Tool],
    tool_choice: ToolChoice = "auto",
    *,
    permitted: Iterable[str] | None = None,
    require_tool: bool = False,
    allow_text: bool = True,
    call_format: CallFormat = HERMES,
) -> str:
    """The system-prompt text that lists the callable tools and how to call them (in
    ``call_format``, the markup the grammar will enforce).

    Takes the same arguments as :func:`~tools.build_action_grammar` and lists exactly the
    tools that grammar allows; returns ``""`` when no tool may be called. Descriptions are
    untrusted text (a client's, an MCP server's): each tool's JSON has its tags escaped, so
    none can close ``<tools>`` or open a ``<tool_call>``.
    """
    space = resolve_action_space(
        tools, tool_choice, permitted=permitted, require_tool=require_tool, allow_text=allow_text
    )
    if not space.tools:
        return ""
    lines = [
        "You can call tools. Each tool is described by one JSON object inside <tools></tools>:",
        "<tools>",
        *(_json_inside_tags(t.openai_tool()) for t in space.tools),
        "</tools>",
        "",
        "To call a tool, answer with only this, the arguments matching the tool's parameters:",
        call_format.group_open
        + call_format.call_open
        + f'{{"name": "<tool name>", "{call_format.arguments_key}": {{<arguments as a JSON object>}}}}'
        + call_format.call_close
        + call_format.group_close,
    ]
    if len(space.tools) == 1 and not space.text:
        lines.append(f"Call the tool {space.tools[0].name!r} now.")
    elif not space.text:
        lines.append("Answer with exactly one tool call.")
    else:
        lines.append("If no tool is needed, answer in plain text.")
    return "\n".join(lines)


def _json_inside_tags(value: Any) -> str:
    """``value`` as one line of JSON that cannot end or start a block of the prompt format.

    ``</`` is written ``<\\/``, and ``<tool`` and ``<|`` (``<tool_call>``, ``<tools>``, a
    chat-template token such as ``<|im_start|>``) start with ``\\u003c``: the same strings once
    the JSON is read, but no tag or special token in the text the model sees.
    """
    return _tags_escaped(json.dumps(value, ensure_ascii=False).replace("</", "<\\/"))


def format_tool_result(name: str, content: str) -> str:
    """A tool result as the model reads it: a ``<tool_response>`` block around a JSON object.

    The content is JSON-encoded with its tags escaped (see :func:`_json_inside_tags`), so an
    untrusted result cannot close the block early and pose as the assistant.
    """
    body = _json_inside_tags({"name": name, "content": content})
    return f"<tool_response>\n{body}\n</tool_response>"


def format_tool_result_body(name: str, content: str) -> str:
    """A tool result for a chat template that writes the ``<tool_response>`` tags itself
    (Qwen2.5's): the content as it is, as the template shows it (``name`` is not shown: such
    templates give results in the order of the calls), with its tags escaped as
    :func:`_json_inside_tags` escapes them so that it cannot close the block early.

    Not the JSON object of :func:`format_tool_result`: a ``{"name": ..., "content": ...}``
    record is not what the template writes, and Qwen2.5-Coder-0.5B copied it back as its
    answer (``bench/after_result.py``)."""
    return _tags_escaped(content)


def _tags_escaped(text: str) -> str:
    """``text`` with the tool tags (``<tool_response>``, ``</tool_call>``, ...) and chat-template
    tokens (``<|im_start|>``) written so that none is a tag or special token."""
    text = text.replace("</tool", "<\\/tool")
    return text.replace("<tool", "\\u003ctool").replace("<|", "\\u003c|")
