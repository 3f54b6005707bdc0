"""The Textual messages that carry work done off the UI thread back to the app.

Owns one message class per kind of result: an agent event, an approval to ask, a finished
run, a loaded backend or a failed load, an opened conversation, memory search results and
session info. Workers post them (``post_message`` is thread-safe) and the app's handlers
update widgets on the UI thread. Never does work itself.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from textual.message import Message

from agentcore.agent import ApprovalDecision, ApprovalRequest, Event
from agentcore.apps.assistant._adapter import HistoryTurn, MemoryHit

__all__ = [
    "AgentEventPosted",
    "ApprovalAsked",
    "InfoRead",
    "LoadFailed",
    "MemoryFound",
    "RunFinished",
    "SessionOpened",
]


class AgentEventPosted(Message):
    """The agent emitted ``event`` during the current run."""

    def __init__(self, event: Event, run: int) -> None:
        super().__init__()
        self.event = event
        self.run = run


class ApprovalAsked(Message):
    """The agent waits for a human decision; resolve ``future`` with it."""

    def __init__(
        self, request: ApprovalRequest, future: concurrent.futures.Future[ApprovalDecision]
    ) -> None:
        super().__init__()
        self.request = request
        self.future = future


class RunFinished(Message):
    """The run ended; ``error`` is a readable message when it failed outside the agent."""

    def __init__(self, run: int, error: str | None = None) -> None:
        super().__init__()
        self.run = run
        self.error = error


class LoadFailed(Message):
    """The backend or the store could not be opened."""

    def __init__(self, title: str, detail: str, hint: str) -> None:
        super().__init__()
        self.title = title
        self.detail = detail
        self.hint = hint


class SessionOpened(Message):
    """A conversation is now current; ``history`` is what it said so far."""

    def __init__(self, session: str, history: list[HistoryTurn], plan: str | None) -> None:
        super().__init__()
        self.session = session
        self.history = history
        self.plan = plan


class MemoryFound(Message):
    """Results of a memory search (``error`` set when the search failed)."""

    def __init__(self, query: str, hits: list[MemoryHit], error: str | None = None) -> None:
        super().__init__()
        self.query = query
        self.hits = hits
        self.error = error


class InfoRead(Message):
    """The current conversation's session info and memory counts."""

    def __init__(self, info: dict[str, Any], memory: dict[str, int]) -> None:
        super().__init__()
        self.info = info
        self.memory = memory
