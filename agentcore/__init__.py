"""agentcore: an agent framework built on a local language model whose context never ends.

``from agentcore import Agent`` is the usual start; the agent's names are imported lazily so
that ``import agentcore`` (the CLI, the server) does not load the memory and tool stacks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentcore._version import __version__

if TYPE_CHECKING:
    from agentcore.agent import (
        Agent,
        AgentConfig,
        ApprovalCallback,
        ApprovalDecision,
        ApprovalRequest,
        ArgumentRule,
        Budgets,
        Event,
        EventAdapter,
        FinalAnswer,
        LessonEvent,
        ObservationEvent,
        PlanUpdate,
        Policy,
        Result,
        SafetyVerdict,
        StatusEvent,
        TextDelta,
        TokenEvent,
        ToolCallEvent,
        ToolResultEvent,
        TrustLevel,
    )

__all__ = [
    "Agent",
    "AgentConfig",
    "ApprovalCallback",
    "ApprovalDecision",
    "ApprovalRequest",
    "ArgumentRule",
    "Budgets",
    "Event",
    "EventAdapter",
    "FinalAnswer",
    "LessonEvent",
    "ObservationEvent",
    "PlanUpdate",
    "Policy",
    "Result",
    "SafetyVerdict",
    "StatusEvent",
    "TextDelta",
    "TokenEvent",  # deprecated: the old name of TextDelta
    "ToolCallEvent",
    "ToolResultEvent",
    "TrustLevel",
    "__version__",
]
_AGENT_NAMES = frozenset(__all__) - {"__version__"}  # resolved lazily from agentcore.agent


def __getattr__(name: str) -> Any:
    if name in _AGENT_NAMES:
        value = getattr(importlib.import_module("agentcore.agent"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agentcore' has no attribute {name!r}")
