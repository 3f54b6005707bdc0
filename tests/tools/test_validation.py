"""Validation errors name the field, the value and the expectation, for both argument kinds:
pydantic-backed (local tools) and JSON-Schema-backed (imported tools)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from agentcore.tools import (
    MISSING,
    ArgumentProblem,
    JsonSchemaArguments,
    Tool,
    ToolArgumentError,
    ToolDefinitionError,
    tool,
)


class Address(BaseModel):
    city: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]


@tool
def book(
    guest: Annotated[str, Field(min_length=2, max_length=20)],
    nights: Annotated[int, Field(ge=1, le=14)],
    room: Literal["single", "double"] = "single",
    address: Address | None = None,
    tags: list[int] = [],  # noqa: B006 - pydantic copies defaults
    budget: float | None = None,
) -> str:
    """Book a room."""
    return "booked"


class Lowercase(BaseModel):
    """Store a lowercase word."""

    word: str

    @field_validator("word")
    @classmethod
    def must_be_lowercase(cls, value: str) -> str:
        if value != value.lower():
            raise ValueError("must be lowercase")
        return value


def problems(t: Tool, arguments: Any) -> list[ArgumentProblem]:
    with pytest.raises(ToolArgumentError) as info:
        t.validate(arguments)
    assert info.value.tool == t.name
    return list(info.value.problems)


def by_field(found: list[ArgumentProblem]) -> dict[str, ArgumentProblem]:
    return {p.field: p for p in found}


VALID = {"guest": "Ann", "nights": 2}


class TestPydanticArguments:
    def test_valid_arguments_pass(self) -> None:
        assert book.validate(VALID).nights == 2
        assert book.validate('{"guest": "Ann", "nights": 3}').nights == 3

    def test_missing_required_field(self) -> None:
        found = by_field(problems(book, {"guest": "Ann"}))
        assert found["nights"].value is MISSING
        assert found["nights"].expected == "an integer >= 1, <= 14 (required)"

    def test_out_of_bounds_names_field_value_and_bounds(self) -> None:
        (problem,) = problems(book, {**VALID, "nights": 20})
        assert problem == ArgumentProblem("nights", 20, "an integer >= 1, <= 14")
        assert problem.describe() == "nights: got 20; expected an integer >= 1, <= 14"

    def test_wrong_type(self) -> None:
        (problem,) = problems(book, {**VALID, "nights": "many"})
        assert (problem.field, problem.value) == ("nights", "many")
        assert problem.expected.startswith("an integer")

    def test_enum(self) -> None:
        (problem,) = problems(book, {**VALID, "room": "suite"})
        assert problem == ArgumentProblem("room", "suite", 'one of "single", "double"')

    def test_string_length(self) -> None:
        (problem,) = problems(book, {**VALID, "guest": "A"})
        assert problem == ArgumentProblem("guest", "A", "a string of 2 to 20 characters")

    def test_nested_field_path_and_pattern(self) -> None:
        (problem,) = problems(book, {**VALID, "address": {"city": "Rome", "zip": "12a"}})
        assert problem.field == "address.zip"
        assert problem.value == "12a"
        assert problem.expected == "a string matching the pattern '^\\\\d{5}$'"

    def test_missing_nested_field(self) -> None:
        (problem,) = problems(book, {**VALID, "address": {"zip": "12345"}})
        assert problem.field == "address.city"
        assert problem.value is MISSING
        assert problem.expected == "a string (required)"

    def test_list_item_path(self) -> None:
        (problem,) = problems(book, {**VALID, "tags": [1, "two", 3]})
        assert (problem.field, problem.value, problem.expected) == ("tags[1]", "two", "an integer")

    def test_union_branches_merge_into_one_problem(self) -> None:
        (problem,) = problems(book, {**VALID, "budget": "cheap"})
        assert problem == ArgumentProblem("budget", "cheap", "a number or null")

    def test_unknown_argument(self) -> None:
        (problem,) = problems(book, {**VALID, "night": 3})
        assert problem.field == "night"
        assert problem.expected == (
            "no argument named 'night'; allowed: guest, nights, room, address, tags, budget"
        )

    def test_custom_validator_message_is_kept(self) -> None:
        lower = Tool.from_model(Lowercase, lambda args: args.word)
        (problem,) = problems(lower, {"word": "Hello"})
        assert problem == ArgumentProblem("word", "Hello", "a string (must be lowercase)")

    def test_several_problems_in_schema_order(self) -> None:
        found = problems(book, {"nights": 0, "room": "x", "zzz": 1})
        assert [p.field for p in found] == ["guest", "nights", "room", "zzz"]

    def test_message_for_the_model(self) -> None:
        with pytest.raises(ToolArgumentError) as info:
            book.validate({"guest": "Ann", "nights": 99})
        assert str(info.value) == (
            "Invalid arguments for tool 'book':\n"
            "- nights: got 99; expected an integer >= 1, <= 14\n"
            "Call the tool again with corrected arguments."
        )

    def test_huge_values_are_shortened_in_messages(self) -> None:
        with pytest.raises(ToolArgumentError) as info:
            book.validate({**VALID, "guest": "x" * 10_000})
        assert len(str(info.value)) < 400


class TestArgumentText:
    def test_invalid_json_text(self) -> None:
        (problem,) = problems(book, '{"guest": "Ann", nights: 2}')
        assert problem.field == ""
        assert problem.expected.startswith("a JSON object (the text is not valid JSON")
        assert "(arguments): got" in problem.describe()

    def test_non_object(self) -> None:
        (problem,) = problems(book, "[1, 2]")
        assert problem == ArgumentProblem("", [1, 2], "a JSON object")

    def test_none_means_no_arguments(self) -> None:
        @tool
        def ping() -> str:
            """Ping."""
            return "pong"

        ping.validate(None)
        ping.validate("")
        by = by_field(problems(book, None))
        assert set(by) == {"guest", "nights"}


class TestJsonSchemaArguments:
    """The same cases against the exported schema, validated by jsonschema (as for tools
    imported over MCP): same fields, same values, same expectations."""

    @pytest.fixture
    def imported(self) -> Tool:
        return Tool(
            name="book",
            description="Book a room.",
            arguments=JsonSchemaArguments(book.parameters),
            invoke=lambda args: "booked",
        )

    @pytest.mark.parametrize(
        "arguments",
        [
            {"guest": "Ann"},
            {**VALID, "nights": 20},
            {**VALID, "room": "suite"},
            {**VALID, "guest": "A"},
            {**VALID, "address": {"city": "Rome", "zip": "12a"}},
            {**VALID, "address": {"zip": "12345"}},
            {**VALID, "tags": [1, "two", 3]},
            {**VALID, "budget": "cheap"},
            {**VALID, "night": 3},
            {"nights": 0, "room": "x", "zzz": 1},
        ],
    )
    def test_same_problems_as_pydantic(self, imported: Tool, arguments: dict[str, Any]) -> None:
        assert problems(imported, arguments) == problems(book, arguments)

    def test_valid_arguments_pass_unchanged(self, imported: Tool) -> None:
        assert imported.validate(VALID) == VALID

    def test_schema_must_describe_an_object(self) -> None:
        with pytest.raises(ToolDefinitionError, match="type 'object'"):
            JsonSchemaArguments({"type": "string"})
        with pytest.raises(ToolDefinitionError, match="invalid JSON Schema"):
            JsonSchemaArguments({"type": "object", "properties": {"a": {"type": 5}}})


def declared(schema: dict[str, Any]) -> Tool:
    return Tool(
        name="f",
        description="A declared tool.",
        arguments=JsonSchemaArguments(schema),
        invoke=lambda args: "ok",
    )


def two_strings(**rules: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        **rules,
    }


class TestRulesInMessages:
    """Each failing rule is in the message, on the field it concerns: in words where the schema
    description can say it, else in jsonschema's own words."""

    def test_unique_items(self) -> None:
        tags = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
        schema = {"type": "object", "properties": {"tags": tags}}
        (problem,) = problems(declared(schema), {"tags": ["a", "a"]})
        assert problem.field == "tags" and "no repeated items" in problem.expected

    def test_not(self) -> None:
        user = {"type": "string", "not": {"enum": ["root"]}}
        (problem,) = problems(
            declared({"type": "object", "properties": {"user": user}}), {"user": "root"}
        )
        assert problem.field == "user" and problem.expected == 'a string but not one of "root"'

    def test_dependent_required_names_the_missing_key(self) -> None:
        schema = two_strings(dependentRequired={"a": ["b"]})
        (problem,) = problems(declared(schema), {"a": "x"})
        assert problem == ArgumentProblem("b", MISSING, "a string (required when 'a' is given)")

    def test_min_properties(self) -> None:
        (problem,) = problems(declared(two_strings(minProperties=1)), {})
        assert problem.field == "" and "with at least 1 key" in problem.expected

    def test_root_any_of_required(self) -> None:
        schema = two_strings(anyOf=[{"required": ["a"]}, {"required": ["b"]}])
        (problem,) = problems(declared(schema), {})
        assert problem.expected == "an object with key a or an object with key b"

    def test_then_required_is_described_by_the_object_property(self) -> None:
        schema = {
            "type": "object",
            "properties": {"kind": {"enum": ["a", "b"]}, "x": {"type": "integer"}},
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]},
        }
        (problem,) = problems(declared(schema), {"kind": "a"})
        assert problem == ArgumentProblem("x", MISSING, "an integer (required)")

    def test_other_rules_quote_jsonschema(self) -> None:
        point = {"type": "array", "prefixItems": [{"type": "number"}] * 2, "items": False}
        nested = {
            "type": "object",
            "properties": {"p": {"type": "object", "properties": {"pt": point}}},
        }
        (problem,) = problems(declared(nested), {"p": {"pt": [1, 2, 3]}})
        assert problem.field == "p.pt"
        assert problem.expected == "a list (Expected at most 2 items but found 1 extra: 3)"
        contains = {"type": "array", "contains": {"const": 1}}
        found = problems(declared({"type": "object", "properties": {"c": contains}}), {"c": [2]})
        assert found[0].field == "c" and "does not contain items" in found[0].expected

    def test_draft4_boolean_exclusive_minimum(self) -> None:
        n = {"type": "number", "minimum": 0, "exclusiveMinimum": True}
        schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}
        (problem,) = problems(declared({**schema, "properties": {"n": n}}), {"n": 0})
        assert problem.expected == "a number > 0"
