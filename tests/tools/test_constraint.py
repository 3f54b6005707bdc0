"""GrammarConstraint: token masks from JSON Schema / Lark grammars, one step at a time.

Unit tests run on a tiny in-memory tokenizer; the ``slow`` class drives the real SmolLM2
tokenizer with random and adversarial token choices and checks that every finished answer
parses and validates against its schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import torch

from agentcore.core.constraint import (
    GrammarConstraint,
    GrammarError,
    TokenNotAllowedError,
    llguidance_tokenizer,
)

OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
    "required": ["a"],
    "additionalProperties": False,
}


def feed(constraint: GrammarConstraint, tokenizer: Any, text: str) -> None:
    for token in tokenizer.encode(text):
        constraint.advance(token)


class TestMask:
    def test_mask_is_bool_and_as_wide_as_the_logits(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        mask = constraint.allowed_tokens()
        assert mask.dtype == torch.bool
        assert mask.shape == (len(tiny_tokenizer),)
        wide = GrammarConstraint.from_json_schema(
            tiny_tokenizer, OBJECT_SCHEMA, vocab_size=len(tiny_tokenizer) + 77
        )
        wide_mask = wide.allowed_tokens()
        assert wide_mask.shape == (len(tiny_tokenizer) + 77,)
        assert not wide_mask[len(tiny_tokenizer) :].any()  # padding ids are never allowed
        assert torch.equal(wide_mask[: len(tiny_tokenizer)], mask)

    def test_first_token_must_open_the_object(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        allowed = constraint.allowed_tokens().nonzero().flatten().tolist()
        assert allowed
        for token in allowed:
            assert tiny_tokenizer.decode([token]).startswith("{")

    def test_returned_mask_is_a_copy(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        first = constraint.allowed_tokens()
        first[:] = True
        assert not constraint.allowed_tokens().all()


class TestEos:
    def test_only_eos_once_the_grammar_is_complete(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        feed(constraint, tiny_tokenizer, '{"a": 12}')
        assert constraint.is_finished()
        allowed = constraint.allowed_tokens().nonzero().flatten().tolist()
        assert allowed == [tiny_tokenizer.eos_token_id]
        constraint.advance(tiny_tokenizer.eos_token_id)
        assert constraint.is_finished()
        assert constraint.text() == '{"a": 12}'
        assert not constraint.allowed_tokens().any()
        with pytest.raises(TokenNotAllowedError, match="already finished"):
            constraint.advance(tiny_tokenizer.eos_token_id)

    def test_eos_is_refused_before_the_grammar_is_complete(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        feed(constraint, tiny_tokenizer, '{"a": 1')
        assert not constraint.is_finished()
        assert not constraint.allowed_tokens()[tiny_tokenizer.eos_token_id]
        with pytest.raises(TokenNotAllowedError, match="not complete yet"):
            constraint.advance(tiny_tokenizer.eos_token_id)

    def test_open_ended_text_allows_eos_and_more(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_grammar(tiny_tokenizer, "start: /[a-z ]+/")
        feed(constraint, tiny_tokenizer, "hello")
        mask = constraint.allowed_tokens()
        assert mask[tiny_tokenizer.eos_token_id]
        assert mask.sum() > 1
        assert constraint.is_accepting() and not constraint.is_finished()
        constraint.advance(tiny_tokenizer.eos_token_id)
        assert constraint.is_finished()
        assert constraint.text() == "hello"

    def test_custom_eos_ids(self, tiny_tokenizer: Any) -> None:
        endoftext = tiny_tokenizer.convert_tokens_to_ids("<|endoftext|>")
        constraint = GrammarConstraint.from_grammar(
            tiny_tokenizer, 'start: "yes"', eos_token_ids=[endoftext]
        )
        feed(constraint, tiny_tokenizer, "yes")
        assert constraint.allowed_tokens().nonzero().flatten().tolist() == [endoftext]


class TestAdvance:
    def test_rejected_token_names_itself_and_keeps_the_state(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        feed(constraint, tiny_tokenizer, '{"a": ')
        before = constraint.allowed_tokens()
        bad = tiny_tokenizer.encode('"')[0]  # a string where an integer must come
        with pytest.raises(TokenNotAllowedError, match=r"token \d+ \(b'\"'\) is not allowed after"):
            constraint.advance(bad)
        assert torch.equal(constraint.allowed_tokens(), before)
        feed(constraint, tiny_tokenizer, "7}")
        assert constraint.is_finished()

    def test_rejection_without_a_computed_mask(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_grammar(tiny_tokenizer, 'start: "yes" | "no"')
        with pytest.raises(TokenNotAllowedError):
            constraint.advance(tiny_tokenizer.encode("x")[0])
        feed(constraint, tiny_tokenizer, "no")
        assert constraint.is_finished()

    def test_out_of_vocabulary_ids(self, tiny_tokenizer: Any) -> None:
        vocab = len(tiny_tokenizer)
        constraint = GrammarConstraint.from_grammar(
            tiny_tokenizer, "start: /[a-z]+/", vocab_size=vocab + 10
        )
        with pytest.raises(TokenNotAllowedError, match="not a token of this tokenizer"):
            constraint.advance(vocab + 3)
        with pytest.raises(TokenNotAllowedError, match="outside the vocabulary"):
            constraint.advance(vocab + 10)
        with pytest.raises(TokenNotAllowedError, match="outside the vocabulary"):
            constraint.advance(-1)

    def test_reset_and_rollback(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        start = constraint.allowed_tokens()
        feed(constraint, tiny_tokenizer, '{"a": 5}')
        assert constraint.is_finished()
        constraint.rollback(1)
        assert not constraint.is_finished()
        assert constraint.text() == '{"a": 5'
        with pytest.raises(ValueError, match="num_tokens"):
            constraint.rollback(len(constraint.tokens) + 1)
        constraint.reset()
        assert constraint.tokens == []
        assert torch.equal(constraint.allowed_tokens(), start)

    def test_forced_tokens_spell_the_fixed_part(self, tiny_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_grammar(tiny_tokenizer, 'start: "hello world" /[0-9]/')
        forced = constraint.forced_tokens()
        assert tiny_tokenizer.decode(forced) == "hello world"
        for token in forced:
            constraint.advance(token)
        feed(constraint, tiny_tokenizer, "7")
        assert constraint.is_finished()


class TestConstruction:
    def test_bad_grammar_raises_grammar_error(self, tiny_tokenizer: Any) -> None:
        with pytest.raises(GrammarError, match="does not compile"):
            GrammarConstraint.from_grammar(tiny_tokenizer, "start: undefined_rule")

    def test_bad_schema_raises_grammar_error(self, tiny_tokenizer: Any) -> None:
        with pytest.raises(GrammarError):
            GrammarConstraint.from_json_schema(tiny_tokenizer, {"type": "no-such-type"})

    def test_unknown_keywords_fail_unless_lenient(self, tiny_tokenizer: Any) -> None:
        schema = {"type": "object", "properties": {"a": {"type": "string"}}, "x-unknown": 1}
        schema_bad = {"type": "string", "contentMediaType": "text/html", "dependentSchemas": {}}
        GrammarConstraint.from_json_schema(tiny_tokenizer, schema)
        with pytest.raises(GrammarError):
            GrammarConstraint.from_json_schema(tiny_tokenizer, schema_bad)
        GrammarConstraint.from_json_schema(tiny_tokenizer, schema_bad, lenient=True)

    def test_compact_layout_is_the_default(self, tiny_tokenizer: Any) -> None:
        compact = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA)
        with pytest.raises(TokenNotAllowedError):
            feed(compact, tiny_tokenizer, '{ "a":1}')
        loose = GrammarConstraint.from_json_schema(tiny_tokenizer, OBJECT_SCHEMA, compact=False)
        feed(loose, tiny_tokenizer, '{ "a":1}')
        assert loose.is_finished()

    def test_llguidance_tokenizer_is_built_once(self, tiny_tokenizer: Any) -> None:
        first = llguidance_tokenizer(tiny_tokenizer)
        assert llguidance_tokenizer(tiny_tokenizer) is first
        other_eos = llguidance_tokenizer(tiny_tokenizer, eos_token_ids=[0])
        assert other_eos is not first
        assert other_eos.eos_tokens == [0]

    def test_slow_tokenizers_are_refused(self) -> None:
        class NotFast:
            eos_token_id = 0

        with pytest.raises(TypeError, match="fast"):
            llguidance_tokenizer(NotFast())


SCHEMAS: dict[str, dict[str, Any]] = {
    "nested": {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 40},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                "required": ["name", "address"],
            },
            "active": {"type": "boolean"},
        },
        "required": ["user", "active"],
    },
    "enums": {
        "type": "object",
        "properties": {
            "unit": {"enum": ["celsius", "fahrenheit", "kelvin"]},
            "level": {"type": "string", "enum": ["low", "mid", "high"]},
            "flag": {"const": "on"},
        },
        "required": ["unit", "level", "flag"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
            "matrix": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
                "minItems": 1,
                "maxItems": 3,
            },
        },
        "required": ["tags", "matrix"],
    },
    "bounded_numbers": {
        "type": "object",
        "properties": {
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "temp": {"type": "number", "exclusiveMinimum": -50, "exclusiveMaximum": 60},
            "count": {"type": "integer", "minimum": -5, "maximum": 5},
        },
        "required": ["days", "ratio", "temp", "count"],
    },
    "optional_fields": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 30},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
            "offset": {"type": ["integer", "null"]},
            "mode": {"anyOf": [{"type": "string", "enum": ["fast", "exact"]}, {"type": "null"}]},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    "patterns": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "date": {"type": "string", "pattern": "^20[0-9]{2}-[01][0-9]-[0-3][0-9]$"},
            "slug": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,15}$"},
        },
        "required": ["code", "date", "slug"],
    },
    "refs": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
            }
        },
        "type": "object",
        "properties": {
            "start": {"$ref": "#/$defs/point"},
            "path": {"type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 3},
        },
        "required": ["start", "path"],
    },
}


@pytest.mark.slow
class TestRealTokenizer:
    """Random and adversarial walks over the real SmolLM2 vocabulary (49152 tokens)."""

    @pytest.mark.parametrize("name", sorted(SCHEMAS))
    @pytest.mark.parametrize("policy", ["random", "long", "short"])
    def test_every_walk_parses_and_validates(
        self, smollm2_tokenizer: Any, drive: Callable[..., str], name: str, policy: str
    ) -> None:
        schema = SCHEMAS[name]
        constraint = GrammarConstraint.from_json_schema(smollm2_tokenizer, schema)
        assert constraint.vocab_size == 49152
        for seed in range(4):
            text = drive(constraint, seed=seed, policy=policy, budget=40)
            value = json.loads(text)
            jsonschema.validate(value, schema)
            outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
            assert not re.search(r"\s", re.sub(r"[,:] ", "", outside_strings)), text

    def test_eos_is_the_only_choice_at_the_end(self, smollm2_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(smollm2_tokenizer, SCHEMAS["enums"])
        feed(constraint, smollm2_tokenizer, '{"unit": "kelvin", "level": "mid", "flag": "on"}')
        assert constraint.is_finished()
        allowed = constraint.allowed_tokens().nonzero().flatten().tolist()
        assert allowed == [smollm2_tokenizer.eos_token_id]

    def test_padded_logits_width(self, smollm2_tokenizer: Any) -> None:
        constraint = GrammarConstraint.from_json_schema(
            smollm2_tokenizer, SCHEMAS["enums"], vocab_size=49152 + 64
        )
        mask = constraint.allowed_tokens()
        assert mask.shape == (49216,)
        assert not mask[49152:].any()
