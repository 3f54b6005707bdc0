"""Several calls in one answer (issue #22): one per clause of the request that asks for a tool,
at most ``DecisionConfig.max_calls``, never the same call twice.

The decision on the offline MiniLM embedder; the grammar's bound on the tiny trained tokenizer;
end to end through LocalBackend on a tiny random Llama with the real SmolLM2 tokenizer, whose
sampler is replaced by a script: it writes a given answer token by token wherever the grammar
allows, and EOS where it does not (a model that wants to write that answer). No weights, no
network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.backends._call_decoding import (
    ArgumentBias,
    CallSteering,
    StepBias,
    complete_calls,
    distinct,
    token_pieces,
)
from agentcore.core import sampling
from agentcore.core.sampling import SamplingParams
from agentcore.tools import HERMES, ToolCall, ToolRegistry, build_action_grammar
from agentcore.tools._decision import DecisionConfig, ToolSelector

from .test_decision_required import _tool as _typed_tool
from .test_grammar import accepts, get_weather, ping


def _tool(name: str, description: str, param: str, enum: list[str]) -> dict[str, Any]:
    return _typed_tool(name, description, param, "string", enum)


SONG = _tool("play_song", "Play a song by an artist.", "title", ["Hallelujah", "Dancing Queen"])
WEATHER = _tool("get_weather", "Current weather for a city.", "city", ["Oslo", "Lima"])
TIMER = _tool("set_timer", "Start a countdown timer.", "minutes", ["5", "10"])
TWO_SONGS = "Play Hallelujah by Leonard Cohen. Then play Dancing Queen by ABBA."
TWO_TOOLS = "What's the weather in Oslo right now? Also, set a timer for 10 minutes."


def _free(name: str, description: str, param: str, kind: str) -> dict[str, Any]:
    """A tool of one required parameter of any value of ``kind``."""
    entry = _typed_tool(name, description, param, kind, [])
    del entry["function"]["parameters"]["properties"][param]["enum"]
    return entry


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def selector() -> ToolSelector:
    from agentcore.memory import embed_texts

    return ToolSelector(lambda texts: embed_texts(list(texts), device="cpu"))


# ---------------------------------------------------------------- the decision


def test_two_clauses_asking_for_one_tool_each_allow_two_calls(selector: ToolSelector) -> None:
    d = selector.decide(_user(TWO_TOOLS), [SONG, WEATHER, TIMER])
    assert (d.call, d.calls, d.offered) == (True, 2, ("get_weather", "set_timer"))


def test_the_same_tool_twice_when_a_joining_word_asks_again(selector: ToolSelector) -> None:
    d = selector.decide(_user(TWO_SONGS), [SONG, WEATHER, TIMER])
    assert (d.calls, d.offered) == (2, ("play_song",))
    # each call with the clause that asks for it, without its joining word
    assert d.steps == (
        ("play_song", "Play Hallelujah by Leonard Cohen."),
        ("play_song", "play Dancing Queen by ABBA."),
    )


def test_a_question_after_a_joining_word_is_a_call_of_its_own(selector: ToolSelector) -> None:
    """A question after a joining word ("And what time is it in Cairo now?") does not act on
    the first clause's result (its "it" is not a result): SmolLM2's answer held the definition
    only."""
    define = _tool("define_word", "Look up the definition of a word.", "word", ["serendipity"])
    clock = _tool("get_local_time", "The current local time in a city.", "city", ["Cairo"])
    text = "Define the word 'serendipity'. And what time is it in Cairo now?"
    d = selector.decide(_user(text), [define, clock, WEATHER])
    assert d.calls == 2 and [tool for tool, _ in d.steps] == ["define_word", "get_local_time"]


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather in Oslo right now?",
        "How do you say 'The meeting is at noon.' in French? Please translate it.",
        "What's my BMI? I weigh 58 kg and I'm 1.62 m tall.",
    ],
)
def test_one_request_in_several_sentences_stays_one_call(selector: ToolSelector, text: str) -> None:
    bmi = _tool("calculate_bmi", "Body mass index from weight and height.", "weight", ["58"])
    translate = _tool("translate_text", "Translate a text into a language.", "text", ["x"])
    d = selector.decide(_user(text), [WEATHER, bmi, translate])
    assert d.call and d.calls == 1, d.reason


TRACK = _tool("track_package", "Where a parcel is now, by its tracking number.", "number", ["x"])
CONVERT = _tool("convert_length", "Convert a length between units.", "value", ["x"])
PARCEL = "Where is my parcel 1Z999AA10123456784 now?"


def test_a_clause_beside_one_that_asks_for_a_tool_asks_at_a_lower_score(
    selector: ToolSelector,
) -> None:
    """A weather question that does not say "weather" scores low on its own (SmolLM2 and Qwen
    left out the call for "Then is it cold in Quito at the moment?", 0.15); beside a clause that
    asks for a tool it asks at ``companion_threshold``."""
    text = f"{PARCEL} And will I need an umbrella in Bergen today?"
    d = selector.decide(_user(text), [SONG, WEATHER, TIMER, TRACK])
    assert [tool for tool, _ in d.steps] == ["track_package", "get_weather"], d.reason
    alone = ToolSelector(selector.embed, DecisionConfig(companion_threshold=0.21))
    assert alone.decide(_user(text), [SONG, WEATHER, TIMER, TRACK]).calls == 1


def test_a_request_calls_when_one_of_its_clauses_asks(selector: ToolSelector) -> None:
    """The whole text of "Thanks, that was helpful. Also, 12 km in miles?" scores under the
    threshold (its thanks draw it toward chat); its second clause asks for a conversion."""
    d = selector.decide(
        _user("Thanks, that was helpful. Also, 12 km in miles?"), [WEATHER, CONVERT]
    )
    assert (d.call, d.calls, d.offered) == (True, 1, ("convert_length",)), d.reason
    assert d.score < selector.config.threshold and "a clause asks for" in d.reason


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ("Set a timer for 10 minutes. And thanks a lot!", 1),
        ("Set a timer for 10 minutes. Then I will cook the pasta.", 1),
        ("Hi! How are you today?", 0),
        ("Thanks a lot. And have a nice evening!", 0),
    ],
)
def test_a_clause_that_asks_for_nothing_adds_no_call(
    selector: ToolSelector, text: str, calls: int
) -> None:
    d = selector.decide(_user(text), [SONG, WEATHER, TIMER, TRACK, CONVERT])
    assert (d.calls if d.call else 0) == calls, d.reason


def test_required_offers_each_clause_tool(selector: ToolSelector) -> None:
    narrowed, choice, d = selector.narrow(_user(TWO_TOOLS), [SONG, WEATHER, TIMER], "required")
    assert choice == "required" and d is not None and d.calls == 2
    assert {t["function"]["name"] for t in narrowed} == {"get_weather", "set_timer"}


# ---------------------------------------------------------------- the grammar's bound


def test_the_grammar_bounds_the_number_of_calls(tiny_tokenizer: Any) -> None:
    registry = ToolRegistry([get_weather, ping])
    grammar = build_action_grammar(registry, "required", parallel=True, max_calls=2)
    two = HERMES.render([("get_weather", {"city": "Oslo"}), ("ping", {})])
    three = HERMES.render([("get_weather", {"city": "Oslo"}), ("ping", {}), ("ping", {})])
    assert accepts(tiny_tokenizer, grammar, two)
    assert not accepts(tiny_tokenizer, grammar, three)
    one_only = build_action_grammar(registry, "required", parallel=True, max_calls=1)
    assert not accepts(tiny_tokenizer, one_only, two)


def test_a_sequence_is_exactly_those_calls_in_that_order(tiny_tokenizer: Any) -> None:
    registry = ToolRegistry([get_weather, ping])
    grammar = build_action_grammar(
        registry, "required", parallel=True, max_calls=2, sequence=("get_weather", "ping")
    )
    weather, pong = ("get_weather", {"city": "Oslo"}), ("ping", {})
    assert accepts(tiny_tokenizer, grammar, HERMES.render([weather, pong]))
    assert not accepts(tiny_tokenizer, grammar, HERMES.render([weather]))  # not one only
    assert not accepts(tiny_tokenizer, grammar, HERMES.render([pong, weather]))
    with pytest.raises(ValueError, match="may not call"):
        build_action_grammar(registry, "required", parallel=True, sequence=("ping", "nope"))


def test_each_call_of_an_answer_is_steered_by_its_own_clause(smollm2_tokenizer: Any) -> None:
    """StepBias: the first call's value gets the bonus toward the first clause's words, the
    second call's toward the second's (SmolLM2 gave both calls the second clause's title)."""
    tok = smollm2_tokenizer
    pieces = token_pieces(tok, [tok.eos_token_id])
    steering = CallSteering(copy_from_start=True, copy_bonus=16.0)
    song = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    clauses = ["Play Hallelujah by Leonard Cohen.", "play Dancing Queen by ABBA."]
    step = StepBias(
        [ArgumentBias(None, [c], pieces, steering, schemas={"play_song": song}) for c in clauses]
    )
    seen: list[torch.Tensor] = []

    class Greedy:
        def pick(self, logits: torch.Tensor, *args: Any) -> int:
            seen.append(logits)
            return int(torch.argmax(logits))

    step.inner = Greedy()
    hall, danc = (tok.encode(w, add_special_tokens=False)[0] for w in ("Hallelujah", "Dancing"))
    opening = '<tool_call>\n{"name": "play_song", "arguments": {"title": "'
    for written, favoured, other in [
        (opening, hall, danc),
        (HERMES.render([("play_song", {"title": "Hallelujah"})]) + "\n" + opening, danc, hall),
    ]:
        step.written = written
        step.pick(torch.zeros(len(tok)), None)
        assert seen[-1][favoured] > 0 and seen[-1][other] == 0
        assert step.written.startswith(written)


def test_repeats_are_found_and_dropped() -> None:
    text = HERMES.render([("find_user", {"name": "Ann"}), ("find_user", {"name": "Ann"})])
    keys = complete_calls(text + '\n<tool_call>\n{"name": "x", "argu')
    assert len(keys) == 2 and keys[0] == keys[1]  # the unfinished third is left out
    calls = [ToolCall("a", {"x": 1, "y": 2}), ToolCall("a", {"y": 2, "x": 1}), ToolCall("b", {})]
    assert distinct(calls) == [calls[0], calls[2]]


# ---------------------------------------------------------------- through LocalBackend


@pytest.fixture(scope="module")
def backend(smollm2_tokenizer: Any) -> LocalBackend:
    from agentcore.core.codec import HFCodec

    return LocalBackend(testing.tiny_engine(codec=HFCodec(smollm2_tokenizer)))


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch, backend: LocalBackend) -> Iterator[list[str]]:
    """Set ``script[0]`` to the answer the model wants to write."""
    wanted = [""]
    picked: list[int] = []
    tok = backend.engine.codec.hf
    eos = sorted(backend.engine.codec.stop_ids)

    def pick(self: Any, logits: torch.Tensor, params: Any, recent: Any = (), allowed: Any = None, reply: Any = ()) -> int:  # fmt: skip
        target = tok.encode(wanted[0], add_special_tokens=False)
        ok = allowed if allowed is not None else torch.ones_like(logits, dtype=torch.bool)
        step = len(picked)
        if step < len(target) and target[:step] == picked and ok[target[step]]:
            choice = target[step]
        elif any(ok[e] for e in eos):
            choice = next(e for e in eos if ok[e])
        else:
            choice = int(torch.nonzero(ok)[0])
        picked.append(choice)
        return choice

    monkeypatch.setattr(sampling.Sampler, "pick", pick)
    original = backend.chat

    def chat(*args: Any, **kwargs: Any) -> Any:
        picked.clear()
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, "chat", chat)
    yield wanted


