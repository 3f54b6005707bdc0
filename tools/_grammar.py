"""The action grammar: what the model may write when it answers, given the permitted tools.

Owns :func:`build_action_grammar`, which turns a registry and an OpenAI-style ``tool_choice``
into an llguidance grammar (Lark text) whose sentences are EITHER plain text that never
contains ``<tool_call>`` OR exactly one call in the Hermes / Qwen / SmolLM format::

    <tool_call>
    {"name": "<a permitted tool>", "arguments": {...valid for that tool's schema...}}
    </tool_call>

Each permitted tool is its own alternative, so the name is one of the permitted names and the
arguments are decoded under that tool's JSON Schema (compact separators, no extra keys, keys in
schema order). Decoding under this grammar makes every tool call parse and validate, except
for rules llguidance cannot express (``uniqueItems``, ``not``, a look-around ``pattern``, which
is left out and logged): the grammar is then looser than the schema, never tighter, and the
registry's validation still applies them. Never decodes anything itself:
:mod:`agentcore.core.constraint` runs the grammar against a tokenizer.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import llguidance

from agentcore.tools._call_format import HERMES, CallFormat
from agentcore.tools._errors import ToolDefinitionError, ToolNotFoundError
from agentcore.tools._registry import ToolRegistry
from agentcore.tools._schema import decoding_schema, walk_schemas
from agentcore.tools._tool import Tool

log = logging.getLogger(__name__)

__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "ActionSpace",
    "ToolChoice",
    "arguments_grammar_schema",
    "build_action_grammar",
    "resolve_action_space",
]

TOOL_CALL_OPEN = "<tool_call>"  # HERMES's markers, the project's own prompt format
TOOL_CALL_CLOSE = "</tool_call>"

ToolChoice = Literal["auto", "none", "required"] | Mapping[str, Any]
"""OpenAI ``tool_choice``: ``"auto"`` (text or a call), ``"none"`` (text only), ``"required"``
(some call), or ``{"type": "function", "function": {"name": X}}`` (a call to X)."""

# How argument JSON is laid out: the separators of ``json.dumps`` and no free whitespace, so a
# small model cannot wander into runs of spaces or newlines inside a call. ``lenient``: schema
# keywords llguidance does not implement are ignored rather than fatal (an imported MCP tool
# may use any JSON Schema); the registry still validates every parsed call.
JSON_LAYOUT: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "lenient": True,
}


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """What the model may do this turn: write text (``text``) and/or call one of ``tools``."""

    text: bool
    tools: tuple[Tool, ...]


def _forced_name(tool_choice: Mapping[str, Any]) -> str:
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
    if tool_choice.get("type", "function") != "function" or not isinstance(name, str):
        raise ValueError(
            f"tool_choice: got {tool_choice!r}; expected 'auto', 'none', 'required' or "
            '{"type": "function", "function": {"name": "<tool name>"}}'
        )
    return name


def resolve_action_space(
    tools: ToolRegistry | Iterable[Tool],
    tool_choice: ToolChoice = "auto",
    *,
    permitted: Iterable[str] | None = None,
    require_tool: bool = False,
    allow_text: bool = True,
) -> ActionSpace:
    """Combine the registry, the caller's permission list and ``tool_choice`` into what the
    model may do. Raises ValueError when nothing would be allowed, ToolNotFoundError when a
    forced or permitted tool does not exist."""
    registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
    registry = registry.subset(permitted)
    candidates = list(registry)
    text = allow_text and not require_tool
    if isinstance(tool_choice, Mapping):
        name = _forced_name(tool_choice)
        if name not in registry:
            raise ToolNotFoundError(name, registry.names())
        return ActionSpace(text=False, tools=(registry.get(name),))
    if tool_choice == "none":
        if require_tool:
            raise ValueError("tool_choice='none' contradicts require_tool=True")
        candidates = []
    elif tool_choice == "required":
        text = False
    elif tool_choice != "auto":
        raise ValueError(
            f"tool_choice: got {tool_choice!r}; expected 'auto', 'none', 'required' or "
            '{"type": "function", "function": {"name": "<tool name>"}}'
        )
    if not text and not candidates:
        raise ValueError(
            "no action is possible: text is not allowed "
            f"(tool_choice={tool_choice!r}, require_tool={require_tool}, allow_text={allow_text}) "
            "and no tool is permitted"
        )
    return ActionSpace(text=text, tools=tuple(candidates))


def _lark_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _one_line(message: str, limit: int = 240) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.lru_cache(maxsize=1024)
def _regex_problem(pattern: str) -> str | None:
    """Why llguidance cannot compile ``pattern`` (look-around, back-references, ...), or None."""
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps({"type": "string", "pattern": pattern})
        )
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    except ValueError as exc:
        return _one_line(str(exc))
    if not is_error:
        return None
    reason = messages[0] if messages else "?"
    return _one_line(reason.rsplit("error:", 1)[-1])  # the rest repeats the pattern


@functools.lru_cache(maxsize=256)
def _warn_dropped_pattern(tool: str, pattern: str, reason: str) -> None:
    """Logged once per tool and pattern (the grammar is rebuilt every turn)."""
    log.warning(
        "tool %r: the pattern %r is left out of the decoding grammar (%s); "
        "calls are still validated against it",
        tool,
        pattern,
        reason,
    )


def _drop_uncompilable_patterns(tool: str, schema: dict[str, Any]) -> None:
    """Remove, in place, the ``pattern`` / ``patternProperties`` regexes llguidance cannot
    compile. The grammar then allows more than the schema, never less; the registry's
    validation (Python ``re``) still enforces them."""

    def visit(node: dict[str, Any]) -> None:
        pattern = node.get("pattern")
        if isinstance(pattern, str) and (reason := _regex_problem(pattern)):
            del node["pattern"]
            _warn_dropped_pattern(tool, pattern, reason)
        keyed = node.get("patternProperties")
        if isinstance(keyed, dict):
            for key in list(keyed):
                if reason := _regex_problem(key):
                    del keyed[key]
                    _warn_dropped_pattern(tool, key, reason)

    walk_schemas(schema, visit)


def arguments_grammar_schema(tool: Tool) -> dict[str, Any]:
    """The schema a tool's arguments are decoded under: closed objects, compact layout, and
    no regex the grammar engine cannot compile (those are logged and left to validation)."""
    schema = decoding_schema(tool.parameters)
    _drop_uncompilable_patterns(tool.name, schema)
    schema["x-guidance"] = {**JSON_LAYOUT, **schema.get("x-guidance", {})}
    return schema


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_text: str) -> str | None:
    """Why llguidance cannot compile this arguments schema (short), or None."""
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema_text)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    except ValueError as exc:  # the schema JSON nests deeper than llguidance reads
        return _one_line(str(exc))
    if not is_error:
        return None
    return _one_line(messages[0] if messages else "?")


def _arguments_grammar_text(tool: Tool) -> str:
    """The tool's decoding schema as JSON, checked to compile on its own, so that a broken
    tool is named in a short error instead of failing the whole grammar with a dump of it."""
    try:
        text = json.dumps(arguments_grammar_schema(tool), ensure_ascii=False)
    except RecursionError:
        problem: str | None = "it nests too deeply (Python's recursion limit was reached)"
    else:
        problem = _schema_problem(text)
    if problem is None:
        return text
    if "recursion limit" in problem:
        problem = f"it nests too deeply for the grammar engine ({problem})"
    raise ToolDefinitionError(
        f"tool {tool.name!r}: its parameters cannot be turned into a decoding grammar: "
        f"{problem}. Fix or flatten the schema, or leave the tool out."
    )


def build_action_grammar(
    tools: ToolRegistry | Iterable[Tool],
    tool_choice: ToolChoice = "auto",
    *,
    permitted: Iterable[str] | None = None,
    require_tool: bool = False,
    allow_text: bool = True,
    call_format: CallFormat = HERMES,
    parallel: bool = False,
    max_calls: int | None = None,
    marker_tokens: Mapping[str, int] | None = None,
    after_result: bool = False,
    words_first: bool = False,
    sequence: Sequence[str] = (),
) -> str:
    """The llguidance Lark grammar of one assistant answer (see the module docstring).

    ``permitted``: tool names the caller allows this turn (``None``: every registered tool);
    only those appear in the grammar. ``require_tool=True`` or ``allow_text=False`` forbid the
    text branch, like ``tool_choice="required"``. ``call_format``: the markup of a call (the
    model family's own, :mod:`agentcore.tools._call_format`); ``parallel``: an answer may hold
    several calls, where the format allows it, at most ``max_calls`` of them (``None``: no
    bound). ``marker_tokens``: markup that the tokenizer
    holds as one special token (Qwen's ``<tool_call>`` is token 151657): the grammar asks for
    that token, the one the model was trained to write, instead of spelling the text out.
    ``after_result``: the answer follows a tool result, so its text opens with words, never
    with markup or JSON, and never holds a ``<tool_response>`` tag (small models copy the
    result block back instead of answering with it). ``words_first``: the text opens with
    words, never with markup, JSON or a code fence (a text answer where tools are about:
    Qwen2.5-0.5B, answering questions on a session that had made calls, wrote call-shaped JSON
    under every name the ban on call openings left it, ``{"name1": ...``). ``sequence``: with
    ``parallel``, where the format allows several calls, the answer's calls are exactly these
    tools in this order (one per clause of a request that asks for several things: left to
    stop, a small model wrote the first call only).
    Raises :class:`~tools.ToolDefinitionError`,
    naming the tool, when a tool's schema cannot be compiled (unsatisfiable, nested too deeply).
    """
    space = resolve_action_space(
        tools,
        tool_choice,
        permitted=permitted,
        require_tool=require_tool,
        allow_text=allow_text,
    )
    branches: list[str] = []
    rules: list[str] = []
    if space.text:
        branches.append("TEXT")
        lexeme = _text_lexeme(call_format, after_result=after_result, words_first=words_first)
        rules.append(f"TEXT: {lexeme}")
    # a call may also take the family's alternate shapes where the model decides between text
    # and a call; a forced call keeps the canonical shape, whose markup is then forced tokens
    alternates = call_format.alternates if space.text else ()
    if space.tools:
        markers = dict(marker_tokens or {})
        calls = []
        for i, tool in enumerate(space.tools):
            head = _lark_items(call_format.call_head(tool.name), markers)
            tail = _lark_items(call_format.call_tail, markers)
            schema = _arguments_grammar_text(tool)
            rules.append(f"call_{i}: {head} %json {schema} {tail}")
            calls.append(f"call_{i}")
            for j, wrapping in enumerate(alternates):  # the same call, laid out freely
                rules.append(f"alt_{j}_{i}: {_alternate_call(call_format, tool, wrapping)}")
                branches.append(f"alt_{j}_{i}")
        several = parallel and call_format.parallel
        separator = _lark_items(call_format.separator, markers)
        body, more = " | ".join(calls), ""
        if several and len(sequence) > 1:  # exactly these calls, in this order
            index = {tool.name: i for i, tool in enumerate(space.tools)}
            missing = [name for name in sequence if name not in index]
            if missing:
                raise ValueError(f"sequence names tools the answer may not call: {missing}")
            body = f" {separator} ".join(f"call_{index[name]}" for name in sequence)
        elif several and (max_calls is None or max_calls > 1):
            bound = "*" if max_calls is None else f"{{0,{max_calls - 1}}}"
            more = f"({separator} call){bound}"
        rules.append(f"call: {body}")
        group = [
            _lark_items(call_format.group_open, markers),
            "call",
            more,
            _lark_items(call_format.group_close, markers),
        ]
        rules.append(f"calls: {' '.join(g for g in group if g)}")
        branches.append("calls")
    return "\n".join([f"start: {' | '.join(branches)}", *rules]) + "\n"


def _alternate_call(call_format: CallFormat, tool: Tool, wrapping: tuple[str, str]) -> str:
    """One call wrapped in ``wrapping`` (e.g. a ```` ```json ```` fence, or nothing), with free
    whitespace between its JSON tokens, the arguments still decoded under the tool's schema.

    The opening up to the arguments is ONE regex lexeme: a reply in words is ruled out only once
    ``{"name"`` is seen, and a shorter lexeme ending earlier would be lost to the text lexeme,
    which the lexer extends greedily.
    """
    opener, closer = wrapping
    schema = json.loads(_arguments_grammar_text(tool))
    schema["x-guidance"] = {**schema["x-guidance"], "whitespace_flexible": True}
    ws = r"[ \t\r\n]*"
    head = ws.join(
        [
            _regex_text(opener.strip()),
            r"\{",
            _regex_text('"name"'),
            ":",
            _regex_text(json.dumps(tool.name)),
            ",",
            _regex_text(json.dumps(call_format.arguments_key)),
            ":",
            "",
        ]
    )
    tail = ws + ws.join([r"\}", _regex_text(closer.strip())]) if closer.strip() else ws + r"\}"
    return f"/{ws}{head}/ %json {json.dumps(schema, ensure_ascii=False)} /{tail}/"


def _regex_text(text: str) -> str:
    """``text`` as a regex matching itself (llguidance's syntax)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _lark_items(text: str, markers: Mapping[str, int]) -> str:
    """``text`` as a sequence of Lark items: quoted strings, and ``<[id]>`` for each marker the
    tokenizer holds as one special token ("" for empty text)."""
    items: list[str] = []
    rest = text
    while rest:
        hits = [(rest.find(m), m) for m in markers if m and m in rest]
        if not hits:
            items.append(_lark_string(rest))
            break
        at, marker = min(hits)
        if at:
            items.append(_lark_string(rest[:at]))
        items.append(f"<[{markers[marker]}]>")
        rest = rest[at + len(marker) :]
    return " ".join(items)


_REGEX_SPECIAL = set("\\.+*?()|[]{}^$#&-~/")


def _text_lexeme(
    call_format: CallFormat, *, after_result: bool = False, words_first: bool = False
) -> str:
    """Plain text: one or more characters that never start a call of ``call_format`` (and,
    ``after_result`` or ``words_first``, that open with words; ``after_result``, that hold no
    tool result tag)."""
    trigger = _regex_text(call_format.trigger)
    banned = [
        f"(?s:.*){trigger}(?s:.*)" if call_format.trigger_anywhere else f"\\s*{trigger}(?s:.*)"
    ]
    if after_result or words_first:
        banned.append(r"\s*(?:[<{\[]|```)(?s:.*)")  # markup, JSON, a fence
    if after_result:
        banned.append(r"(?s:.*)<\/?tool_response>(?s:.*)")
    for opener, _closer in call_format.alternates:  # a reply never starts like a call either
        start = _regex_text(opener.strip())
        # (also misspelt: a call written in text opened '{"name: "location"')
        banned.append(f'\\s*{start}\\s*\\{{\\s*"name(?:[^A-Za-z0-9_](?s:.*))?')
    return "/(?s:.+)/" + "".join(f" & ~/{b}/" for b in banned)
