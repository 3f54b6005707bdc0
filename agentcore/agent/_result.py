"""The result of one run: the answer, how it ended and everything that happened.

Owns :class:`Result` (a pydantic model holding the run's events). Never runs anything.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agentcore.agent._events import Event, FinalAnswer, ToolCallEvent, ToolResultEvent

__all__ = ["Result"]


class Result(BaseModel):
    """What :meth:`Agent.run` returns."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    goal: str
    answer: str
    success: bool
    stop_reason: str
    events: list[Event]
    steps: int
    tool_calls: int
    tokens: int
    duration_s: float

    def final(self) -> FinalAnswer:
        last = self.events[-1]
        assert isinstance(last, FinalAnswer)
        return last

    def tool_results(self) -> list[ToolResultEvent]:
        return [e for e in self.events if isinstance(e, ToolResultEvent)]

    def tool_call_events(self) -> list[ToolCallEvent]:
        return [e for e in self.events if isinstance(e, ToolCallEvent)]
