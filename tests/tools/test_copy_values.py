"""Argument values steered toward the conversation (issue #22): ArgumentBias in LocalBackend.

SmolLM2-135M wrote origin "MADRADAS" for "Madrid". With ``CallSteering.copy_bonus`` the tokens
that continue a span the conversation states get a bonus inside argument values, and with
``optional_support`` an optional key the request does not name is not opened. Here a tiny random
Llama on the real SmolLM2 tokenizer (no weights, no network): left alone it writes random text
into a free string argument and opens optional keys; with a large bonus it writes a span of the
request, and a stated number whole. On the real tokenizer alone: a value of a shape the schema
tells (email, phone, a date template, a pattern) copies a span of that shape whole from its first
token, a listed value the request states is preferred, a value is kept off the schema's own
text, and a span begun in lower case may go on in lower case.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.backends._call_decoding import CallSteering, argument_spot
from agentcore.core.sampling import SamplingParams


def _tool(name: str, param: str, kind: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ')}.",
            "parameters": {
                "type": "object",
                "properties": {
                    param: {"type": kind, "maxLength": 24} if kind == "string" else {"type": kind}
                },
                "required": [param],
            },
        },
    }


WEATHER = _tool("get_weather", "city", "string")
TIMER = _tool("set_timer", "minutes", "integer")
ASK_WEATHER = "What's the weather like in Madrid right now?"


@pytest.fixture(scope="module")
def engine(smollm2_tokenizer: Any) -> Any:
    from agentcore.core.codec import HFCodec

    return testing.tiny_engine(codec=HFCodec(smollm2_tokenizer))


def _call(engine: Any, text: str, tool: dict[str, Any], bonus: float, seed: int) -> Any:
    backend = LocalBackend(engine)
    backend.call_steering = CallSteering(copy_bonus=bonus, copy_from_start=True)
    r = backend.chat(
        [{"role": "user", "content": text}],
        tools=[tool],
        tool_choice="required",
        params=SamplingParams(max_tokens=60, temperature=1.0, seed=seed),
    )
    assert len(r.tool_calls) == 1, r
    return next(iter(r.tool_calls[0].arguments.values()))


def _a_span(value: str, text: str) -> bool:
    low = text.lower()
    return bool(value) and any(
        low.startswith(value.lower(), i) for i in range(len(low)) if i == 0 or low[i - 1] == " "
    )


def test_without_the_bonus_the_random_model_invents_values(engine: Any) -> None:
    values = [_call(engine, ASK_WEATHER, WEATHER, 0.0, seed) for seed in range(4)]
    assert not all(_a_span(v, ASK_WEATHER) for v in values), values


@pytest.mark.parametrize("seed", range(4))
def test_with_the_bonus_a_string_value_is_a_span_of_the_request(engine: Any, seed: int) -> None:
    value = _call(engine, ASK_WEATHER, WEATHER, 100.0, seed)
    assert _a_span(value, ASK_WEATHER), value


@pytest.mark.parametrize("seed", range(3))
def test_with_the_bonus_a_stated_number_is_copied_whole(engine: Any, seed: int) -> None:
    assert _call(engine, "Set a timer for 25 minutes please.", TIMER, 100.0, seed) == 25


def test_the_spot_in_a_call_is_read_from_its_text() -> None:
    head = '<tool_call>\n{"name": "get_distance", "arguments": '
    assert argument_spot(head + '{"origin": "Mad').kind == "string"
    assert argument_spot(head + '{"origin": "Mad').partial == "Mad"
    assert argument_spot(head + '{"orig').kind == "key"
    assert argument_spot(head + '{"origin": "Madrid", "km": 12').partial == "12"
    assert argument_spot(head + '{"origin": ').kind == "value"
    assert argument_spot(head + '{"origin": "Madrid"}}').kind == ""  # the call is complete
    assert argument_spot('{"name": "x", "other": {"a": "b').kind == ""  # not the arguments


UNIT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Oslo"]},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "note": {"type": "string", "maxLength": 8},
            },
            "required": ["city"],
        },
    },
}


def _arguments(engine: Any, text: str, steering: CallSteering, seed: int) -> dict[str, Any]:
    backend = LocalBackend(engine)
    backend.call_steering = steering
    r = backend.chat(
        [{"role": "user", "content": text}],
        tools=[UNIT],
        tool_choice="required",
        params=SamplingParams(max_tokens=60, temperature=1.0, seed=seed),
    )
    assert len(r.tool_calls) == 1, r
    return dict(r.tool_calls[0].arguments)


def test_optional_keys_only_when_the_request_asks_for_them(engine: Any) -> None:
    ask = "What's the weather in Oslo?"
    alone = CallSteering(copy_bonus=0.0, optional_support=False)
    left_alone = [_arguments(engine, ask, alone, seed) for seed in range(6)]
    assert any(set(a) != {"city"} for a in left_alone), left_alone  # the random model adds keys
    steered = CallSteering(optional_support=True)
    assert all(set(_arguments(engine, ask, steered, seed)) == {"city"} for seed in range(6))
    # "Fahrenheit" names an enum value of unit: the key may be written (never "note")
    for seed in range(6):
        args = _arguments(engine, "Weather in Oslo in Fahrenheit?", steered, seed)
        assert "note" not in args, args


def test_a_work_named_by_someone_asks_for_its_maker_key() -> None:
    """A request that names a work by someone ("Play Dancing Queen by ABBA") asks for the
    optional artist (its description says performer): left unopened, Qwen2.5-0.5B wrote
    "Dancing Queen by ABBA" as the title."""
    from agentcore.backends._call_decoding import _unasked

    song = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "artist": {"type": "string", "description": "performer"},
            "volume": {"type": "integer"},
        },
        "required": ["title"],
    }
    asked, _ = _unasked(song, set(), "Play Dancing Queen by ABBA")
    assert asked == {"title", "artist"}
    for said in ("Play Dancing Queen", "Play it by ear", "Play Dancing Queen by the window"):
        assert _unasked(song, set(), said)[0] == {"title"}, said


def test_a_span_ends_at_a_quote_of_its_source(smollm2_tokenizer: Any) -> None:
    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    pieces = token_pieces(smollm2_tokenizer, [smollm2_tokenizer.eos_token_id])
    result = '{"phone": "+353 85 555 0101", "email": "liam@example.ie"}'
    head = '<tool_call>\n{"name": "send_sms", "arguments": {"phone": "'
    bias = ArgumentBias(None, [result], pieces, CallSteering(copy_bonus=4.0))
    texts = {pieces.text[i] or "" for i in bias.favoured(head + "+353 85 555 0101")}
    assert '"' in texts  # the value may end here
    assert not any(t.startswith("\\") for t in texts)  # never into the escaped quote
    assert " " in {pieces.text[i] for i in bias.favoured(head + "+353 85")}
    # copy_from_start=False: the model picks the span, the bonus only helps it continue
    mid = ArgumentBias(None, [result], pieces, CallSteering(copy_bonus=4.0, copy_from_start=False))
    assert not mid.favoured(head) and mid.favoured(head + "+353")


CONVERT = {
    "type": "object",
    "properties": {
        "target": {"type": "string", "description": "ISO currency code to convert to, e.g. USD"},
        "ticker": {"type": "string", "description": "stock ticker"},
        "unit": {"type": "string", "enum": ["euro", "dollar"]},
        "note": {"type": "string"},
        "mail": {"type": "string", "format": "email"},
    },
}


@pytest.mark.parametrize(
    ("value", "copies"),
    [
        ('"note": "Eu', True),  # a free string: the request's word goes on ("ros")
        ('"target": "Eu', False),  # a code: never into the word "euros"
        ('"target": "EU', False),
        ('"unit": "eu', True),  # an enum value the request's word names: "euros" for "euro"
        ('"unit": "do', False),  # an enum value the request does not name: the model picks
        ('"ticker": "NV', True),  # a code the request writes as one: copied in its own case
        ('"ticker": "nv', False),
        ('"mail": "ana@', True),  # a shaped value: copied as written
        ('"mail": "Ana@', False),
    ],
)
def test_a_code_or_a_listed_value_is_not_carried_into_a_word(
    smollm2_tokenizer: Any, value: str, copies: bool
) -> None:
    """SmolLM2-135M asked "in euros" wrote "Euros" for the code "EUR": the bonus carried the
    value into the request's word. Values the schema constrains are left to the model and the
    grammar; a code is copied only from a code the conversation writes."""
    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    pieces = token_pieces(smollm2_tokenizer, [smollm2_tokenizer.eos_token_id])
    ask = "Convert that NVDA price to euros and mail ana@example.com."
    bias = ArgumentBias(
        None, [ask], pieces, CallSteering(copy_bonus=4.0), schemas={"convert": CONVERT}
    )
    head = '<tool_call>\n{"name": "convert", "arguments": {'
    assert bool(bias.favoured(head + value)) is copies, value


CONTACTS = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "description": "recipient email address"},
        "phone": {"type": "string", "description": "phone number"},
        "day": {"type": "string", "description": "a date, YYYY-MM-DD"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{4}$"},
        "state": {"type": "string", "enum": ["on", "off"]},
        "task": {"type": "string", "description": "what to do"},
    },
}


def _bias(tokenizer: Any, said: str, steering: CallSteering | None = None) -> Any:
    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    pieces = token_pieces(tokenizer, [tokenizer.eos_token_id])
    return ArgumentBias(
        None, [said], pieces, steering or CallSteering(), schemas={"reach": CONTACTS}
    )


def _favoured(bias: Any, value: str) -> set[str]:
    head = '<tool_call>\n{"name": "reach", "arguments": {'
    return {bias.pieces.text[i] or "" for i in bias.favoured(head + value)}


def test_a_call_whose_first_argument_is_name_is_read() -> None:
    """An arguments object opening with the key ``name`` is not a call of its own: SmolLM2's
    "jonas_berg" for "Jonas Berg" got no bonus, the spot was never found."""
    spot = argument_spot('<tool_call>\n{"name": "find", "arguments": {"name": "Jon')
    assert (spot.kind, spot.partial, spot.tool, spot.keys) == ("string", "Jon", "find", ("name",))
    done = '{"name": "find", "arguments": {"name": "Jonas"}}'
    assert argument_spot(done).kind == ""
    assert argument_spot(done + ' {"name": "find", "arguments": {"name": "A').partial == "A"


@pytest.mark.parametrize(
    ("said", "value", "first"),
    [
        ("Mail Tom at tom.h@example.com today.", '"to": "', "tom"),  # the address, not its domain
        ("Text +44 7700 900123 saying hi.", '"phone": "', "+"),  # the number, not an invented one
        ("Book it for 2025-03-21 at 15:45.", '"day": "', "2"),  # a template the description writes
        ("Ship item AB1234 and item 12.", '"code": "', "AB"),  # the key's pattern
    ],
)
def test_a_value_of_a_known_shape_copies_a_span_of_that_shape_from_its_start(
    smollm2_tokenizer: Any, said: str, value: str, first: str
) -> None:
    bias = _bias(smollm2_tokenizer, said)
    assert first in _favoured(bias, value)
    off = _bias(smollm2_tokenizer, said, CallSteering(shaped_spans=False))
    assert not _favoured(off, value)  # copy_from_start is off: no bonus before a value starts


def test_a_shaped_span_is_copied_whole(smollm2_tokenizer: Any) -> None:
    bias = _bias(smollm2_tokenizer, "Text +44 7700 900123 or mail tom.h@example.com today.")
    assert bias.anchored["reach"] == {"to": ["tom.h@example.com"], "phone": ["+44 7700 900123"]}
    inside = _favoured(bias, '"phone": "+44 7700')
    assert " " in inside and not any(t.startswith('"') for t in inside)  # no end at a space
    assert any(t.startswith('"') for t in _favoured(bias, '"phone": "+44 7700 900123'))
    assert not any(t.startswith(" ") for t in _favoured(bias, '"to": "tom.h@example'))


def test_a_listed_value_the_request_states_gets_the_bonus(smollm2_tokenizer: Any) -> None:
    assert "off" in _favoured(_bias(smollm2_tokenizer, "Lights off in the hall."), '"state": "')
    assert not _favoured(_bias(smollm2_tokenizer, "Lights in the hall."), '"state": "')
    off = _bias(smollm2_tokenizer, "Lights off in the hall.", CallSteering(stated_choices=False))
    assert not _favoured(off, '"state": "')


def test_a_value_does_not_echo_the_schema_unless_the_request_states_it(
    smollm2_tokenizer: Any,
) -> None:
    """SmolLM2-135M wrote {"task": "add_todo"} for "Put renew my passport on my todo list."."""
    head = '<tool_call>\n{"name": "reach", "arguments": {"task": "'
    bias = _bias(smollm2_tokenizer, "Put renew my passport on my list.")
    echoed = {bias.pieces.text[i] for i in bias.echoing(argument_spot(head))}
    assert {"reach", "task", "what"} <= echoed
    assert not {"re", "ta", "Put", "renew"} & echoed  # too short to tell, or stated
    stated = _bias(smollm2_tokenizer, "Reach out on my task list: what to do.")
    assert not stated.echoing(argument_spot(head))


class _Greedy:
    def pick(self, logits: Any, params: Any, *rest: Any) -> int:
        return int(logits.argmax())


@pytest.mark.parametrize(("penalty", "echoes"), [(8.0, False), (0.0, True)])
def test_the_echo_penalty_moves_the_pick_off_the_schema_text(
    smollm2_tokenizer: Any, penalty: float, echoes: bool
) -> None:
    import torch

    said = "Put renew my passport on my list."
    bias = _bias(smollm2_tokenizer, said, CallSteering(echo_penalty=penalty))
    bias.inner = _Greedy()
    bias.written = '<tool_call>\n{"name": "reach", "arguments": {"task": "'
    logits = torch.zeros(len(bias.pieces.text))
    task = bias.pieces.by_text["task"][0]
    logits[task] = 5.0
    assert (bias.pick(logits, None) == task) is echoes


def test_a_span_copied_in_lower_case_goes_on_in_lower_case(smollm2_tokenizer: Any) -> None:
    said = "Look up Jonas Berg in my contacts."
    assert " ber" in _favoured(_bias(smollm2_tokenizer, said), '"task": "jonas')
    kept = _bias(smollm2_tokenizer, said, CallSteering(keep_case=False))
    assert " ber" not in _favoured(kept, '"task": "jonas')
    assert " Ber" in _favoured(kept, '"task": "jonas')


MEASURE = {
    "type": "object",
    "properties": {
        "weight_kg": {"type": "number", "description": "weight in kilograms"},
        "height_m": {"type": "number", "description": "height in metres"},
        "rate": {"type": "number", "description": "yearly interest rate in percent"},
        "years": {"type": "integer", "description": "number of years"},
    },
}
SUM = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
}


def _numbers_favoured(tokenizer: Any, said: str, value: str, **steering: Any) -> set[str]:
    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    pieces = token_pieces(tokenizer, [tokenizer.eos_token_id])
    bias = ArgumentBias(
        None,
        [said],
        pieces,
        CallSteering(**steering),
        schemas={"measure": MEASURE, "add": SUM},
    )
    bias.written = value
    return {pieces.text[i] or "" for i in bias.favoured(value)}


@pytest.mark.parametrize(
    ("value", "first", "not_first"),
    [
        ('"weight_kg": ', "5", "1"),  # "58 kg": the key's own unit word, not the first number
        ('"height_m": ', "1", "5"),  # "1.62 metres", not 58 copied again
        ('"rate": ', "5", "0"),  # "5%": a rate in percent, not an invented 0.05
        ('"years": ', "1", "5"),  # "10 years", though "yearly" is in the rate's description
    ],
)
def test_a_number_value_copies_the_stated_number_its_unit_word_names(
    smollm2_tokenizer: Any, value: str, first: str, not_first: str
) -> None:
    """SmolLM2-135M wrote {"weight_kg": 1.62, "height_m": 1.62} for "58 kg and 1.62 metres"
    and a rate of 0.05 for "5% a year"."""
    said = "I weigh 58 kg and I'm 1.62 metres tall; 5% a year for 10 years."
    head = '<tool_call>\n{"name": "measure", "arguments": {' + value
    favoured = _numbers_favoured(smollm2_tokenizer, said, head)
    assert first in favoured and not_first not in favoured, favoured
    # without it (copy_from_start off) no number is steered before it starts
    assert not _numbers_favoured(smollm2_tokenizer, said, head, stated_numbers=False)


def test_a_number_is_copied_whole_and_not_twice(smollm2_tokenizer: Any) -> None:
    said = "Add 35 and 4 please."
    head = '<tool_call>\n{"name": "add", "arguments": {"a": 35, "b": '
    favoured = _numbers_favoured(smollm2_tokenizer, said, head)
    assert "4" in favoured and "3" not in favoured, favoured  # a has taken 35
    inside = _numbers_favoured(smollm2_tokenizer, said, '{"name": "add", "arguments": {"a": 3')
    assert "5" in inside and not any(t[0] in ",}" for t in inside)  # "3" is no number said


LENGTH = {
    "type": "object",
    "properties": {
        "value": {"type": "number", "description": "the length"},
        "from_unit": {"type": "string", "description": "unit to convert from"},
        "to_unit": {"type": "string", "description": "unit to convert to"},
    },
}


@pytest.mark.parametrize(
    ("said", "units"),
    [
        ("How many centimetres are 12 inches?", {"from_unit": ["in"], "to_unit": ["cm"]}),
        ("Convert 5 kilometres to miles.", {"from_unit": ["km"], "to_unit": ["mi"]}),
        ("300 feet in m?", {"from_unit": ["ft"], "to_unit": ["m"]}),
    ],
)
def test_a_unit_word_names_a_listed_unit_in_the_direction_the_request_says(
    said: str, units: dict[str, list[str]]
) -> None:
    """SmolLM2-135M wrote {"from_unit": "cm", "to_unit": "cm"} for "How many centimetres are
    12 inches?", and the tool description's whole list ("km, mi, m, ft, in, cm") as a unit."""
    from agentcore.backends._call_decoding import _anchored_spans

    told = "Convert a length between units (km, mi, m, ft, in, cm)."
    assert _anchored_spans(LENGTH, [said], CallSteering(), told) == units
    assert not _anchored_spans(LENGTH, [said], CallSteering(named_choices=False), told)


