"""Execution: run one approved tool call with its timeouts and hand back what it returned.

Owns :class:`Executor`: dispatch through the registry (which validates arguments and applies
the tool's own timeout and size limit), bounded further by the run's remaining time budget;
the output is redacted and cut to the policy's size before anyone sees it. Never decides
whether a call may run: it is only ever given calls the safety filter allowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from agentcore.tools import ToolRegistry

__all__ = ["Execution", "Executor"]


@dataclasses.dataclass(frozen=True)
class Execution:
    """One finished call as the agent sees it (output already redacted and cut)."""

    tool: str
    ok: bool
    output: str
    error: str | None
    duration_s: float


class Executor:
    """Runs allowed calls on one registry."""

    def __init__(
        self, registry: ToolRegistry, *, redact: Callable[[str], str], max_chars: int
    ) -> None:
        self.registry = registry
        self.redact = redact
        self.max_chars = max_chars

    async def run(
        self, name: str, arguments: Mapping[str, Any], *, time_left: float | None
    ) -> Execution:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(self.registry.call(name, dict(arguments)), time_left)
        except TimeoutError:
            message = f"Error: the run's time budget ran out while {name!r} was running"
            return Execution(name, False, message, "budget.time", time.perf_counter() - started)
        text = self.redact(result.content)
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"\n[... cut at {self.max_chars} characters]"
        error = None if result.ok else (result.error_kind or "error")
        return Execution(name, result.ok, text, error and str(error), result.elapsed_s)