PARAMS = SamplingParams(max_tokens=120)


def test_backend_decodes_one_call_per_clause(backend: LocalBackend, script: list[str]) -> None:
    script[0] = HERMES.render([("get_weather", {"city": "Oslo"}), ("set_timer", {"minutes": "10"})])
    r = backend.chat(
        _user(TWO_TOOLS), tools=[SONG, WEATHER, TIMER], tool_choice="auto", params=PARAMS
    )
    assert [(c.name, c.arguments) for c in r.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("set_timer", {"minutes": "10"}),
    ]
    assert len({c.id for c in r.tool_calls}) == 2


def test_backend_never_writes_more_calls_than_clauses(
    backend: LocalBackend, script: list[str]
) -> None:
    script[0] = HERMES.render(
        [("play_song", {"title": "Hallelujah"}), ("play_song", {"title": "Dancing Queen"})] * 2
    )
    r = backend.chat(_user(TWO_SONGS), tools=[SONG, WEATHER], tool_choice="required", params=PARAMS)
    assert [c.arguments["title"] for c in r.tool_calls] == ["Hallelujah", "Dancing Queen"]


def test_backend_ends_the_answer_at_a_repeated_call(
    backend: LocalBackend, script: list[str]
) -> None:
    script[0] = HERMES.render([("play_song", {"title": "Hallelujah"})] * 2) + "\nmore text"
    r = backend.chat(_user(TWO_SONGS), tools=[SONG, WEATHER], tool_choice="auto", params=PARAMS)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("play_song", {"title": "Hallelujah"})]
    assert r.finish_reason == "tool_calls"


