"""MCP: a registry exposed as an MCP server and imported back gives the same schemas and the
same results: in-process, over stdio with a real subprocess, and over streamable HTTP with a
real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mcp_types as mt
import pytest
from mcp.server import Server

from agentcore.testing import serve_in_thread
from agentcore.tools import (
    MCPToolset,
    SideEffect,
    ToolRegistry,
    mcp_server,
    serve_streamable_http,
    streamable_http_app,
)

HERE = Path(__file__).parent
REPO = HERE.parent.parent

CALLS: list[tuple[str, Any]] = [
    ("order", {"items": [{"name": "tea", "quantity": 2}, {"name": "milk"}]}),
    ("order", {"items": [{"name": "tea", "quantity": 2}], "express": True}),
    ("lookup", {"word": "chat", "language": "fr"}),
    ("calculate", {"expression": "2 ** 10 / 4"}),
    ("calculate", {"expression": "1 / 0"}),  # the tool fails
    ("fail", {"reason": "out of stock"}),  # the tool raises
    ("order", {"items": [{"name": "tea", "quantity": 100}]}),  # invalid: quantity
    ("order", {"items": [], "coupon": "X"}),  # invalid: empty list, unknown key
    ("lookup", '{"word": "chat"}'),  # arguments as JSON text
    ("missing_tool", {}),
]


def demo_module() -> ModuleType:
    name = "tests_tools_mcp_demo_registry"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "mcp_demo_registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def local() -> ToolRegistry:
    registry: ToolRegistry = demo_module().build_registry()
    return registry


async def assert_round_trip(local: ToolRegistry, remote: MCPToolset) -> None:
    imported = remote.registry()
    assert imported.names() == local.names()
    assert imported.json_schemas() == local.json_schemas()
    assert imported.openai_tools() == local.openai_tools()
    for tool in imported:
        original = local.get(tool.name)
        assert tool.description == original.description
        assert tool.side_effects == original.side_effects  # trust_metadata=True
        assert tool.source != "local"
    for name, arguments in CALLS:
        here = await local.call(name, arguments)
        there = await imported.call(name, arguments)
        assert there.ok == here.ok, (name, here.content, there.content)
        assert there.content == here.content, name
        assert there.error_kind == here.error_kind, name
        if here.ok:
            assert there.value == here.value, name


class TestInProcess:
    async def test_round_trip(self, local: ToolRegistry) -> None:
        async with MCPToolset(mcp_server(local), trust_metadata=True) as remote:
            await assert_round_trip(local, remote)

    async def test_untrusted_servers_get_the_callers_label(self, local: ToolRegistry) -> None:
        async with MCPToolset(mcp_server(local), prefix="shop_") as remote:
            assert [t.name for t in remote.tools] == [
                "shop_order",
                "shop_lookup",
                "shop_fail",
                "shop_calculate",
            ]
            assert all(t.side_effects == {SideEffect.EXECUTES} for t in remote.tools)
            result = await remote.registry().call("shop_calculate", {"expression": "6 * 7"})
            assert result.content == "42"

    async def test_exported_annotations(self, local: ToolRegistry) -> None:
        async with MCPToolset(mcp_server(local)) as remote:
            client = remote._connected()
            listing = {t.name: t for t in (await client.list_tools()).tools}
        order = listing["order"].annotations
        lookup = listing["lookup"].annotations
        calculate = listing["calculate"].annotations
        assert order is not None and order.destructive_hint and not order.read_only_hint
        assert lookup is not None and lookup.open_world_hint and not lookup.destructive_hint
        assert calculate is not None and calculate.read_only_hint
        assert listing["lookup"].meta == {"agentcore/side_effects": ["network", "reads"]}

    async def test_foreign_server_tools(self) -> None:
        """A server that is not ours: odd names, a bad schema, annotations only, image content."""

        async def list_tools(ctx: Any, params: Any) -> mt.ListToolsResult:
            return mt.ListToolsResult(
                tools=[
                    mt.Tool(
                        name="files.read",
                        description="Read a file.",
                        input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
                        annotations=mt.ToolAnnotations(read_only_hint=True, open_world_hint=False),
                    ),
                    mt.Tool(name="broken", input_schema={"type": "object", "properties": 5}),
                    mt.Tool(name="snap", input_schema={"type": "object"}),
                ]
            )

        async def call_tool(ctx: Any, params: mt.CallToolRequestParams) -> mt.CallToolResult:
            if params.name == "snap":
                image = mt.ImageContent(data="aGVsbG8=", mime_type="image/png")
                return mt.CallToolResult(content=[mt.TextContent(text="a picture"), image])
            path = (params.arguments or {}).get("path")
            return mt.CallToolResult(content=[mt.TextContent(text=f"contents of {path}")])

        server: Server[Any] = Server("foreign", on_list_tools=list_tools, on_call_tool=call_tool)
        async with MCPToolset(server, trust_metadata=True) as remote:
            assert [t.name for t in remote.tools] == ["files_read", "snap"]
            assert "broken" in remote.skipped and "invalid JSON Schema" in remote.skipped["broken"]
            read = remote.tools[0]
            assert read.side_effects == {SideEffect.READS}
            assert read.description == "Read a file."
            registry = remote.registry()
            result = await registry.call("files_read", {"path": "a.txt"})
            assert result.content == "contents of a.txt" and result.value == "contents of a.txt"
            bad = await registry.call("files_read", {"path": 3})
            assert bad.error_kind == "arguments" and "path: got 3; expected a string" in bad.content
            snap = await registry.call("snap", {})
            assert snap.content == "a picture\n[image: image/png, 6 bytes]"

    async def test_tools_need_an_open_connection(self, local: ToolRegistry) -> None:
        toolset = MCPToolset(mcp_server(local))
        async with toolset:
            tool = toolset.tools[0]
        result = await tool.run({"items": [{"name": "x"}]})
        assert not result.ok and "not connected" in result.content


class TestRealTransports:
    async def test_stdio_subprocess(self, local: ToolRegistry) -> None:
        toolset = MCPToolset.stdio(
            sys.executable, [str(HERE / "mcp_demo_registry.py")], cwd=str(REPO), trust_metadata=True
        )
        async with toolset as remote:
            assert remote.source.startswith("mcp-stdio:")
            await assert_round_trip(local, remote)

    async def test_streamable_http_uvicorn(
        self,
        local: ToolRegistry,
    ) -> None:
        served: ToolRegistry = demo_module().build_registry()
        with serve_in_thread(streamable_http_app(served)) as base:
            url = f"{base}/mcp"
            async with MCPToolset.http(url, trust_metadata=True) as remote:
                assert remote.source == url
                await assert_round_trip(local, remote)


class TestServeHelper:
    async def test_serve_streamable_http(self, local: ToolRegistry) -> None:
        """``serve_streamable_http`` (uvicorn on a port number) until cancelled."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        task = asyncio.create_task(serve_streamable_http(local, port=port))
        try:
            for _ in range(300):
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                await asyncio.sleep(0.02)
            async with MCPToolset.http(f"http://127.0.0.1:{port}/mcp") as remote:
                result = await remote.registry().call("calculate", {"expression": "3 * 3"})
                assert result.content == "9"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
