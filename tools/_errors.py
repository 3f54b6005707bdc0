"""The errors of the tools package, written so that a small model can read and act on them.

Owns the exception hierarchy and :class:`ArgumentProblem` (one wrong field: where, what was
given, what was expected). Every message says what was wrong and what to do. Never catches
anything: raising is the callers', turning errors into results for the model is the registry's.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "MISSING",
    "ArgumentProblem",
    "ErrorKind",
    "RemoteToolError",
    "ToolArgumentError",
    "ToolCallParseError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "short_repr",
]

ErrorKind = Literal["not_found", "arguments", "timeout", "execution"]
"""Which stage of a call failed."""

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = 6
_short.maxdict = 6
_short.maxlevel = 3


def short_repr(value: Any) -> str:
    """A bounded ``repr`` for error messages (a 1 MB argument must not become a 1 MB error)."""
    return _short.repr(value)


class ToolError(Exception):
    """Base class of every error raised by the tools package.

    ``kind`` says which stage failed (``not_found``, ``arguments``, ``timeout``,
    ``execution``); a failed :class:`~tools.ToolResult` carries it as ``error_kind``.
    """

    kind: ErrorKind = "execution"


class ToolDefinitionError(ToolError, TypeError):
    """A tool cannot be built from what was given (untyped parameter, bad name, ...)."""


class ToolNotFoundError(ToolError, LookupError):
    """A call names a tool that is not registered (or not permitted here)."""

    kind = "not_found"

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = tuple(available)
        listed = ", ".join(self.available) if self.available else "(none)"
        super().__init__(f"unknown tool {name!r}; available tools: {listed}")


@dataclasses.dataclass(frozen=True)
class ArgumentProblem:
    """One thing wrong with a tool call's arguments.

    ``field`` is a dotted path into the arguments (``"address.zip"``, ``"tags[2]"``; the empty
    string is the arguments object itself), ``value`` the offending value (``MISSING`` when a
    required field is absent), ``expected`` a plain-words statement of what would be valid.
    """

    field: str
    value: Any
    expected: str

    def describe(self) -> str:
        where = self.field or "(arguments)"
        if self.value is MISSING:
            return f"{where}: missing; expected {self.expected}"
        return f"{where}: got {short_repr(self.value)}; expected {self.expected}"


class _Missing:
    """Marker for a required field that is absent (distinct from an explicit ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class ToolArgumentError(ToolError, ValueError):
    """The arguments of a call do not match the tool's schema.

    ``str(error)`` is the text handed back to the model: one line per problem, then how to
    retry. ``problems`` keeps the structured form for programs.
    """

    kind = "arguments"

    def __init__(self, tool: str, problems: Sequence[ArgumentProblem]) -> None:
        self.tool = tool
        self.problems = tuple(problems)
        lines = [f"Invalid arguments for tool {tool!r}:"]
        lines += [f"- {p.describe()}" for p in self.problems]
        lines.append("Call the tool again with corrected arguments.")
        super().__init__("\n".join(lines))


class ToolCallParseError(ToolError, ValueError):
    """Model output looked like a tool call but could not be read as one."""

    kind = "arguments"

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text
        super().__init__(
            f"could not read the tool call: {reason}; got {short_repr(text)}. Write exactly "
            '<tool_call>\\n{"name": "<tool name>", "arguments": {...}}\\n</tool_call>'
        )


class ToolTimeoutError(ToolError, TimeoutError):
    """A call ran past its tool's ``timeout_s``."""

    kind = "timeout"

    def __init__(self, tool: str, timeout_s: float) -> None:
        self.tool = tool
        self.timeout_s = timeout_s
        super().__init__(f"tool {tool!r} did not finish within {timeout_s:g} s and was abandoned")


class RemoteToolError(ToolError):
    """A tool on a remote (MCP) server reported a failure; the message is the server's text
    unchanged and ``kind`` the stage the server said failed."""

    def __init__(
        self,
        tool: str,
        message: str,
        kind: ErrorKind = "execution",
    ) -> None:
        self.tool = tool
        self.message = message
        self.kind = kind
        super().__init__(message)


class ToolExecutionError(ToolError, RuntimeError):
    """The tool itself failed; the message is what the tool (or the remote server) said."""

    def __init__(self, tool: str, message: str) -> None:
        self.tool = tool
        self.message = message
        super().__init__(f"tool {tool!r} failed: {message}")
