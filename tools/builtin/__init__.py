"""Built-in tools that are useful on day one.

Arithmetic (:func:`calculator_tool`), files confined to a workspace (:func:`file_tools`),
HTTP GET limited to an allowlist of hosts (:func:`http_get_tool`), the current time
(:func:`clock_tool`), long-term memory (:func:`memory_tools`, over any :class:`MemoryStoreLike`
such as ``memory.LongTermMemory``) and the plan (:func:`plan_tools`, over any :class:`PlanLike`
such as ``planners.TaskGraph``), commands and Python code in the sandbox
(:func:`process_tools`, opt-in). :func:`default_tools` assembles
the ones a configuration asks for. Each tool declares its side effects; none of them decides
whether it may run.
"""

from agentcore.tools.builtin._calculator import CalculatorError, calculator_tool, evaluate
from agentcore.tools.builtin._clock import clock_tool
from agentcore.tools.builtin._defaults import default_tools
from agentcore.tools.builtin._files import file_tools
from agentcore.tools.builtin._http import HostAllowlist, HostNotAllowedError, http_get_tool
from agentcore.tools.builtin._memory import (
    MemoryStoreLike,
    RecalledMemory,
    StoredMemory,
    memory_tools,
)
from agentcore.tools.builtin._plan import PlanLike, plan_tools
from agentcore.tools.builtin._process import process_tools
from agentcore.tools.builtin._workspace import Workspace, WorkspaceError

__all__ = [
    "CalculatorError",
    "HostAllowlist",
    "HostNotAllowedError",
    "MemoryStoreLike",
    "PlanLike",
    "RecalledMemory",
    "StoredMemory",
    "Workspace",
    "WorkspaceError",
    "calculator_tool",
    "clock_tool",
    "default_tools",
    "evaluate",
    "file_tools",
    "http_get_tool",
    "memory_tools",
    "plan_tools",
    "process_tools",
]
