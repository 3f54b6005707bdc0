"""Tools an agent can call: typed definitions, a registry, valid-by-construction calls, MCP.

Define a tool from a typed function (:func:`tool`) or a pydantic model
(:meth:`Tool.from_model`), collect tools in a :class:`ToolRegistry`, export them as JSON Schema
or OpenAI ``tools`` entries, and run calls with validation, timeouts and size limits
(:class:`ToolResult`). :func:`build_action_grammar` turns the permitted tools into the grammar
the model core decodes under, so every call parses and validates; :func:`parse_action` reads
the answer back and :func:`render_tools_prompt` writes the matching system-prompt section.
:class:`MCPToolset` imports the tools of an MCP server; :func:`mcp_server` exposes a registry as
one. Built-in tools live in :mod:`tools.builtin`.

Never decides whether a call is allowed: each tool declares its :class:`SideEffect` set and
limits, and the agent's safety filter decides; :func:`guarded` runs a call under the filter's
:class:`EffectGuard`, which sees every file, address and process the call touches;
:func:`run_sandboxed` is how a tool runs a command (resource limits, the file system confined
to the workspace, no network).
"""

from agentcore.tools._action import (
    Action,
    TextReply,
    ToolCall,
    format_tool_call,
    parse_action,
    parse_calls,
)
from agentcore.tools._arguments import ArgumentSpec, JsonSchemaArguments, PydanticArguments
from agentcore.tools._call_format import HERMES, LLAMA3, MISTRAL, CallFormat, detect_call_format
from agentcore.tools._decision import REQUEST_MARKER
from agentcore.tools._effects import (
    EffectDenied,
    EffectGuard,
    check_path,
    check_url,
    check_write,
    current_guard,
    guarded,
    install_effect_hook,
    path_visible,
)
from agentcore.tools._errors import (
    MISSING,
    ArgumentProblem,
    ErrorKind,
    RemoteToolError,
    ToolArgumentError,
    ToolCallParseError,
    ToolDefinitionError,
    ToolError,
    ToolExecutionError,
    ToolNotFoundError,
    ToolTimeoutError,
)
from agentcore.tools._grammar import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ActionSpace,
    ToolChoice,
    arguments_grammar_schema,
    build_action_grammar,
    resolve_action_space,
)
from agentcore.tools._mcp_client import MCPToolset
from agentcore.tools._mcp_server import (
    mcp_server,
    serve_stdio,
    serve_streamable_http,
    streamable_http_app,
    to_mcp_tool,
)
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._prompt import format_tool_result, format_tool_result_body, render_tools_prompt
from agentcore.tools._provenance import influenced, untrusted_influence
from agentcore.tools._regex import regex_risk
from agentcore.tools._registry import ToolRegistry
from agentcore.tools._result import ToolOutput, ToolResult
from agentcore.tools._sandbox import SandboxError, SandboxResult, run_sandboxed, sandbox_support
from agentcore.tools._sandbox_rules import SandboxLimits, SandboxRules
from agentcore.tools._tool import Tool, tool

__all__ = [
    "HERMES",
    "LLAMA3",
    "MISSING",
    "MISTRAL",
    "REQUEST_MARKER",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "Action",
    "ActionSpace",
    "ArgumentProblem",
    "ArgumentSpec",
    "CallFormat",
    "EffectDenied",
    "EffectGuard",
    "ErrorKind",
    "JsonSchemaArguments",
    "MCPToolset",
    "PydanticArguments",
    "RemoteToolError",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "SandboxRules",
    "SideEffect",
    "TextReply",
    "Tool",
    "ToolArgumentError",
    "ToolCall",
    "ToolCallParseError",
    "ToolChoice",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "ToolLimits",
    "ToolNotFoundError",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "ToolTimeoutError",
    "arguments_grammar_schema",
    "build_action_grammar",
    "check_path",
    "check_url",
    "check_write",
    "current_guard",
    "detect_call_format",
    "format_tool_call",
    "format_tool_result",
    "format_tool_result_body",
    "guarded",
    "influenced",
    "install_effect_hook",
    "mcp_server",
    "parse_action",
    "parse_calls",
    "path_visible",
    "regex_risk",
    "render_tools_prompt",
    "resolve_action_space",
    "run_sandboxed",
    "sandbox_support",
    "serve_stdio",
    "serve_streamable_http",
    "streamable_http_app",
    "to_mcp_tool",
    "tool",
    "untrusted_influence",
]
