"""How a model family writes tool calls: the markup around the JSON, and which key holds the
arguments.

Owns :class:`CallFormat` and the three formats open chat templates use:

- :data:`HERMES` (Qwen2/2.5/3, Hermes, SmolLM3; also this project's own prompt for models
  whose template knows no tools): ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``,
  one block per call;
- :data:`MISTRAL`: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]``;
- :data:`LLAMA3` (Llama 3.1/3.2 JSON tool calling): a bare ``{"name": ..., "parameters": {...}}``.

:func:`detect_call_format` reads a chat template's source and names the format it was
trained on (``None`` when the template has no tools). Never builds grammars or parses text
itself: :mod:`agentcore.tools._grammar` and :mod:`agentcore.tools._action` use these shapes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

__all__ = ["HERMES", "LLAMA3", "MISTRAL", "CallFormat", "detect_call_format"]

_NAME_FIRST = re.compile(r'\{\s*"name"')


@dataclasses.dataclass(frozen=True)
class CallFormat:
    """The text shape of one answer that calls tools.

    A single call is ``call_open + {"name": N, arguments_key: {...}} + call_close``; an answer
    with calls is ``group_open + call (separator call)* + group_close``. ``trigger`` is the
    text that starts a call (a reply in words never contains it; for :data:`LLAMA3` a reply
    only never *starts* with it, ``trigger_anywhere=False``).
    """

    name: str
    call_open: str
    call_close: str
    group_open: str
    group_close: str
    separator: str
    arguments_key: str
    trigger: str
    trigger_anywhere: bool = True
    parallel: bool = True  # whether the family's format can hold several calls in one answer
    # other (open, close) wrappings of ONE call at the very start of an answer that models of
    # this family write when they mean a call: Qwen2.5 answers a tool request with a bare or a
    # fenced JSON object far more often than with its <tool_call> token (see docs/benchmarks)
    alternates: tuple[tuple[str, str], ...] = ()

    def call_head(self, name: str) -> str:
        """The text of a call up to its arguments' JSON (what the grammar fixes per tool)."""
        return f"{self.call_open}{{{json.dumps('name')}: {json.dumps(name, ensure_ascii=False)}, {json.dumps(self.arguments_key)}: "

    @property
    def call_tail(self) -> str:
        return "}" + self.call_close

    def render(self, calls: list[tuple[str, dict[str, Any]]]) -> str:
        """The canonical text of an answer making ``calls`` (name, arguments) in order."""
        bodies = [
            self.call_head(name) + json.dumps(args, ensure_ascii=False) + self.call_tail
            for name, args in calls
        ]
        return self.group_open + self.separator.join(bodies) + self.group_close

    def starts_call(self, text: str) -> int:
        """Where the first call starts in ``text``, or -1 when the text is a plain reply."""
        stripped = text.lstrip()
        if self.alternate(stripped) is not None:
            return len(text) - len(stripped)
        if self.trigger_anywhere:
            return text.find(self.trigger)
        return len(text) - len(stripped) if stripped.startswith(self.trigger) else -1

    def alternate(self, text: str) -> tuple[str, str] | None:
        """The alternate wrapping ``text`` (stripped of leading space) opens a call with, if
        any: the opener followed by ``{"name"``."""
        for opener, closer in self.alternates:
            rest = text[len(opener) :] if text.startswith(opener) else None
            if rest is not None and _NAME_FIRST.match(rest):
                return opener, closer
        return None


HERMES = CallFormat(
    name="hermes",
    call_open="<tool_call>\n",
    call_close="\n</tool_call>",
    group_open="",
    group_close="",
    separator="\n",
    arguments_key="arguments",
    trigger="<tool_call>",
    alternates=(("", ""), ("```json\n", "\n```")),
)

MISTRAL = CallFormat(
    name="mistral",
    call_open="",
    call_close="",
    group_open="[TOOL_CALLS][",
    group_close="]",
    separator=", ",
    arguments_key="arguments",
    trigger="[TOOL_CALLS]",
)

LLAMA3 = CallFormat(
    name="llama3",
    call_open="",
    call_close="",
    group_open="",
    group_close="",
    separator="",
    arguments_key="parameters",
    trigger='{"name"',
    trigger_anywhere=False,
    parallel=False,
)


def detect_call_format(chat_template: str | None) -> CallFormat | None:
    """The call format a chat template renders tool calls in, or None if it knows no tools.

    Read from markers the templates write literally: ``<tool_call>`` (Hermes/Qwen),
    ``[TOOL_CALLS]`` (Mistral), ``"parameters"`` with an ``ipython`` role or
    ``<|python_tag|>`` (Llama 3.x).
    """
    if not chat_template or "tools" not in chat_template:
        return None
    if "<tool_call>" in chat_template:
        return HERMES
    if "[TOOL_CALLS]" in chat_template:
        return MISTRAL
    if "parameters" in chat_template and (
        "ipython" in chat_template or "<|python_tag|>" in chat_template
    ):
        return LLAMA3
    return None
