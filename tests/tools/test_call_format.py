"""Tool-call formats of the model families: Hermes/Qwen, Mistral, Llama 3.

Each format's canonical text is accepted by its grammar and parsed back to the same calls;
parallel calls only where the format allows and the grammar is asked for them; a reply in words
never starts a call; the format is read off a chat template's source; and a Qwen-style template
(written here, same structure as Qwen2.5's) renders its own tools section, which
:class:`~agentcore.backends._tool_dialect.ToolDialect` extracts for a running session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
import pytest

from agentcore.backends._tool_dialect import tool_dialect
from agentcore.tools import (
    HERMES,
    LLAMA3,
    MISTRAL,
    CallFormat,
    TextReply,
    ToolCall,
    ToolRegistry,
    build_action_grammar,
    detect_call_format,
    parse_action,
    parse_calls,
    render_tools_prompt,
)

from .test_grammar import accepts, get_weather, ping

FORMATS = [HERMES, MISTRAL, LLAMA3]
CALLS: list[tuple[str, dict[str, Any]]] = [("get_weather", {"city": "Oslo"}), ("ping", {})]


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([get_weather, ping])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_a_canonical_call_is_accepted_and_parsed_back(
    fmt: CallFormat, tiny_tokenizer: Any, registry: ToolRegistry
) -> None:
    grammar = build_action_grammar(registry, call_format=fmt)
    text = fmt.render(CALLS[:1])
    assert accepts(tiny_tokenizer, grammar, text), text
    assert parse_calls(text, fmt) == [ToolCall("get_weather", {"city": "Oslo"})]


@pytest.mark.parametrize("fmt", [HERMES, MISTRAL], ids=lambda f: f.name)
def test_parallel_calls_only_when_asked(
    fmt: CallFormat, tiny_tokenizer: Any, registry: ToolRegistry
) -> None:
    text = fmt.render(CALLS)
    assert accepts(
        tiny_tokenizer, build_action_grammar(registry, call_format=fmt, parallel=True), text
    )
    assert not accepts(tiny_tokenizer, build_action_grammar(registry, call_format=fmt), text)
    assert parse_calls(text, fmt) == [ToolCall(n, a) for n, a in CALLS]


def test_llama3_has_no_parallel_form(tiny_tokenizer: Any, registry: ToolRegistry) -> None:
    grammar = build_action_grammar(registry, call_format=LLAMA3, parallel=True)
    assert not accepts(tiny_tokenizer, grammar, LLAMA3.render(CALLS[:1]) + LLAMA3.render(CALLS[1:]))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_text_replies_never_open_a_call(
    fmt: CallFormat, tiny_tokenizer: Any, registry: ToolRegistry
) -> None:
    grammar = build_action_grammar(registry, call_format=fmt)
    assert accepts(tiny_tokenizer, grammar, "It is sunny in Oslo.")
    assert parse_action("It is sunny.", fmt) == TextReply("It is sunny.")
    if fmt.trigger_anywhere:  # Hermes and Mistral markup is never part of a reply
        assert not accepts(tiny_tokenizer, grammar, "Sure. " + fmt.render(CALLS[:1]))
    else:  # a Llama 3 reply only never starts with a call's JSON
        assert not accepts(tiny_tokenizer, grammar, "  " + fmt.render(CALLS[:1]) + " ok")


def test_llama3_text_may_mention_json_after_the_start(
    tiny_tokenizer: Any, registry: ToolRegistry
) -> None:
    """A Llama 3 call is bare JSON at the start; JSON later in a reply is just text."""
    grammar = build_action_grammar(registry, call_format=LLAMA3)
    text = 'The format is {"name": "x"}.'
    assert accepts(tiny_tokenizer, grammar, text)
    assert parse_action(text, LLAMA3) == TextReply(text)


def test_the_prompt_shows_the_format_it_enforces(registry: ToolRegistry) -> None:
    assert "[TOOL_CALLS][" in render_tools_prompt(registry, call_format=MISTRAL)
    assert '"parameters"' in render_tools_prompt(registry, call_format=LLAMA3)
    assert "<tool_call>\n{" in render_tools_prompt(registry)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% if tools %}<tools>{{ tools }}</tools> <tool_call>{% endif %}", HERMES),
        ("{% if tools %}[AVAILABLE_TOOLS]{{ tools }}{% endif %}[TOOL_CALLS]", MISTRAL),
        ('{% if tools %}"parameters" {% endif %}<|start_header_id|>ipython', LLAMA3),
        ("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}", None),
        (None, None),
    ],
)
def test_the_format_is_read_off_the_template(
    template: str | None, expected: CallFormat | None
) -> None:
    assert detect_call_format(template) is expected


# A chat template with the structure of Qwen2.5's (tools in the system turn, calls in
# <tool_call> tags, results in <tool_response> inside a user turn), written for this test.
QWEN_LIKE = """\
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}{% else %}Default helper.{% endif %}

