"""The registry: registration, permitted subsets, export, and calls that never raise."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from agentcore.tools import (
    SideEffect,
    Tool,
    ToolDefinitionError,
    ToolNotFoundError,
    ToolOutput,
    ToolRegistry,
    tool,
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(side_effects="writes")
async def save(text: str) -> dict[str, Any]:
    """Save a text."""
    await asyncio.sleep(0)
    return {"saved": text, "length": len(text)}


@tool(side_effects=["reads", "network"])
def fetch(url: str) -> str:
    """Fetch a URL."""
    return f"<html>{url}</html>"


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([add, save, fetch])


class TestRegistration:
    def test_order_lookup_and_membership(self, registry: ToolRegistry) -> None:
        assert registry.names() == ["add", "save", "fetch"]
        assert len(registry) == 3 and "add" in registry and "nope" not in registry
        assert registry.get("save") is save
        assert [t.name for t in registry] == ["add", "save", "fetch"]

    def test_plain_functions_are_wrapped(self) -> None:
        def mul(a: int, b: int) -> int:
            """Multiply."""
            return a * b

        registry = ToolRegistry([mul])
        assert isinstance(registry.get("mul"), Tool)
        assert registry.call_sync("mul", {"a": 3, "b": 4}).value == 12

    def test_register_model(self) -> None:
        class Echo(BaseModel):
            """Echo a word."""

            word: str

        registry = ToolRegistry()
        registry.register_model(Echo, lambda args: args.word, side_effects="none")
        assert registry.call_sync("echo", {"word": "hi"}).value == "hi"

    def test_duplicates_and_replace(self, registry: ToolRegistry) -> None:
        with pytest.raises(ToolDefinitionError, match="already registered"):
            registry.register(add)
        other = tool(name="add", description="Other add.")(lambda: 0)
        registry.register(other, replace=True)
        assert registry.get("add") is other

    def test_unknown_names_list_what_exists(self, registry: ToolRegistry) -> None:
        with pytest.raises(
            ToolNotFoundError, match="unknown tool 'ad'; available tools: add, save, fetch"
        ):
            registry.get("ad")
        with pytest.raises(ToolNotFoundError):
            registry.remove("ad")
        assert registry.remove("add") is add
        assert registry.names() == ["save", "fetch"]


class TestSubsets:
    def test_subset_keeps_order_and_refuses_typos(self, registry: ToolRegistry) -> None:
        assert registry.subset(["fetch", "add"]).names() == ["add", "fetch"]
        assert registry.subset(None).names() == registry.names()
        with pytest.raises(ToolNotFoundError, match="'fecth'"):
            registry.subset(["fecth"])

    def test_filter_by_side_effects(self, registry: ToolRegistry) -> None:
        assert registry.without_side_effects("writes").names() == ["add", "fetch"]
        assert registry.without_side_effects(SideEffect.NETWORK, "writes").names() == ["add"]
        assert registry.filter(lambda t: SideEffect.NONE in t.side_effects).names() == ["add"]


class TestExport:
    def test_json_schemas_and_openai_tools(self, registry: ToolRegistry) -> None:
        schemas = registry.json_schemas()
        assert schemas["add"] == {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        }
        entries = registry.openai_tools()
        assert [e["function"]["name"] for e in entries] == ["add", "save", "fetch"]
        assert entries[0] == {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": schemas["add"],
            },
        }


class TestCalls:
    async def test_sync_and_async_tools(self, registry: ToolRegistry) -> None:
        result = await registry.call("add", {"a": 2, "b": 3})
        assert result.ok and result.value == 5 and result.content == "5"
        assert result.error is None and result.error_kind is None and result.elapsed_s >= 0
        saved = await registry.call("save", '{"text": "hé"}')
        assert saved.value == {"saved": "hé", "length": 2}
        assert saved.content == '{"saved": "hé", "length": 2}'
        assert saved.arguments == {"text": "hé"}

    async def test_unknown_tool_is_a_result(self, registry: ToolRegistry) -> None:
        result = await registry.call("delete_everything", {})
        assert not result.ok and result.error_kind == "not_found"
        assert result.content == (
            "Error: unknown tool 'delete_everything'; available tools: add, save, fetch"
        )
        assert registry.call_sync("nope", None).error_kind == "not_found"

    async def test_bad_arguments_are_a_result(self, registry: ToolRegistry) -> None:
        result = await registry.call("add", {"a": "x"})
        assert not result.ok and result.error_kind == "arguments"
        assert "- a: got 'x'; expected an integer" in result.content
        assert "- b: missing; expected an integer (required)" in result.content

    async def test_exception_inside_the_tool(self) -> None:
        @tool
        def boom(x: int) -> int:
            """Explode."""
            raise ZeroDivisionError("no dividing today")

        result = await ToolRegistry([boom]).call("boom", {"x": 1})
        assert not result.ok and result.error_kind == "execution"
        assert result.content == "Error: tool 'boom' failed: ZeroDivisionError: no dividing today"
        assert isinstance(result.error.__cause__, ZeroDivisionError)  # type: ignore[union-attr]

    async def test_sync_timeout_returns_without_waiting(self) -> None:
        release = threading.Event()

        @tool(timeout_s=0.2)
        def hang() -> str:
            """Hang until released."""
            release.wait(10)
            return "late"

        started = time.perf_counter()
        result = await ToolRegistry([hang]).call("hang", {})
        assert time.perf_counter() - started < 2
        release.set()
        assert not result.ok and result.error_kind == "timeout"
        assert result.content == "Error: tool 'hang' did not finish within 0.2 s and was abandoned"

    async def test_async_timeout_cancels(self) -> None:
        cancelled = asyncio.Event()

        @tool(timeout_s=0.1)
        async def wait_forever() -> str:
            """Wait."""
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "never"

        result = await ToolRegistry([wait_forever]).call("wait_forever", {})
        assert result.error_kind == "timeout"
        assert cancelled.is_set()

    async def test_a_tools_own_timeout_is_an_execution_error(self) -> None:
        @tool(timeout_s=5)
        async def impatient() -> str:
            """Give up quickly on something slow."""
            await asyncio.wait_for(asyncio.sleep(1), 0.01)
            return "never"

        result = await ToolRegistry([impatient]).call("impatient", {})
        assert result.error_kind == "execution"
        assert result.content.startswith("Error: tool 'impatient' failed: TimeoutError")

    def test_sync_timeout_from_sync_code(self) -> None:
        release = threading.Event()

        @tool(timeout_s=0.1)
        def hang() -> str:
            """Hang."""
            release.wait(10)
            return "late"

        started = time.perf_counter()
        assert hang.run_sync({}).error_kind == "timeout"
        assert time.perf_counter() - started < 2  # the abandoned thread does not block exit
        release.set()

    async def test_sync_tools_do_not_block_the_loop(self) -> None:
        @tool
        def sleepy(seconds: float) -> float:
            """Sleep."""
            time.sleep(seconds)
            return seconds

        registry = ToolRegistry([sleepy])
        started = time.perf_counter()
        results = await asyncio.gather(
            *(registry.call("sleepy", {"seconds": 0.3}) for _ in range(4))
        )
        assert all(r.ok for r in results)
        assert time.perf_counter() - started < 1.0  # ran side by side, not one after another

    async def test_result_size_limit(self) -> None:
        @tool(max_result_chars=100)
        def big() -> str:
            """A lot of text."""
            return "x" * 1000

        result = await ToolRegistry([big]).call("big", {})
        assert result.ok and result.truncated and len(result.content) <= 100
        assert result.content.endswith("[... truncated 937 more characters]")
        assert result.value == "x" * 1000  # programs still get the whole value

    async def test_tool_output_separates_text_and_value(self) -> None:
        @tool
        def table() -> ToolOutput:
            """A table."""
            return ToolOutput(value={"rows": [1, 2]}, text="2 rows")

        result = await ToolRegistry([table]).call("table", {})
        assert result.content == "2 rows" and result.value == {"rows": [1, 2]}

    async def test_values_render_as_json(self) -> None:
        class Point(BaseModel):
            x: int

        @tool
        def things() -> list[Any]:
            """Things."""
            return [Point(x=1), {2}, None, b"bytes"]

        result = await ToolRegistry([things]).call("things", {})
        assert result.content == '[{"x": 1}, [2], null, "bytes"]'
