"""Real-world tool schemas through the path a client's call takes: a raw JSON Schema (an
OpenAI ``tools`` entry, an MCP ``inputSchema``) or a pydantic model -> tool -> action grammar
-> validation. A valid value must be writable under the grammar AND pass validation; an
invalid one must fail validation (the grammar refuses it too where it can express the rule)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from agentcore.core.constraint import GrammarConstraint, TokenNotAllowedError
from agentcore.tools import (
    JsonSchemaArguments,
    Tool,
    ToolArgumentError,
    ToolCallParseError,
    ToolDefinitionError,
    build_action_grammar,
    format_tool_call,
    parse_action,
)


def declared(schema: dict[str, Any], name: str = "f") -> Tool:
    """A tool declared by a client from a raw JSON Schema (what the server builds)."""
    return Tool(
        name=name,
        description="A declared tool.",
        arguments=JsonSchemaArguments(schema),
        invoke=lambda args: "ok",
    )


def grammar_accepts(tokenizer: Any, tool: Tool, arguments: dict[str, Any]) -> bool:
    """Whether a model decoding under the tool's action grammar can write this call."""
    constraint = GrammarConstraint.from_grammar(tokenizer, build_action_grammar([tool], "required"))
    try:
        for token in tokenizer.encode(format_tool_call(tool.name, arguments)):
            constraint.advance(token)
        constraint.advance(tokenizer.eos_token_id)
    except TokenNotAllowedError:
        return False
    return constraint.is_finished()


def validates(tool: Tool, arguments: dict[str, Any]) -> bool:
    try:
        tool.validate(arguments)
    except ToolArgumentError:
        return False
    return True


def assert_valid(tokenizer: Any, tool: Tool, *values: dict[str, Any]) -> None:
    for value in values:
        assert grammar_accepts(tokenizer, tool, value), f"grammar forbids valid {value}"
        assert validates(tool, value), f"validation rejects valid {value}"


def assert_invalid(tool: Tool, *values: dict[str, Any]) -> None:
    for value in values:
        assert not validates(tool, value), f"validation accepts invalid {value}"


def obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        schema["required"] = required
    return schema


class TestUnboundedValues:
    """No silent truncation: a string or array the schema leaves unbounded stays unbounded."""

    def test_long_string_without_max_length(self, tiny_tokenizer: Any) -> None:
        write = declared(obj({"path": {"type": "string"}, "content": {"type": "string"}}))
        assert_valid(tiny_tokenizer, write, {"path": "a.txt", "content": "x" * 500})

    def test_long_array_without_max_items(self, tiny_tokenizer: Any) -> None:
        ids = declared(obj({"ids": {"type": "array", "items": {"type": "integer"}}}, ["ids"]))
        assert_valid(tiny_tokenizer, ids, {"ids": list(range(50))})

    def test_declared_bounds_still_hold(self, tiny_tokenizer: Any) -> None:
        short = declared(obj({"s": {"type": "string", "maxLength": 4}}, ["s"]))
        assert_valid(tiny_tokenizer, short, {"s": "abcd"})
        assert not grammar_accepts(tiny_tokenizer, short, {"s": "abcde"})

    def test_a_call_cut_off_by_max_tokens_is_incomplete(self, tiny_tokenizer: Any) -> None:
        write = declared(obj({"content": {"type": "string"}}, ["content"]))
        constraint = GrammarConstraint.from_grammar(
            tiny_tokenizer, build_action_grammar([write], "required")
        )
        text = format_tool_call("f", {"content": "x" * 300})[:-40]  # the budget ran out here
        for token in tiny_tokenizer.encode(text):
            constraint.advance(token)
        assert not constraint.is_finished()
        assert not constraint.allowed_tokens()[tiny_tokenizer.eos_token_id]
        with pytest.raises(ToolCallParseError):
            parse_action(text)


