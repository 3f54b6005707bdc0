"""The typed events an agent step emits: the contract between the agent and its consumers.

Owns the event models (pydantic, discriminated by ``type``) that ``Agent.stream`` yields and
that the terminal app, the simulation transcripts, logs and tests consume. Every event carries
the agent's name, the run id and a sequence number, and round-trips through JSON
(``Event`` adapter) so transcripts can be written as JSONL and read back. Never decides
anything: events only describe what a layer did.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentcore.memory import TrustLevel

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "Event",
    "EventAdapter",
    "FinalAnswer",
    "LessonEvent",
    "ObservationEvent",
    "PlanUpdate",
    "SafetyVerdict",
    "StatusEvent",
    "TextDelta",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "TrustLevel",
]

# ``TrustLevel`` (where content came from; ``tool``, ``web``, ``environment`` and ``external``
# content is untrusted data) is memory's: one vocabulary for records and observations.


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    run_id: str
    seq: int = Field(ge=0, description="position of the event in its run, from 0")
    time: float = Field(default_factory=time.time, description="unix seconds")


class ObservationEvent(_EventBase):
    """Perception turned an input into a typed observation."""

    type: Literal["observation"] = "observation"
    source: str  # "user", "tool:<name>", "agent:<name>", "environment", ...
    trust: TrustLevel
    salience: float = Field(ge=0.0, le=1.0)
    content: str


class StatusEvent(_EventBase):
    """What the agent is doing now (for a UI's thinking / calling tool / approval state)."""

    type: Literal["status"] = "status"
    state: Literal["thinking", "planning", "calling_tool", "waiting_for_approval", "idle"]
    detail: str = ""


class PlanUpdate(_EventBase):
    """The task graph changed (created, task status moved, replanned)."""

    type: Literal["plan"] = "plan"
    reason: str  # "created", "task_started", "task_done", "task_failed", "replanned", ...
    graph: dict[str, Any]  # TaskGraph.to_json() node-link document
    text: str  # render_text(graph): a tree with statuses
    current_task: str | None = None


class TextDelta(_EventBase):
    """A piece of reply text the model just generated (never tool-call JSON). Not a model
    token: the core's :class:`~agentcore.core.session.TokenEvent` is one token id and its text;
    this is what the redactor let through, in whatever pieces."""

    type: Literal["token"] = "token"  # the transcripts' name for it, kept
    text: str


TokenEvent = TextDelta
"""Deprecated: the old name of :class:`TextDelta` (the core has its own ``TokenEvent``)."""


class ToolCallEvent(_EventBase):
    """The model chose to call a tool (arguments already valid under the tool's schema)."""

    type: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    arguments: dict[str, Any]


class SafetyVerdict(_EventBase):
    """The safety filter's decision on one action, also written to the audit log."""

    type: Literal["verdict"] = "verdict"
    call_id: str | None = None
    action: str  # "tool:<name>", "reply", "plan"
    decision: Literal["allow", "deny", "approved", "refused"]
    rule: str  # the policy rule that decided, e.g. "deny_tools", "budget.tool_calls"
    reason: str


class ToolResultEvent(_EventBase):
    """A tool ran (or failed); its output is untrusted and goes back through perception."""

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    tool: str
    ok: bool
    output: str  # already redacted and size-limited
    error: str | None = None
    duration_s: float = 0.0


class LessonEvent(_EventBase):
    """The learning layer distilled a lesson, or retrieval found one for this run."""

    type: Literal["lesson"] = "lesson"
    text: str
    recalled: bool  # True: retrieved from memory for this run; False: newly written


class FinalAnswer(_EventBase):
    """The run ended: the answer and how it ended."""

    type: Literal["final"] = "final"
    text: str
    success: bool
    stop_reason: str  # "answered", "max_steps", "budget.<name>", "cancelled", "error", ...


Event = Annotated[
    ObservationEvent
    | StatusEvent
    | PlanUpdate
    | TextDelta
    | ToolCallEvent
    | SafetyVerdict
    | ToolResultEvent
    | LessonEvent
    | FinalAnswer,
    Field(discriminator="type"),
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)
"""``EventAdapter.validate_json(line)`` reads one JSONL transcript line back."""


class ApprovalRequest(BaseModel):
    """Asked of a human (through the agent's approval callback) before a gated action runs."""

    model_config = ConfigDict(frozen=True)

    agent: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str  # why the policy wants a human


ApprovalDecision = Literal["once", "always", "deny"]
"""``once``: run this call; ``always``: run it and stop asking for this tool; ``deny``."""
