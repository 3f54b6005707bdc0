"""The incremental chat render: a turn renders only what it adds, and adds exactly what rendering
the whole conversation would, on every chat template the project supports (the tiny test
model's ChatML, SmolLM2's, Qwen2.5's with tools, tool messages and system prompts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from agentcore.core.codec import ByteCodec, Message
from agentcore.core.transcript import Transcript, common_prefix_len

TEMPLATES = Path(__file__).parent / "templates"


class TemplateCodec:
    """A chat template (Jinja source, as a tokenizer holds it) rendered as transformers does."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.calls: list[int] = []  # messages rendered per call

    def render_chat(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        self.calls.append(len(messages))
        out, _ = render_jinja_template(
            [list(messages)],
            tools=list(tools) if tools else None,
            chat_template=self.template,
            add_generation_prompt=add_generation_prompt,
        )
        return out[0]


def _codec(name: str) -> Any:
    if name == "chatml":
        return ByteCodec()
    return TemplateCodec((TEMPLATES / f"{name}.jinja").read_text())


WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _call(city: str) -> Message:
    call = {"type": "function", "function": {"name": "weather", "arguments": {"city": city}}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def _tool(text: str) -> Message:
    return {"role": "tool", "content": text}


# A turn: (new messages, add_generation_prompt, the reply the model then generates or None).
# A reply is (message content, stream text): the stream ends a finished reply with the end
# token only (the template adds a newline), a cut-off reply has no end token, a reply cut by a
# stop string holds the stop string the content lacks.
Turn = tuple[list[Message], bool, tuple[str, str] | None]

CONVERSATIONS: dict[str, list[Turn]] = {
    "system prompt and plain turns": [
        (
            [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}],
            True,
            ("hello", "hello<|im_end|>"),
        ),
        ([{"role": "user", "content": "2+2?"}], True, ("4", "4<|im_end|>")),
        ([{"role": "user", "content": "and 3+3?"}], True, ("six, as far as I", "six, as far as I")),
        ([{"role": "user", "content": "stop there"}], True, ("ok", "ok STOP and more")),
        ([{"role": "user", "content": "bye"}], True, ("bye", "bye<|im_end|>")),
    ],
    "no system prompt": [
        ([{"role": "user", "content": "hi"}], True, ("hey", "hey<|im_end|>")),
        ([{"role": "user", "content": "more"}], True, ("sure", "sure<|im_end|>")),
        ([{"role": "user", "content": "again"}], True, ("fine", "fine<|im_end|>")),
        ([{"role": "user", "content": "last"}], True, ("done", "done<|im_end|>")),
    ],
    "tool calls and results": [
        (
            [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "weather?"}],
            True,
            None,
        ),
        ([_call("Paris"), _tool("sunny")], True, ("It is sunny.", "It is sunny.<|im_end|>")),
        ([{"role": "user", "content": "and Rome, Oslo?"}, _call("Rome")], False, None),
        ([_tool("rain"), _tool("snow")], True, ("Rain and snow.", "Rain and snow.<|im_end|>")),
        ([{"role": "user", "content": "and Nice?"}], True, None),
        ([_call("Nice")], False, None),
        ([_tool("wind")], True, None),  # two tool results in separate requests: the template
        ([_tool("more wind")], True, ("Windy.", "Windy.<|im_end|>")),  # re-renders the first
        (
            [{"role": "system", "content": "Be brief now."}, {"role": "user", "content": "ok?"}],
            True,
            ("ok", "ok<|im_end|>"),
        ),
    ],
}


