"""Import the tools of an MCP server (stdio subprocess, streamable HTTP, or in-process).

Owns :class:`MCPToolset`: an async context manager that connects with the ``mcp`` client,
lists the server's tools (all pages) and turns each into a :class:`~tools.Tool` whose
arguments are checked locally against the server's JSON Schema and whose call goes over the
connection. The tools work while the toolset is open. Remote side-effect claims are ignored
unless ``trust_metadata=True`` (MCP annotations are hints from a possibly untrusted server):
by default every imported tool is labelled with the caller's ``side_effects``. Never runs a
tool locally and never keeps a connection open after ``__aexit__``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import mcp_types as mt
from mcp import Client, StdioServerParameters
from mcp.server import Server

from agentcore.tools._arguments import JsonSchemaArguments
from agentcore.tools._errors import ErrorKind, RemoteToolError, ToolDefinitionError
from agentcore.tools._mcp_server import ERROR_KIND_META_KEY, SIDE_EFFECTS_META_KEY, WRAPPED_META_KEY
from agentcore.tools._meta import SideEffect, ToolLimits, normalize_side_effects
from agentcore.tools._registry import ToolRegistry
from agentcore.tools._result import ToolOutput
from agentcore.tools._tool import SideEffectsArg, Tool

__all__ = ["MCPToolset"]

_MAX_PAGES = 100
_KINDS: tuple[ErrorKind, ...] = ("not_found", "arguments", "timeout", "execution")


def _local_name(prefix: str, remote: str) -> str:
    return (prefix + re.sub(r"[^A-Za-z0-9_-]", "_", remote))[:64]


def _content_text(blocks: Iterable[Any]) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, mt.TextContent):
            parts.append(block.text)
        elif isinstance(block, mt.ImageContent | mt.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        else:
            parts.append(f"[{getattr(block, 'type', type(block).__name__)} content]")
    return "\n".join(parts)


def _side_effects_from(remote: mt.Tool) -> frozenset[SideEffect] | None:
    """What the server claims: our own ``_meta`` key first, then MCP annotations."""
    claimed = (remote.meta or {}).get(SIDE_EFFECTS_META_KEY)
    if isinstance(claimed, list):
        try:
            return normalize_side_effects(claimed)
        except ValueError:
            return None
    notes = remote.annotations
    if notes is None:
        return None
    effects: set[SideEffect] = set()
    if notes.read_only_hint:
        effects.add(SideEffect.READS)
    else:
        effects.add(SideEffect.WRITES)
    if notes.open_world_hint:
        effects.add(SideEffect.NETWORK)
    return frozenset(effects)


class MCPToolset:
    """The tools of one MCP server, usable inside ``async with``::

        async with MCPToolset.stdio("python", ["-m", "some_server"], prefix="fs_") as remote:
            registry.extend(remote.tools)
            result = await registry.call("fs_read", {"path": "x"})

    ``server``: a URL (streamable HTTP), :class:`mcp.StdioServerParameters` (a subprocess
    spoken to over stdin/stdout) or an in-process ``mcp`` server. ``prefix`` is prepended to
    every tool name (names are also made OpenAI-safe). ``side_effects`` labels every tool
    unless ``trust_metadata`` lets the server's own claims through. ``skipped`` lists the
    remote tools that could not be imported, with the reason. Enter and exit it in the same
    task (the ``mcp`` client holds anyio task groups).
    """

    def __init__(
        self,
        server: str | StdioServerParameters | Server[Any],
        *,
        prefix: str = "",
        side_effects: SideEffectsArg = SideEffect.EXECUTES,
        trust_metadata: bool = False,
        limits: ToolLimits = ToolLimits.DEFAULT,
        source: str | None = None,
    ) -> None:
        self._server = server
        self.prefix = prefix
        self.default_side_effects = normalize_side_effects(side_effects)
        self.trust_metadata = trust_metadata
        self.limits = limits
        self.source = source or (
            server if isinstance(server, str) else f"mcp:{getattr(server, 'name', 'stdio')}"
        )
        self.tools: list[Tool] = []
        self.skipped: dict[str, str] = {}
        self._client: Client | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Iterable[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **options: Any,
    ) -> MCPToolset:
        """Tools of a server started as a subprocess (``command args...``) over stdio."""
        params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )
        options.setdefault("source", f"mcp-stdio:{command}")
        return cls(params, **options)

    @classmethod
    def http(cls, url: str, **options: Any) -> MCPToolset:
        """Tools of a server reached over streamable HTTP at ``url`` (e.g. ``.../mcp``)."""
        return cls(url, **options)

    # -- connection --------------------------------------------------------------------------

    async def __aenter__(self) -> MCPToolset:
        client = Client(self._server)
        await client.__aenter__()
        self._client = client
        try:
            await self.refresh()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, tb)

    def _connected(self) -> Client:
        if self._client is None:
            raise RuntimeError("the MCP toolset is not connected; use it inside `async with`")
        return self._client

    async def refresh(self) -> list[Tool]:
        """List the server's tools again (all pages) and rebuild :attr:`tools`."""
        client = self._connected()
        remote: list[mt.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            remote.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        tools: list[Tool] = []
        self.skipped = {}
        seen: set[str] = set()
        for item in remote:
            try:
                built = self._import(item)
            except ToolDefinitionError as exc:
                self.skipped[item.name] = str(exc)
                continue
            if built.name in seen:
                self.skipped[item.name] = f"its local name {built.name!r} is already taken"
                continue
            seen.add(built.name)
            tools.append(built)
        self.tools = tools
        return tools

    def registry(self) -> ToolRegistry:
        """A registry holding the imported tools."""
        return ToolRegistry(self.tools)

    # -- one tool ----------------------------------------------------------------------------

    def _import(self, remote: mt.Tool) -> Tool:
        name = _local_name(self.prefix, remote.name)
        effects = self.default_side_effects
        if self.trust_metadata:
            effects = _side_effects_from(remote) or effects
        arguments = JsonSchemaArguments(remote.input_schema)
        remote_name = remote.name

        async def invoke(values: dict[str, Any]) -> ToolOutput:
            client = self._connected()
            result = await client.call_tool(remote_name, values)
            text = _content_text(result.content)
            if result.is_error:
                kind = (result.meta or {}).get(ERROR_KIND_META_KEY)
                raise RemoteToolError(name, text, kind if kind in _KINDS else "execution")
            value: Any = text
            if result.structured_content is not None:
                value = result.structured_content
                if (result.meta or {}).get(WRAPPED_META_KEY) and isinstance(value, dict):
                    value = value.get("result")
            return ToolOutput(value=value, text=text)

        return Tool(
            name=name,
            description=remote.description or remote.title or remote.name,
            arguments=arguments,
            invoke=invoke,
            is_async=True,
            side_effects=effects,
            limits=self.limits,
            tags={"mcp"},
            source=self.source,
        )
