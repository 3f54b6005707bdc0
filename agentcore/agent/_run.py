"""One run's record, and the values the per-run loop hands back.

Owns :class:`RunState` (ids, the budget meter, the events so far, the episode learning reads,
the untrusted influence, the trace spans and token counts of one run), the small results the
loop's phases return (:class:`Ending`: how the run ended; :class:`TaskResult`: a plan step's
result; :class:`CallResult`: one tool call's result) and :class:`Stop`, the exception that ends
a run from deep inside the loop and becomes an :class:`Ending` at its top. Never runs a model,
a tool or a layer: it only records.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span

from agentcore import _tracing as tracing
from agentcore.agent._events import Event, FinalAnswer
from agentcore.agent._learning import Episode
from agentcore.agent._policy import Policy
from agentcore.agent._safety import BudgetMeter

__all__ = ["CallResult", "Ending", "RunState", "Stop", "TaskResult"]

# stop reasons that the safety filter records as a denied ``run`` before the run ends
LIMIT_REASONS = frozenset({"max_steps", "denied"})


@dataclasses.dataclass(frozen=True)
class Ending:
    """How a run ended: the answer (not yet redacted), whether it did its job, and why."""

    text: str
    success: bool
    stop_reason: str

    @property
    def hit_a_limit(self) -> bool:
        """A budget, the step limit or too many denials ended it."""
        return self.stop_reason.startswith("budget.") or self.stop_reason in LIMIT_REASONS


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """What one plan step came to: its output (``ok``) or why it failed."""

    ok: bool
    text: str


@dataclasses.dataclass(frozen=True)
class CallResult:
    """One tool call as the loop goes on with it: ran and succeeded, or its error / denial."""

    ok: bool
    output: str


class Stop(Exception):
    """Ends a run from deep inside the loop with a stop reason."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


class RunState:
    """Bookkeeping of one run: ids, sequence numbers, the meter and the collected events."""

    def __init__(self, agent: str, goal: str, policy: Policy, source: str) -> None:
        self.agent = agent
        self.run_id = uuid.uuid4().hex[:12]
        self.goal = goal
        self.meter = BudgetMeter(policy)
        self.events: list[Event] = []
        self.started = time.perf_counter()
        self.episode = Episode(self.run_id, goal, source=source)
        self.denials = 0
        self.last_tool_ok: bool | None = None
        # the latest untrusted source the model has read in this run (a tool result, a
        # denial, an untrusted memory or observation): calls chosen after it may carry its
        # content, so what they turn into the agent's own (memories, plan steps) keeps the label
        self.influence: str | None = None
        self.span: Span | None = None  # invoke_agent, set when the run starts
        self.step: Span | None = None  # the step being run (a model turn and its tool calls)
        self.input_tokens = 0
        self.output_tokens = 0

    @property
    def final(self) -> FinalAnswer | None:
        """The run's final answer, once it has one (always its last event)."""
        last = self.events[-1] if self.events else None
        return last if isinstance(last, FinalAnswer) else None

    def event(self, cls: type[Any], **fields: Any) -> Any:
        """Record the next event of the run and return it."""
        ev = cls(agent=self.agent, run_id=self.run_id, seq=len(self.events), **fields)
        self.events.append(ev)
        return ev

    def insert_before_final(self, cls: type[Any], items: list[dict[str, Any]]) -> None:
        """Record events of ``cls`` (one per ``items`` entry) just before the final answer,
        which stays last, renumbered; the run has a final answer at every moment."""
        final = self.final
        assert final is not None
        base = len(self.events) - 1
        added = [
            cls(agent=self.agent, run_id=self.run_id, seq=base + i, **fields)
            for i, fields in enumerate(items)
        ]
        kept = final.model_dump(exclude={"seq", "agent", "run_id", "time", "type"})
        moved = FinalAnswer(agent=self.agent, run_id=self.run_id, seq=base + len(added), **kept)
        self.events[-1:] = [*added, moved]

    def begin_step(self, task: str | None = None) -> Span:
        """End the step span still open (if any) and start the next one."""
        tracing.end(self.step)
        assert self.span is not None
        self.step = tracing.start_step(self.span, self.meter.steps + 1, task=task)
        return self.step

    def end_step(self) -> None:
        tracing.end(self.step)
        self.step = None

    def end_trace(self, redact: Callable[[str], str], error: BaseException | None) -> None:
        """End the open step and the run's span with its outcome."""
        tracing.end(self.step)
        self.step = None
        if self.span is None:
            return
        if error is not None:
            tracing.fail(self.span, error, redact)
        final = self.final
        tracing.end(
            self.span,
            **{
                "gen_ai.usage.input_tokens": self.input_tokens,
                "gen_ai.usage.output_tokens": self.output_tokens,
                "agentcore.run.steps": self.meter.steps,
                "agentcore.run.tool_calls": self.meter.tool_calls,
                "agentcore.run.stop_reason": final.stop_reason if final else None,
                "agentcore.run.success": final.success if final else None,
            },
        )
        self.span = None
