"""Assemble the built-in tools a configuration asks for into one registry.

Owns :func:`default_tools`: the pure tools always, files only with a workspace, HTTP only with
an allowlist, memory and plan tools only with a store / plan object. Never enables a tool with
side effects the caller did not ask for by passing its resource.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from agentcore.tools._registry import ToolRegistry
from agentcore.tools.builtin._calculator import calculator_tool
from agentcore.tools.builtin._clock import clock_tool
from agentcore.tools.builtin._files import file_tools
from agentcore.tools.builtin._http import http_get_tool
from agentcore.tools.builtin._memory import MemoryStoreLike, memory_tools
from agentcore.tools.builtin._plan import PlanLike, plan_tools
from agentcore.tools.builtin._process import process_tools
from agentcore.tools.builtin._workspace import Workspace

__all__ = ["default_tools"]


def default_tools(
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    allow_write: bool = True,
    allowed_hosts: Iterable[str] | None = None,
    memory: MemoryStoreLike | None = None,
    plan: PlanLike | None = None,
    agent: str = "agent",
    allow_exec: bool = False,
) -> ToolRegistry:
    """``calculate`` and ``current_time``, plus the file tools when ``workspace`` is given,
    ``http_get`` when ``allowed_hosts`` is given, and the memory / plan tools when a store /
    plan is given (``agent`` names the author of remembered records)."""
    registry = ToolRegistry([calculator_tool(), clock_tool()])
    if workspace is not None:
        registry.extend(file_tools(workspace, allow_write=allow_write))
        if allow_exec:
            registry.extend(process_tools(workspace))
    if allowed_hosts is not None:
        registry.register(http_get_tool(allowed_hosts))
    if memory is not None:
        registry.extend(memory_tools(memory, agent=agent))
    if plan is not None:
        registry.extend(plan_tools(plan))
    return registry
