"""Defining tools: the exported schema says exactly what the function or model declares."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from agentcore.tools import SideEffect, Tool, ToolDefinitionError, ToolLimits, tool


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Opaque:
    """A type pydantic cannot describe."""


class Address(BaseModel):
    street: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]


@tool
def forecast(
    city: str,
    days: Annotated[int, Field(ge=1, le=14)] = 3,
    unit: Unit = Unit.CELSIUS,
    mode: Literal["brief", "full"] = "brief",
    tags: list[str] | None = None,
    address: Address | None = None,
    ratio: float = 0.5,
    verbose: bool = False,
) -> str:
    """Forecast the weather.

    Uses the fake weather service.

    Args:
        city: Name of the city.
        days: How many days,
            counted from today.
        unit: Temperature unit.
    """
    return f"{city} {days} {unit.value} {mode} {tags} {address} {ratio} {verbose}"


class TestSchemaFromFunction:
    def test_schema_lists_every_parameter_with_its_type(self) -> None:
        schema = forecast.parameters
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert list(schema["properties"]) == [
            "city",
            "days",
            "unit",
            "mode",
            "tags",
            "address",
            "ratio",
            "verbose",
        ]
        assert schema["required"] == ["city"]
        props = schema["properties"]
        assert props["city"] == {"type": "string", "description": "Name of the city."}
        assert props["days"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 14,
            "default": 3,
            "description": "How many days, counted from today.",
        }
        assert props["mode"] == {"type": "string", "enum": ["brief", "full"], "default": "brief"}
        assert props["ratio"] == {"type": "number", "default": 0.5}
        assert props["verbose"] == {"type": "boolean", "default": False}
        assert props["tags"]["anyOf"] == [
            {"type": "array", "items": {"type": "string"}},
            {"type": "null"},
        ]
        unit_ref = props["unit"]["$ref"]
        assert schema["$defs"][unit_ref.rsplit("/", 1)[1]]["enum"] == ["celsius", "fahrenheit"]
        address = schema["$defs"]["Address"]
        assert address["properties"]["zip"] == {"type": "string", "pattern": r"^\d{5}$"}
        assert address["required"] == ["street", "zip"]

    def test_no_title_noise_but_property_names_survive(self) -> None:
        @tool
        def note(title: str, schema: str = "", json: int = 0) -> str:
            """Write a note."""
            return f"{title}|{schema}|{json}"

        props = note.parameters["properties"]
        assert list(props) == ["title", "schema", "json"]
        assert "title" not in props["title"]
        assert note.parameters["required"] == ["title"]
        result = note.run_sync({"title": "t", "schema": "s", "json": 2})
        assert result.ok and result.value == "t|s|2"

    def test_description_and_export_formats(self) -> None:
        assert forecast.name == "forecast"
        assert forecast.description == "Forecast the weather.\n\nUses the fake weather service."
        assert forecast.json_schema() == {
            "name": "forecast",
            "description": forecast.description,
            "parameters": forecast.parameters,
        }
        assert forecast.openai_tool() == {"type": "function", "function": forecast.json_schema()}

    def test_sphinx_and_numpy_docstrings(self) -> None:
        @tool
        def sphinx(a: int, b: str) -> str:
            """Join things.

            :param a: The number.
            :param str b: The text,
                continued.
            :returns: joined
            """
            return f"{a}{b}"

        @tool
        def numpy_style(a: int) -> int:
            """Double a number.

            Parameters
            ----------
            a : int
                The number to double.

            Returns
            -------
            int
            """
            return 2 * a

        assert sphinx.parameters["properties"]["a"]["description"] == "The number."
        assert sphinx.parameters["properties"]["b"]["description"] == "The text, continued."
        assert sphinx.description == "Join things."
        assert numpy_style.parameters["properties"]["a"]["description"] == "The number to double."
        assert numpy_style.description == "Double a number."

    def test_annotated_description_wins_over_docstring(self) -> None:
        @tool
        def f(x: Annotated[int, Field(description="from Field")]) -> int:
            """Do it.

            Args:
                x: from docstring
            """
            return x

        assert f.parameters["properties"]["x"]["description"] == "from Field"

    def test_field_default_in_signature(self) -> None:
        @tool
        def f(x: int = Field(5, ge=0, le=9)) -> int:
            """Do it.

            Args:
                x: A digit.
            """
            return x

        assert f.parameters["properties"]["x"] == {
            "type": "integer",
            "minimum": 0,
            "maximum": 9,
            "default": 5,
            "description": "A digit.",
        }
        assert f.run_sync({}).value == 5

    def test_positional_only_parameters(self) -> None:
        @tool
        def div(a: float, b: float, /, digits: int = 2) -> float:
            """Divide a by b."""
            return round(a / b, digits)

        assert div.run_sync({"a": 1, "b": 3}).value == 0.33


class TestToolFromModel:
    def test_model_is_the_schema_and_fn_gets_an_instance(self) -> None:
        class SendEmail(BaseModel):
            """Send an email to one recipient."""

            model_config = ConfigDict(extra="forbid")
            to: Annotated[str, Field(pattern=r"^[^@]+@[^@]+$", description="Recipient.")]
            subject: str
            cc: list[str] = []

        seen: list[SendEmail] = []

        def send(args: SendEmail) -> str:
            seen.append(args)
            return "sent"

        email = Tool.from_model(SendEmail, send, side_effects=["network", "writes"])
        assert email.name == "send_email"
        assert email.description == "Send an email to one recipient."
        assert email.parameters["properties"]["to"]["description"] == "Recipient."
        assert email.parameters["required"] == ["to", "subject"]
        assert email.side_effects == {SideEffect.NETWORK, SideEffect.WRITES}
        result = email.run_sync({"to": "a@b.c", "subject": "hi"})
        assert result.ok and result.value == "sent"
        assert isinstance(seen[0], SendEmail) and seen[0].cc == []

    def test_model_without_docstring_needs_a_description(self) -> None:
        class Bare(BaseModel):
            x: int

        with pytest.raises(ToolDefinitionError, match="no description"):
            Tool.from_model(Bare, lambda args: args.x)
        made = Tool.from_model(Bare, lambda args: args.x, description="Echo x.", name="echo_x")
        assert made.run_sync({"x": 4}).value == 4

    def test_not_a_model(self) -> None:
        with pytest.raises(ToolDefinitionError, match="pydantic model class"):
            Tool.from_model(dict, lambda args: args)  # type: ignore[arg-type]


class TestSyncAndAsync:
    def test_async_tool_runs_on_the_loop(self) -> None:
        @tool
        async def slow_echo(text: str) -> str:
            """Echo after a pause."""
            await asyncio.sleep(0.01)
            return text

        assert slow_echo.is_async
        assert slow_echo.run_sync({"text": "hi"}).value == "hi"
        assert asyncio.run(slow_echo.run({"text": "yo"})).value == "yo"

    def test_sync_tool_is_still_a_plain_callable(self) -> None:
        assert not forecast.is_async
        assert forecast("Rome", days=2) == "Rome 2 celsius brief None None 0.5 False"

    def test_run_sync_inside_a_loop_is_refused(self) -> None:
        async def inside() -> None:
            with pytest.raises(RuntimeError, match="use `await run`"):
                forecast.run_sync({"city": "x"})

        asyncio.run(inside())


class TestDefinitionErrors:
    def test_untyped_parameter(self) -> None:
        def f(x) -> int:  # type: ignore[no-untyped-def]
            """Doc."""
            return 1

        with pytest.raises(ToolDefinitionError, match="'x' has no type annotation"):
            tool(f)

    def test_var_args(self) -> None:
        def f(*values: int) -> int:
            """Doc."""
            return 1

        with pytest.raises(ToolDefinitionError, match=r"\*args/\*\*kwargs"):
            tool(f)

    def test_missing_description(self) -> None:
        def f(x: int) -> int:
            return x

        with pytest.raises(ToolDefinitionError, match="no description"):
            tool(f)
        assert tool(description="Identity.")(f).description == "Identity."

    @pytest.mark.parametrize("name", ["", "has space", "dotted.name", "x" * 65, "ünïcode"])
    def test_bad_names(self, name: str) -> None:
        with pytest.raises(ToolDefinitionError, match="tool name"):
            tool(name=name, description="d")(lambda: 1)

    def test_parameter_types_without_a_schema(self) -> None:
        def f(x: Opaque) -> int:
            """Doc."""
            return 1

        with pytest.raises(ToolDefinitionError, match="cannot be described as JSON Schema"):
            tool(f)

    def test_unresolvable_annotation(self) -> None:
        class Local(BaseModel):
            x: int

        def f(v: Local) -> int:  # a string annotation naming a local class
            """Doc."""
            return 1

        with pytest.raises(ToolDefinitionError, match="name 'Local' is not defined"):
            tool(f)


class TestMetadata:
    def test_side_effects_default_to_none(self) -> None:
        assert forecast.side_effects == {SideEffect.NONE}

    def test_side_effects_and_limits_from_options(self) -> None:
        @tool(side_effects=("reads", SideEffect.NETWORK), timeout_s=2.5, tags={"web"})
        def fetch(url: str) -> str:
            """Fetch."""
            return url

        assert fetch.side_effects == {SideEffect.READS, SideEffect.NETWORK}
        assert fetch.limits == ToolLimits(timeout_s=2.5, max_result_chars=8_000)
        assert fetch.tags == {"web"}
        assert "network" in repr(fetch)

    @pytest.mark.parametrize(
        ("effects", "message"),
        [
            ("deletes", "expected one of 'none', 'reads'"),
            (["none", "writes"], "'none' must stand alone"),
        ],
    )
    def test_bad_side_effects(self, effects: Any, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            tool(side_effects=effects, description="d", name="x")(lambda: 1)

    def test_limits_presets_and_checks(self) -> None:
        assert ToolLimits.FAST.timeout_s < ToolLimits.DEFAULT.timeout_s < ToolLimits.SLOW.timeout_s
        with pytest.raises(ValueError, match="timeout_s"):
            ToolLimits(timeout_s=0)
        with pytest.raises(ValueError, match="max_result_chars"):
            ToolLimits(max_result_chars=10)
