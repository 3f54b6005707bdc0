"""How tools are shown to one model and how its calls and results are written in its history.

Owns :class:`ToolDialect` and :func:`tool_dialect`: when a model's chat template knows tools
(Qwen2.5's does), the tools section of the system prompt is the template's own text, calls are
decoded in the template's call format, and past calls and tool results are handed to the
template as structured messages, so the model sees exactly what it was trained on. A template
without tools (SmolLM2's) gets the project's prompt (:func:`agentcore.tools.render_tools_prompt`)
and the Hermes format. Never decodes: the grammar comes from :mod:`agentcore.tools`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from agentcore.core.codec import Codec
from agentcore.tools import HERMES, CallFormat, detect_call_format

__all__ = ["ToolDialect", "tool_dialect"]

_MARK = "\x00agentcore-system\x00"


@dataclasses.dataclass(frozen=True)
class ToolDialect:
    """The tool conventions of one model: its call format and, when its template renders
    tools, how (``native``)."""

    call_format: CallFormat
    native: bool
    codec: Codec | None = None
    default_system: str = ""  # the template's own system line when a chat has none
    # the call markup the tokenizer holds as single special tokens (Qwen: <tool_call> 151657)
    marker_tokens: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def tools_section(self, tools: Sequence[Mapping[str, Any]]) -> str | None:
        """The text the template adds to a system message for ``tools``, or None when the
        template puts tools elsewhere (then the project's prompt is used)."""
        if not self.native or self.codec is None:
            return None
        plain = self.codec.render_chat([{"role": "system", "content": _MARK}], False)
        with_tools = self.codec.render_chat(
            [{"role": "system", "content": _MARK}], False, tools=[dict(t) for t in tools]
        )
        prefix, _, suffix = plain.partition(_MARK)
        if not (with_tools.startswith(prefix + _MARK) and with_tools.endswith(suffix)):
            return None
        added = with_tools[len(prefix) + len(_MARK) : len(with_tools) - len(suffix)]
        return added.lstrip("\n") or None


def tool_dialect(codec: Codec) -> ToolDialect:
    """The dialect of the model behind ``codec`` (read once from its chat template)."""
    tokenizer = codec.hf
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    found = detect_call_format(template if isinstance(template, str) else None)
    fmt = found or HERMES
    markers = _marker_tokens(tokenizer, fmt)
    if found is None:
        return ToolDialect(HERMES, native=False, marker_tokens=markers)
    probe = ToolDialect(found, native=True, codec=codec, marker_tokens=markers)
    if probe.tools_section([_PROBE_TOOL]) is None:  # tools go elsewhere: our prompt, its format
        return ToolDialect(found, native=False, marker_tokens=markers)
    return dataclasses.replace(probe, default_system=_default_system(codec))


def _marker_tokens(tokenizer: Any, fmt: CallFormat) -> dict[str, int]:
    """Which of the format's markers are one special token of ``tokenizer``."""
    if tokenizer is None or not hasattr(tokenizer, "get_added_vocab"):
        return {}
    added = tokenizer.get_added_vocab()
    candidates = {fmt.call_open.strip(), fmt.call_close.strip(), fmt.group_open.rstrip("[")}
    return {m: int(added[m]) for m in candidates if m and m in added}


_PROBE_TOOL = {
    "type": "function",
    "function": {"name": "probe", "description": "", "parameters": {"type": "object"}},
}


def _default_system(codec: Codec) -> str:
    """The system text the template writes when a conversation has none ("" if none)."""
    plain = codec.render_chat([{"role": "system", "content": _MARK}], False)
    prefix, _, suffix = plain.partition(_MARK)
    user_only = codec.render_chat([{"role": "user", "content": _MARK}], False)
    head = user_only.partition(_MARK)[0]
    if prefix and head.startswith(prefix) and suffix in head[len(prefix) :]:
        return head[len(prefix) :].partition(suffix)[0]
    return ""
