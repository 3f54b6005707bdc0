"""The agent: a persistent model session driven through perception, memory, planning, action
selection, a safety filter, execution and learning.

``Agent`` is what users import; ``Policy`` says what it may do; ``AgentConfig`` how it runs;
``Result`` and the event types are what it reports.
"""

from agentcore.agent._agent import Agent
from agentcore.agent._audit import AuditLog
from agentcore.agent._config import DEFAULT_PERSONA, AgentConfig
from agentcore.agent._events import (
    ApprovalDecision,
    ApprovalRequest,
    Event,
    EventAdapter,
    FinalAnswer,
    LessonEvent,
    ObservationEvent,
    PlanUpdate,
    SafetyVerdict,
    StatusEvent,
    TextDelta,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
    TrustLevel,
)
from agentcore.agent._learning import Episode, Learner
from agentcore.agent._perception import Observation, Perception, trust_ceiling
from agentcore.agent._planning import PlanLayer, looks_multi_step
from agentcore.agent._policy import ArgumentRule, Budgets, Policy
from agentcore.agent._redact import REDACTED, Redactor, StreamRedactor
from agentcore.agent._result import Result
from agentcore.agent._retrieval import MemoryLayer, Retrieved
from agentcore.agent._safety import ApprovalCallback, BudgetMeter, SafetyFilter, Verdict
from agentcore.agent._skills import MemorySkillStore

# deprecated names, kept so that old imports still work (``TokenEvent``: see ``TextDelta``)
Recall = Retrieved
"""Deprecated: the old name of :class:`Retrieved` (what retrieval found for a goal)."""

__all__ = [
    "DEFAULT_PERSONA",
    "REDACTED",
    "Agent",
    "AgentConfig",
    "ApprovalCallback",
    "ApprovalDecision",
    "ApprovalRequest",
    "ArgumentRule",
    "AuditLog",
    "BudgetMeter",
    "Budgets",
    "Episode",
    "Event",
    "EventAdapter",
    "FinalAnswer",
    "Learner",
    "LessonEvent",
    "MemoryLayer",
    "MemorySkillStore",
    "Observation",
    "ObservationEvent",
    "Perception",
    "PlanLayer",
    "PlanUpdate",
    "Policy",
    "Recall",
    "Redactor",
    "Result",
    "Retrieved",
    "SafetyFilter",
    "SafetyVerdict",
    "StatusEvent",
    "StreamRedactor",
    "TextDelta",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "TrustLevel",
    "Verdict",
    "looks_multi_step",
    "trust_ceiling",
]
