"""Expose a tool registry as an MCP server (stdio or streamable HTTP).

Owns :func:`mcp_server` (a low-level ``mcp`` server whose ``tools/list`` is the registry's
schemas and whose ``tools/call`` runs :meth:`ToolRegistry.call`), :func:`serve_stdio` and
:func:`streamable_http_app` / :func:`serve_streamable_http`. Tool failures travel as
``isError`` results (so the calling model can correct itself), an unknown tool as a protocol
error. Each tool's side effects ride along in its ``_meta`` and as MCP annotations. Never
filters calls: whoever exposes a registry chooses which tools it holds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mcp_types as mt
import pydantic_core
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from agentcore.tools._meta import SideEffect
from agentcore.tools._registry import ToolRegistry
from agentcore.tools._tool import Tool

__all__ = [
    "ERROR_KIND_META_KEY",
    "SIDE_EFFECTS_META_KEY",
    "WRAPPED_META_KEY",
    "mcp_server",
    "serve_stdio",
    "serve_streamable_http",
    "streamable_http_app",
    "to_mcp_tool",
]

SIDE_EFFECTS_META_KEY = "agentcore/side_effects"
ERROR_KIND_META_KEY = "agentcore/error_kind"
WRAPPED_META_KEY = "agentcore/wrapped_result"  # structured content is {"result": value}


def to_mcp_tool(tool: Tool) -> mt.Tool:
    """The MCP description of a tool: schema, description, annotations and side effects."""
    effects = tool.side_effects
    changes = bool(effects & {SideEffect.WRITES, SideEffect.EXECUTES})
    annotations = mt.ToolAnnotations(
        read_only_hint=not changes and SideEffect.NETWORK not in effects,
        destructive_hint=changes,
        open_world_hint=SideEffect.NETWORK in effects,
    )
    return mt.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.parameters,
        annotations=annotations,
        _meta={SIDE_EFFECTS_META_KEY: sorted(e.value for e in effects)},
    )


def mcp_server(
    registry: ToolRegistry,
    *,
    name: str = "agentcore-tools",
    version: str = "",
    instructions: str | None = None,
) -> Server[Any]:
    """A low-level MCP server serving ``registry``'s tools (the registry is read live: tools
    added later are listed too)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        return mt.ListToolsResult(tools=[to_mcp_tool(t) for t in registry])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult:
        if params.name not in registry:
            raise MCPError(
                code=mt.INVALID_PARAMS,
                message=f"unknown tool {params.name!r}; available: {', '.join(registry.names())}",
            )
        result = await registry.call(params.name, params.arguments or {})
        if not result.ok:
            return mt.CallToolResult(
                content=[mt.TextContent(text=str(result.error))],
                is_error=True,
                _meta={ERROR_KIND_META_KEY: result.error_kind},
            )
        value = pydantic_core.to_jsonable_python(result.value, fallback=repr)
        if isinstance(value, dict):
            return mt.CallToolResult(
                content=[mt.TextContent(text=result.content)], structured_content=value
            )
        # Structured content must be an object before MCP 2026-07-28: wrap other values.
        return mt.CallToolResult(
            content=[mt.TextContent(text=result.content)],
            structured_content={"result": value},
            _meta={WRAPPED_META_KEY: True},
        )

    return Server(
        name,
        version=version,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(registry: ToolRegistry, *, name: str = "agentcore-tools") -> None:
    """Serve ``registry`` over this process's stdin/stdout until the client disconnects."""
    server = mcp_server(registry, name=name)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def streamable_http_app(
    registry: ToolRegistry,
    *,
    name: str = "agentcore-tools",
    path: str = "/mcp",
    host: str = "127.0.0.1",
    stateless: bool = False,
    json_response: bool = False,
) -> Starlette:
    """An ASGI app serving ``registry`` over MCP streamable HTTP at ``path`` (run it with
    uvicorn; ``host`` is the address it will be reached at, for DNS-rebinding protection)."""
    server = mcp_server(registry, name=name)
    return server.streamable_http_app(
        streamable_http_path=path, host=host, stateless_http=stateless, json_response=json_response
    )


async def serve_streamable_http(
    registry: ToolRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "agentcore-tools",
) -> None:
    """Serve ``registry`` over streamable HTTP with uvicorn until cancelled (cancelling shuts
    the server down cleanly before the cancellation propagates)."""
    import uvicorn

    app = streamable_http_app(registry, name=name, path=path, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        # Shut down cleanly (close the listening socket, end the MCP sessions), then stop.
        server.should_exit = True
        await serving
        raise
