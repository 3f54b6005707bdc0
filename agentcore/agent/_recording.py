"""Recording what a run does: the verdicts, observations and tool spans its phases share.

Owns :class:`Recorder`: a safety decision written to the audit log and recorded as the run's
next event (names, reasons and arguments redacted), an observation kept in working memory and
recorded as an event, a call's arguments as events, history and the audit log show them, and
the ``execute_tool`` span of a call. Never decides anything: the loop and the tool step do, and
hand it what to record.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from agentcore import _tracing as tracing
from agentcore.agent._events import ObservationEvent, SafetyVerdict
from agentcore.agent._perception import Observation
from agentcore.agent._retrieval import MemoryLayer
from agentcore.agent._run import RunState
from agentcore.agent._safety import SafetyFilter
from agentcore.tools import ToolRegistry

__all__ = ["Recorder"]


class Recorder:
    """Records into one run (see the module docstring)."""

    def __init__(
        self, run: RunState, safety: SafetyFilter, memory_layer: MemoryLayer, tools: ToolRegistry
    ) -> None:
        self.run = run
        self.safety = safety
        self.memory_layer = memory_layer
        self.tools = tools

    def verdict(
        self,
        action: str,
        decision: str,
        rule: str,
        reason: str,
        call_id: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> SafetyVerdict:
        """Audit a decision and record it as the run's next event."""
        self.safety.record(
            run_id=self.run.run_id,
            action=action,
            decision=decision,
            rule=rule,
            reason=reason,
            call_id=call_id,
            arguments=arguments,
        )
        ev: SafetyVerdict = self.run.event(
            SafetyVerdict,
            call_id=call_id,
            action=self.safety.redact(action),
            decision=decision,
            rule=rule,
            reason=self.safety.redact(reason),
        )
        return ev

    def observe(self, obs: Observation) -> ObservationEvent:
        """Keep ``obs`` in working memory and record it."""
        self.memory_layer.observe(obs)
        if obs.source.startswith("tool:") or obs.source == "policy":
            self.memory_layer.mark_seen()  # the model already read it as a tool message
        ev: ObservationEvent = self.run.event(
            ObservationEvent,
            source=obs.source,
            trust=obs.trust,
            salience=obs.salience,
            content=obs.content,
        )
        return ev

    def shown_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """A call's arguments as events, history and the audit log show them (redacted)."""
        shown = self.safety.redactor.redact_value(arguments)
        assert isinstance(shown, dict)
        return shown

    def tool_span(self, call_id: str, name: str, arguments: dict[str, Any]) -> Span:
        """The call's ``execute_tool`` span, under the run's current step."""
        known = self.tools.get(name) if name in self.tools else None
        return tracing.start_tool(
            self.run.step,
            self.safety.redact(name),
            call_id,
            description=known.description if known is not None else None,
            arguments=self.shown_arguments(arguments) if tracing.capture_content() else None,
        )