def test_backend_keeps_one_call_for_a_one_clause_request(
    backend: LocalBackend, script: list[str]
) -> None:
    script[0] = HERMES.render(
        [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Lima"})]
    )
    r = backend.chat(
        _user("What's the weather in Oslo right now?"), tools=[WEATHER, TIMER], params=PARAMS
    )
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Oslo"})]


def test_backend_writes_the_second_clause_call_a_model_would_leave_out(
    backend: LocalBackend, script: list[str]
) -> None:
    """A request of two clauses gets both calls although the model would stop after one
    (SmolLM2-135M wrote one call for 16 of 18 such requests of the dev split)."""
    script[0] = HERMES.render([("get_weather", {"city": "Oslo"})])
    r = backend.chat(
        _user(TWO_TOOLS), tools=[SONG, WEATHER, TIMER], tool_choice="auto", params=PARAMS
    )
    assert [c.name for c in r.tool_calls] == ["get_weather", "set_timer"]


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_parallel_tool_calls_false_keeps_an_answer_to_one_call(
    backend: LocalBackend, script: list[str], choice: str
) -> None:
    """OpenAI's ``parallel_tool_calls: false``: a request of two clauses gets one call, the
    first the model writes, never the second the clauses would ask for."""
    script[0] = HERMES.render([("get_weather", {"city": "Oslo"}), ("set_timer", {"minutes": "10"})])
    r = backend.chat(
        _user(TWO_TOOLS),
        tools=[SONG, WEATHER, TIMER],
        tool_choice=choice,
        params=PARAMS,
        parallel_tool_calls=False,
    )
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Oslo"})]


def test_backend_answers_in_text_under_none_even_where_the_model_writes_a_call(
    backend: LocalBackend, script: list[str]
) -> None:
    """``tool_choice="none"`` with tools (the Agent's answer to a question): the reply never
    opens with a call or JSON (Qwen2.5-0.5B answered "Where does my sister live?" with
    '{"name: "location", ...}', and with '{"name1": ...' or a fenced one once calls were
    banned)."""
    for wanted in (
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        '{"name: "city"}',
        '{"name1": "colour", "arguments1": {}}',
        '```json\n{"name1": "location"}\n```',
    ):
        script[0] = wanted
        r = backend.chat(_user("Where does my sister live?"), tools=[WEATHER], tool_choice="none")
        assert not r.tool_calls and not r.text.lstrip().startswith(("{", "`")), r.text


def test_backend_keeps_the_calls_completed_before_max_tokens(
    backend: LocalBackend, script: list[str]
) -> None:
    first = HERMES.render([("get_weather", {"city": "Oslo"})])
    script[0] = HERMES.render([("get_weather", {"city": "Oslo"}), ("set_timer", {"minutes": "10"})])
    cut = len(backend.engine.codec.hf.encode(first + "\n<tool_call>\n{", add_special_tokens=False))
    r = backend.chat(
        _user(TWO_TOOLS),
        tools=[SONG, WEATHER, TIMER],
        tool_choice="auto",
        params=SamplingParams(max_tokens=cut),
    )
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert (r.text, r.finish_reason) == ("", "length")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Find Jonas Berg's phone number. And look up Aiko Tanaka in my contacts.",
         ["Jonas Berg", "Aiko Tanaka"]),
        ("Set a timer for 18 minutes. Also, set a timer for 7 minutes.", [18, 7]),
    ],
)  # fmt: skip
def test_real_model_makes_one_call_per_clause(
    real_engine: Any, text: str, values: list[Any]
) -> None:
    """SmolLM2-135M, greedy: both calls, each with its own clause's value (before the calls
    were decoded as a sequence, each steered by its clause: one call, or the first value
    twice)."""
    contacts = _free("search_contacts", "Search the address book.", "name", "string")
    timer = _free("set_timer", "Start a countdown timer.", "minutes", "integer")
    r = LocalBackend(real_engine).chat(
        _user(text), tools=[contacts, timer, WEATHER], params=SamplingParams(max_tokens=160)
    )
    assert [next(iter(c.arguments.values())) for c in r.tool_calls] == values, r