def test_a_number_no_unit_word_names_comes_from_the_latest_message(smollm2_tokenizer: Any) -> None:
    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    tip = {
        "type": "object",
        "properties": {
            "bill": {"type": "number", "description": "bill total"},
            "percent": {"type": "number", "description": "tip percentage"},
        },
    }
    said = ["Convert 250 euros to dollars.", '{"amount": 871.3}', "A 15% tip on that amount?"]
    pieces = token_pieces(smollm2_tokenizer, [smollm2_tokenizer.eos_token_id])
    bias = ArgumentBias(None, said, pieces, CallSteering(), schemas={"tip": tip})
    bias.written = '{"name": "tip", "arguments": {"bill": '
    favoured = {pieces.text[i] for i in bias.favoured(bias.written)}
    assert "8" in favoured and not {"2", "1"} & favoured, favoured


class _Greedy:
    """The inner sampler: the best token the grammar's mask admits."""

    def pick(self, logits: Any, params: Any, recent: Any = (), allowed: Any = None, reply=()):
        import torch

        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        return int(torch.argmax(logits))


def test_a_value_ends_where_the_model_ends_it_for_an_unasked_key(smollm2_tokenizer: Any) -> None:
    """Where the model ends a string value to open a key the request does not ask for, the
    value still ends: the close takes the comma's score. Qwen2.5-Coder-0.5B scored '",' far
    over ' in' after "falcon"; with the comma pushed out and the close at its own low score it
    wrote the query on as "falcon in any of my files"."""
    import torch

    from agentcore.backends._call_decoding import ArgumentBias, token_pieces

    pieces = token_pieces(smollm2_tokenizer, [smollm2_tokenizer.eos_token_id])
    search = {
        "type": "object",
        "properties": {"query": {"type": "string"}, "path": {"type": "string"}},
        "required": ["query"],
    }
    ask = "Is the word falcon in any of my files?"
    bias = ArgumentBias(
        _Greedy(),
        [ask],
        pieces,
        CallSteering(),
        schemas={"search_files": search},
        words=ask.split(),
    )
    bias.written = '<tool_call>\n{"name": "search_files", "arguments": {"query": "falcon'
    logits = torch.zeros(len(pieces.text))
    token = {t: pieces.by_text[t][0] for t in ('",', " in", '"}', "}")}
    logits[token['",']] = 16.8  # the model ends the value here, to open another key
    logits[token[" in"]] = 12.2  # going on copies the request: the copy bonus favours it
    logits[token['"}']] = 10.0
    allowed = torch.zeros(len(pieces.text), dtype=torch.bool)
    allowed[list(token.values())] = True
    allowed[token["}"]] = False  # the grammar: a string value ends with its quote
    picked = bias.pick(logits, None, allowed=allowed)
    assert pieces.text[picked] == '"}', pieces.text[picked]
    # a value the model goes on with is left to go on
    bias.written = '<tool_call>\n{"name": "search_files", "arguments": {"query": "falcon'
    logits[token['",']] = 11.0
    assert pieces.text[bias.pick(logits, None, allowed=allowed)] == " in"