def _run(
    codec: Any,
    turns: list[Turn],
    tools: list[dict[str, Any]] | None,
    tail: int = 8,
    turn_codec: Any = None,
) -> int:
    """Play ``turns``; every turn's text must be what rendering the whole conversation adds.

    The whole render's answer: the template over every message, minus its text for the
    messages before the turn (as the last turn rendered them), minus what the stream holds
    since then (the reply). While the stream is what the template renders (it stops being so
    where the template re-renders an earlier turn, e.g. two tool results sent separately), that
    is also the whole render minus its common prefix with the whole stream. Returns how many
    turns were checked against the whole stream too. ``turn_codec`` (default ``codec``) renders
    the turns."""
    transcript = Transcript(tail_messages=tail, tail_chars=64)
    everything: list[Message] = []
    at, at_gen = 0, False
    stream, since = "", ""
    consistent, checked = True, 0
    for i, (new, gen, reply) in enumerate(turns):
        full = codec.render_chat([*everything, *new], gen, tools=tools)
        head = codec.render_chat(everything[:at], at_gen, tools=tools) if at else ""
        if full.startswith(head):
            rest = full[len(head) :]
            expected = rest[common_prefix_len(rest, since) :]
        else:
            expected = full[common_prefix_len(full, head) :]
        got = transcript.render(turn_codec or codec, new, gen, tools=tools)
        assert got == expected, f"turn {i}: {got!r} != {expected!r}"
        consistent = consistent and full.startswith(head)
        if consistent:
            assert got == full[common_prefix_len(full, stream) :], f"turn {i}"
            checked += 1
        stream += got
        everything.extend(new)
        at, at_gen, since = len(everything), gen, ""
        if reply is not None:
            content, text = reply
            stream += text
            since += text
            transcript.add_text(text)
            message = {"role": "assistant", "content": content}
            everything.append(message)
            transcript.add_message(message)
        transcript.mark_journaled()
        assert transcript.chars == len(stream)
        assert stream.endswith(transcript.text)
    return checked


@pytest.mark.parametrize("name", ["chatml", "smollm2", "qwen2.5"])
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_a_turn_adds_what_the_whole_render_would(name: str, conversation: str) -> None:
    assert _run(_codec(name), CONVERSATIONS[conversation], None) >= 4


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_qwen_tools_rendered_by_its_template(conversation: str) -> None:
    assert _run(_codec("qwen2.5"), CONVERSATIONS[conversation], [WEATHER]) >= 4


@pytest.mark.parametrize("name", ["chatml", "smollm2", "qwen2.5"])
def test_a_long_conversation_renders_a_bounded_context(name: str) -> None:
    """Hundreds of turns: each renders a few messages, memory keeps a bounded tail, and every
    turn still matches the whole render."""
    codec = _codec(name)
    turns: list[Turn] = [
        (
            [{"role": "system", "content": "sys"}, {"role": "user", "content": "u0"}],
            True,
            ("a", "a"),
        )
    ]
    for i in range(1, 150):
        if i % 7 == 0:
            turns.append(([_call(f"c{i}"), _tool(f"r{i}")], True, (f"a{i}", f"a{i}<|im_end|>")))
        else:
            turns.append(
                ([{"role": "user", "content": f"u{i}"}], True, (f"a{i}", f"a{i}<|im_end|>"))
            )
    counting = _codec(name)
    assert _run(codec, turns, None, tail=8, turn_codec=counting) == len(turns)
    if isinstance(counting, TemplateCodec):
        # a turn renders the first message, three before the last render, the reply, the new
        assert max(counting.calls) <= 7


def test_trimmed_transcript_keeps_a_bounded_tail() -> None:
    codec = ByteCodec()
    t = Transcript(tail_messages=8, tail_chars=64)
    for i in range(500):
        t.render(codec, [{"role": "user", "content": f"question {i}"}], True)
        t.add_text(f"answer {i}<|im_end|>")
        t.add_message({"role": "assistant", "content": f"answer {i}"})
        t.mark_journaled()
    assert t.n_messages == 1000
    assert len(t.messages) <= 16 + 4
    assert len(t.text) <= 2 * 64
    assert t.first == {"role": "user", "content": "question 0"}


def test_messages_added_directly_are_rendered_with_the_next_turn() -> None:
    codec = ByteCodec()
    t = Transcript()
    t.messages.append({"role": "system", "content": "be kind"})
    delta = t.render(codec, [{"role": "user", "content": "hi"}], True)
    assert delta == codec.render_chat(
        [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}], True
    )


def test_state_round_trips_through_json() -> None:
    codec = ByteCodec()
    t = Transcript(tail_messages=8)
    t.render(codec, [{"role": "user", "content": "hi"}], True)
    t.add_text("yo<|im_end|>")
    t.add_message({"role": "assistant", "content": "yo"})
    u = Transcript(tail_messages=8)
    u.load_state(json.loads(json.dumps(t.state())))
    new = [{"role": "user", "content": "next"}]
    assert u.render(codec, new, True) == t.render(codec, new, True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("alias", "name"), [("smollm2-135m", "smollm2"), ("qwen2.5-coder-0.5b", "qwen2.5")]
)
def test_template_copies_match_the_model_files(alias: str, name: str) -> None:
    """The templates above are the ones the installed models carry."""
    from transformers import AutoTokenizer

    from agentcore.core.loader import resolve_model

    gguf = Path(resolve_model(alias).location)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    assert tok.chat_template == (TEMPLATES / f"{name}.jinja").read_text()
