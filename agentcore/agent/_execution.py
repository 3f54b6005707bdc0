"""Execution: run one approved tool call with its timeouts and hand back what it returned.

Owns :class:`Executor`: dispatch through the registry (which validates arguments and applies
the tool's own timeout), bounded further by the run's remaining time budget, under the call's
effect guard (:func:`agentcore.tools.guarded`: every path, address and process the tool
touches is checked as it happens) and with the provenance of its inputs
(:func:`agentcore.tools.influenced`); the whole output is redacted first and only then cut to the
tool's and the policy's size, so a cut never leaves half a secret. Never decides whether a
call may run: it is only ever given calls the safety filter allowed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from agentcore.agent._redact import log_redacted
from agentcore.tools import EffectGuard, ToolRegistry, guarded, influenced
from agentcore.tools._result import render_value, truncate_text

__all__ = ["Execution", "Executor", "is_outage"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Execution:
    """One finished call as the agent sees it (output already redacted and cut)."""

    tool: str
    ok: bool
    output: str
    error: str | None
    duration_s: float
    outage: bool = False  # it failed in the tool's own service: see is_outage


class Executor:
    """Runs allowed calls on one registry."""

    def __init__(
        self, registry: ToolRegistry, *, redact: Callable[[str], str], max_chars: int
    ) -> None:
        self.registry = registry
        self.redact = redact
        self.max_chars = max_chars

    async def run(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        time_left: float | None,
        guard: EffectGuard | None = None,
        influence: str | None = None,
    ) -> Execution:
        """``influence``: the untrusted source the arguments may derive from (tools that keep
        what they are given, such as ``remember``, keep the label)."""
        started = time.perf_counter()
        call = self.registry.call(name, dict(arguments))
        try:
            # the task created here inherits the guard and the provenance of its inputs
            with influenced(influence):
                if guard is not None:
                    with guarded(guard):
                        task = asyncio.ensure_future(call)
                else:
                    task = asyncio.ensure_future(call)
            result = await asyncio.wait_for(task, time_left)
        except TimeoutError:
            message = f"Error: the run's time budget ran out while {name!r} was running"
            return Execution(name, False, message, "budget.time", time.perf_counter() - started)
        cause = result.error.__cause__ if result.error is not None else None
        if cause is not None:
            # the model reads the message; the traceback goes to the log, from here: formatting
            # it reads source files, which the tool's effect guard would refuse
            message = f"tool {name!r} raised {type(cause).__name__}"
            log_redacted(log, logging.WARNING, message, cause, self.redact)
        if result.ok:
            full = render_value(result.value)
        elif result.error is not None:
            full = f"Error: {result.error}"
        else:
            full = result.content
        text = self.redact(full)
        if name in self.registry:
            text, _ = truncate_text(text, self.registry.get(name).limits.max_result_chars)
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"\n[... cut at {self.max_chars} characters]"
        error = None if result.ok else (result.error_kind or "error")
        outage = error == "timeout" or is_outage(cause)
        return Execution(name, result.ok, text, error and str(error), result.elapsed_s, outage)


def is_outage(exc: BaseException | None) -> bool:
    """Whether a tool's exception says its service is down (the connection failed or timed
    out, a server error), not that the call was wrong (a missing file, a bad value): only
    outages count toward resting a tool."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, (ConnectionError, TimeoutError, httpx.TransportError))