def ref_schema(props: dict[str, Any], defs: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {**obj(props, required), "$defs": defs}


class TestComposition:
    """Objects inside ``allOf`` / ``anyOf`` / ``oneOf`` stay satisfiable exactly when the JSON
    Schema is: closing a branch must not forbid a key another part of the schema needs."""

    def test_root_all_of_two_objects_each_requiring_a_key(self, tiny_tokenizer: Any) -> None:
        both = declared(
            {
                "type": "object",
                "allOf": [
                    obj({"a": {"type": "string"}}, ["a"]),
                    obj({"b": {"type": "integer"}}, ["b"]),
                ],
            }
        )
        assert_valid(tiny_tokenizer, both, {"a": "x", "b": 1})
        assert_invalid(both, {"a": "x"}, {"b": 1})
        assert not grammar_accepts(tiny_tokenizer, both, {"a": "x", "b": 1, "c": 2})

    def test_nested_all_of(self, tiny_tokenizer: Any) -> None:
        both = obj({"a": {"type": "string"}}, ["a"]), obj({"b": {"type": "integer"}}, ["b"])
        nested = declared(obj({"p": {"allOf": list(both)}}, ["p"]))
        assert_valid(tiny_tokenizer, nested, {"p": {"a": "x", "b": 1}})
        assert_invalid(nested, {"p": {"a": "x"}})

    def test_all_of_refs_extending_a_base(self, tiny_tokenizer: Any) -> None:
        schema = ref_schema(
            {"pet": {"allOf": [{"$ref": "#/$defs/Named"}, {"$ref": "#/$defs/Aged"}]}},
            {
                "Named": obj({"name": {"type": "string"}}, ["name"]),
                "Aged": obj({"age": {}}, ["age"]),
            },
            ["pet"],
        )
        pets = declared(schema)
        assert_valid(tiny_tokenizer, pets, {"pet": {"name": "Rex", "age": 3}})
        assert_invalid(pets, {"pet": {"name": "Rex"}})

    def test_root_properties_with_one_of_branches_requiring_keys(self, tiny_tokenizer: Any) -> None:
        mode = declared(
            obj(
                {"mode": {"enum": ["x", "y"]}, "a": {"type": "string"}, "b": {"type": "integer"}},
                ["mode"],
                oneOf=[
                    {"properties": {"mode": {"const": "x"}}, "required": ["a"]},
                    {"properties": {"mode": {"const": "y"}}, "required": ["b"]},
                ],
            )
        )
        assert_valid(tiny_tokenizer, mode, {"mode": "x", "a": "s"}, {"mode": "y", "b": 1})
        assert_invalid(mode, {"mode": "x", "b": 1})
        assert not grammar_accepts(tiny_tokenizer, mode, {"mode": "x", "b": 1})

    def test_any_of_branches_without_type(self, tiny_tokenizer: Any) -> None:
        either = declared(
            obj(
                {"a": {"type": "string"}, "b": {"type": "integer"}},
                anyOf=[
                    {"properties": {"a": {"minLength": 1}}, "required": ["a"]},
                    {"required": ["b"]},
                ],
            )
        )
        assert_valid(tiny_tokenizer, either, {"a": "s"}, {"b": 1}, {"a": "s", "b": 1})
        assert_invalid(either, {})

    def test_required_key_without_a_properties_entry(self, tiny_tokenizer: Any) -> None:
        loose = declared(obj({"a": {"type": "string"}}, ["a", "b"]))
        assert_valid(tiny_tokenizer, loose, {"a": "x", "b": 1}, {"a": "x", "b": {"k": [1]}})
        assert_invalid(loose, {"a": "x"})
        assert not grammar_accepts(tiny_tokenizer, loose, {"a": "x", "b": 1, "c": 1})

    @pytest.mark.parametrize(
        "second",
        [
            obj({"a": {"type": "integer"}}),  # a must be a string and an integer
            obj({"b": {"type": "integer"}}, ["b"], additionalProperties=False),  # a is forbidden
        ],
    )
    def test_unsatisfiable_compositions_stay_unsatisfiable(self, second: dict[str, Any]) -> None:
        schema = {"type": "object", "allOf": [obj({"a": {"type": "string"}}, ["a"]), second]}
        with pytest.raises(ToolDefinitionError, match="unsatisfiable"):
            build_action_grammar([declared(schema)], "required")

    def test_discriminated_union_branches_stay_closed(self, tiny_tokenizer: Any) -> None:
        defs = {
            "Cat": obj({"kind": {"const": "cat"}, "meows": {"type": "integer"}}, ["kind", "meows"]),
            "Dog": obj({"kind": {"const": "dog"}, "barks": {"type": "integer"}}, ["kind", "barks"]),
        }
        union = {"oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]}
        pets = declared(ref_schema({"pet": union}, defs, ["pet"]))
        assert_valid(tiny_tokenizer, pets, {"pet": {"kind": "cat", "meows": 1}})
        assert_valid(tiny_tokenizer, pets, {"pet": {"kind": "dog", "barks": 2}})
        assert not grammar_accepts(tiny_tokenizer, pets, {"pet": {"kind": "cat", "barks": 1}})
        assert not grammar_accepts(
            tiny_tokenizer, pets, {"pet": {"kind": "cat", "meows": 1, "x": 1}}
        )


class TestFreeFormRoot:
    """A root object without declared properties takes any keys, like a nested one."""

    @pytest.mark.parametrize(
        "schema", [{"type": "object"}, {"type": "object", "required": ["query"]}]
    )
    def test_root_without_properties_is_free_form(
        self, tiny_tokenizer: Any, schema: dict[str, Any]
    ) -> None:
        loose = declared(schema)
        assert_valid(tiny_tokenizer, loose, {"query": "x", "n": 1, "nested": {"k": [1, None]}})

    def test_nested_object_without_properties_is_free_form(self, tiny_tokenizer: Any) -> None:
        meta = declared(obj({"meta": {"type": "object"}}, ["meta"]))
        assert_valid(tiny_tokenizer, meta, {"meta": {}}, {"meta": {"k": "v", "n": 1}})

    def test_declared_empty_properties_take_no_arguments(self, tiny_tokenizer: Any) -> None:
        ping = declared({"type": "object", "properties": {}})
        assert_valid(tiny_tokenizer, ping, {})
        assert not grammar_accepts(tiny_tokenizer, ping, {"x": 1})

    def test_exported_root_still_lists_properties(self) -> None:
        assert declared({"type": "object"}).parameters == {
            "type": "object",
            "properties": {},
            "additionalProperties": True,
        }


class Person(BaseModel):
    """Add a person and their friends."""

    name: str
    friends: list[Person] = []


class TestRootRef:
    """A schema whose root is a ``$ref`` (pydantic's form of a self-referential model)."""

    def test_self_referential_pydantic_model_is_a_tool(self, tiny_tokenizer: Any) -> None:
        add = Tool.from_model(Person, lambda person: person.name)
        assert add.parameters["type"] == "object"
        nested = {"name": "Ann", "friends": [{"name": "Bo", "friends": [{"name": "Cy"}]}]}
        assert_valid(tiny_tokenizer, add, {"name": "Ann"}, nested)
        assert add.validate(nested).friends[0].friends[0].name == "Cy"
        with pytest.raises(ToolArgumentError, match=r"friends\[0\]\.name: missing"):
            add.validate({"name": "Ann", "friends": [{"friends": []}]})
        assert not grammar_accepts(tiny_tokenizer, add, {"name": "Ann", "friends": [{}]})

    def test_raw_schema_with_a_root_ref(self, tiny_tokenizer: Any) -> None:
        raw = Person.model_json_schema()
        assert "$ref" in raw and "type" not in raw
        add = declared(raw)
        assert_valid(tiny_tokenizer, add, {"name": "Ann", "friends": [{"name": "Bo"}]})
        assert_invalid(add, {"name": "Ann", "friends": [{"friends": []}]})


class TestPatterns:
    """A ``pattern`` the grammar engine cannot compile is left out of the grammar only."""

    def test_back_reference_is_dropped_from_the_grammar_and_still_validated(
        self, tiny_tokenizer: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        twice = declared(obj({"s": {"type": "string", "pattern": "^(a+)-\\1$"}}, ["s"]), "twice")
        with caplog.at_level(logging.WARNING, logger="tools"):
            assert_valid(tiny_tokenizer, twice, {"s": "aa-aa"})
        assert_invalid(twice, {"s": "aa-a"})
        assert grammar_accepts(tiny_tokenizer, twice, {"s": "aa-a"})  # looser, never tighter
        warned = [r.getMessage() for r in caplog.records if "twice" in r.getMessage()]
        assert len(warned) == 1 and "backreferences" in warned[0]
        assert "pattern" in twice.parameters["properties"]["s"]  # the tool's schema keeps it

    def test_look_ahead_in_a_union_branch(self, tiny_tokenizer: Any) -> None:
        decimal_text = {"type": "string", "pattern": "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"}
        pay = declared(obj({"amount": {"anyOf": [{"type": "number"}, decimal_text]}}, ["amount"]))
        assert_valid(tiny_tokenizer, pay, {"amount": "1.50"}, {"amount": 1.5})
        assert_invalid(pay, {"amount": "abc"}, {"amount": "+."})

    def test_pattern_properties_key_with_look_around(self, tiny_tokenizer: Any) -> None:
        keyed = declared(
            {"type": "object", "patternProperties": {"^(?!_)\\w+$": {"type": "integer"}}}
        )
        assert_valid(tiny_tokenizer, keyed, {"n": 1})
        assert_invalid(keyed, {"n": "x"})


class TestFormats:
    """``format`` is checked for raw-schema tools: a wrong value names the field and format."""

    @pytest.mark.parametrize(
        ("fmt", "good", "bad"),
        [
            ("date-time", "2024-01-31T10:00:00Z", "yesterday"),
            ("date-time", "2024-01-31T10:00:00.123456+02:00", "2024-02-30T10:00:00Z"),
            ("date", "2024-01-31", "31/01/2024"),
            ("time", "10:00:00Z", "10am"),
            ("time", "23:59:59.5-05:00", "25:00:00"),
            ("email", "a@b.co", "nope"),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", "xyz"),
            ("uri", "https://example.com/a?b=c", "not a uri"),
            ("uri", "urn:isbn:0451450523", "/relative/path"),
            ("ipv4", "1.2.3.4", "999.1"),
            ("ipv6", "2001:db8::1", "1::2::3"),
        ],
    )
    def test_wrong_values_are_refused(
        self, tiny_tokenizer: Any, fmt: str, good: str, bad: str
    ) -> None:
        typed = declared(obj({"when": {"type": "string", "format": fmt}}, ["when"]))
        assert_valid(tiny_tokenizer, typed, {"when": good})
        with pytest.raises(ToolArgumentError) as info:
            typed.validate({"when": bad})
        (problem,) = info.value.problems
        assert problem.field == "when" and problem.value == bad
        assert f"in {fmt} format (e.g. " in problem.expected

    def test_pydantic_style_values_stay_valid(self) -> None:
        """Naive date-times and times without seconds, which pydantic servers accept."""
        typed = declared(
            obj({"at": {"type": "string", "format": "date-time"}, "t": {"format": "time"}})
        )
        assert validates(typed, {"at": "2024-01-31T10:00:00", "t": "10:00"})
        assert validates(typed, {"at": "2024-01-31 10:00"})

    def test_unknown_formats_are_annotations(self) -> None:
        typed = declared(obj({"p": {"type": "string", "format": "path"}}))
        assert validates(typed, {"p": "/tmp/x"})


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = obj({"c": schema}, ["c"])
    return schema


class _RawSpec:
    """An argument spec that hands over its schema unchecked (as a custom spec may)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def validate(self, tool: str, arguments: Any) -> Any:
        return arguments


class TestGrammarBuildErrors:
    """A tool whose schema cannot become a grammar is named in a short error."""

    def test_unsatisfiable_tool_is_named_without_a_grammar_dump(self) -> None:
        fine = obj({"q": {"type": "string", "description": "query " * 50}}, ["q"])
        tools = [declared(fine, f"t{i}") for i in range(5)]
        tools.insert(2, declared(obj({"e": {"enum": []}}, ["e"]), "broken_tool"))
        with pytest.raises(ToolDefinitionError) as info:
            build_action_grammar(tools, "auto")
        message = str(info.value)
        assert "'broken_tool'" in message and "unsatisfiable" in message
        assert len(message) < 400 and "%json" not in message and "query" not in message

    def test_too_deep_for_the_grammar_engine(self) -> None:
        with pytest.raises(ToolDefinitionError, match=r"'deep'.*nests too deeply"):
            build_action_grammar([declared(nested(70), "deep")], "required")

    def test_too_deep_for_python_is_a_clear_error(self) -> None:
        with pytest.raises(ToolDefinitionError, match="nests too deeply"):
            JsonSchemaArguments(nested(100))
        custom = Tool(name="deeper", description="d", arguments=_RawSpec(nested(400)), invoke=id)
        with pytest.raises(ToolDefinitionError, match=r"'deeper'.*nests too deeply"):
            build_action_grammar([custom], "required")

    def test_deeply_nested_arguments_are_an_argument_error(self) -> None:
        add = declared(Person.model_json_schema())
        value: dict[str, Any] = {"name": "a"}
        for _ in range(600):
            value = {"name": "a", "friends": [value]}
        with pytest.raises(ToolArgumentError, match="nested less deeply"):
            add.validate(value)
        assert not add.run_sync(value).ok