# Tools
<tools>{% for t in tools %}
{{ t | tojson }}{% endfor %}
</tools>
Call with <tool_call>
{"name": <name>, "arguments": <args>}
</tool_call><|im_end|>
{% else %}{% if messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% else %}<|im_start|>system
Default helper.<|im_end|>
{% endif %}{% endif %}
{%- for m in messages %}{% if not (loop.first and m.role == 'system') %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


class TemplateCodec:
    """A codec over a Jinja chat template: just enough of HFCodec for the dialect."""

    def __init__(self, template: str) -> None:
        env = jinja2.Environment()
        env.filters["tojson"] = lambda v: __import__("json").dumps(v)
        self._template = env.from_string(template)
        self.hf = type("Tok", (), {"chat_template": template})()

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        return self._template.render(
            messages=list(messages), tools=tools, add_generation_prompt=add_generation_prompt
        )


def test_a_template_with_tools_renders_its_own_section() -> None:
    codec: Any = TemplateCodec(QWEN_LIKE)
    dialect = tool_dialect(codec)
    assert dialect.native and dialect.call_format is HERMES
    assert dialect.default_system == "Default helper."
    entry = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    section = dialect.tools_section([entry])
    assert section is not None and section.startswith("# Tools\n<tools>")
    # the section as a system message renders exactly what the template writes with tools=
    by_hand = codec.render_chat(
        [
            {"role": "system", "content": "Be brief.\n\n" + section},
            {"role": "user", "content": "hi"},
        ],
        True,
    )
    native = codec.render_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        True,
        tools=[entry],
    )
    assert by_hand == native


def test_a_template_without_tools_keeps_the_project_prompt() -> None:
    codec: Any = TemplateCodec("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}")
    dialect = tool_dialect(codec)
    assert not dialect.native and dialect.call_format is HERMES
    assert dialect.tools_section([]) is None


def test_call_markers_that_are_special_tokens_are_asked_for_as_tokens(
    registry: ToolRegistry,
) -> None:
    """Qwen's tokenizer holds <tool_call> as one special token: the grammar must name that
    token (the one the model writes), since special tokens never match spelled-out text."""
    grammar = build_action_grammar(
        registry, marker_tokens={"<tool_call>": 151657, "</tool_call>": 151658}
    )
    assert '<[151657]> "\\n{\\"name\\": \\"get_weather\\"' in grammar
    assert '"}\\n" <[151658]>' in grammar
    assert "<tool_call>" in grammar  # the text branch still may not spell a call out
    plain = build_action_grammar(registry)
    assert "<[" not in plain


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        '{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Oslo"\n  }\n}',
        '```json\n{\n  "name": "get_weather",\n  "arguments": {"city": "Oslo"}\n}\n```',
    ],
    ids=["bare", "pretty", "fenced"],
)
def test_a_call_written_as_json_counts_where_text_is_allowed(
    text: str, tiny_tokenizer: Any, registry: ToolRegistry
) -> None:
    """Small Hermes-family models (Qwen2.5-Coder-0.5B) answer a tool request with a JSON object,
    bare or fenced, far more often than with <tool_call>: under ``auto`` that is a call too,
    decoded under the schema; a forced call keeps the canonical shape."""
    assert accepts(tiny_tokenizer, build_action_grammar(registry), text)
    assert parse_calls(text) == [ToolCall("get_weather", {"city": "Oslo"})]
    assert not accepts(tiny_tokenizer, build_action_grammar(registry, "required"), text)


def test_json_that_names_no_tool_stays_text(tiny_tokenizer: Any, registry: ToolRegistry) -> None:
    grammar = build_action_grammar(registry)
    assert accepts(tiny_tokenizer, grammar, '{"city": "Oslo"} is the JSON you want.')
    assert not accepts(tiny_tokenizer, grammar, '{"name": "lunch", "arguments": {}}')
    assert not accepts(tiny_tokenizer, grammar, '{"name": "Ann"} is a person.')
