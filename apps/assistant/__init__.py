"""The Textual terminal assistant: chat with an agent on a local model (``agentcore chat``).

Replies stream as Markdown, tool calls show as collapsible panels, gated actions ask for
approval, and side panes show the plan, long-term memory, session info and the list of
conversations, which persist across restarts. :func:`main` runs it; :class:`AssistantApp`
is the app (tests drive it with Pilot on a FakeBackend); :class:`AgentAdapter` is the only
code that talks to the agent.
"""

from agentcore.apps.assistant._adapter import AgentAdapter, HistoryTurn, MemoryHit
from agentcore.apps.assistant._app import AssistantApp
from agentcore.apps.assistant._backend import BackendUnavailableError, open_backend
from agentcore.apps.assistant._config import AssistantConfig, parse_args
from agentcore.apps.assistant._main import main
from agentcore.apps.assistant._store import SessionMeta, SessionStore, StoreCorruptError

__all__ = [
    "AgentAdapter",
    "AssistantApp",
    "AssistantConfig",
    "BackendUnavailableError",
    "HistoryTurn",
    "MemoryHit",
    "SessionMeta",
    "SessionStore",
    "StoreCorruptError",
    "main",
    "open_backend",
    "parse_args",
]
