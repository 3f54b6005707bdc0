"""The seam between the terminal assistant and the agent: the only module that calls Agent.

Owns :class:`AgentAdapter`: it opens the model backend and the agent's long-term memory,
creates or resumes one :class:`~agentcore.agent.Agent` per conversation (each with its own
home, all sharing one memory, one workspace and one backend), runs a goal and hands each
event to the caller, bridges the agent's approval callback to a decision taken elsewhere
(another thread: the UI), stops a run, and reads history, session info and memories for the
panes. Every method here may block (model, disk, embeddings): callers run them off the UI
thread. Never draws anything and never decides an approval itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentcore.agent import Agent, ApprovalDecision, ApprovalRequest, Event
from agentcore.apps.assistant._backend import open_backend
from agentcore.apps.assistant._config import AssistantConfig
from agentcore.backends import ModelBackend
from agentcore.memory import LongTermMemory, MemoryKind, MemoryRecord

__all__ = ["AgentAdapter", "ApprovalAsker", "HistoryTurn", "MemoryHit"]

ApprovalAsker = Callable[[ApprovalRequest], "concurrent.futures.Future[ApprovalDecision]"]
"""Asks a human (from any thread) and returns a future the UI resolves with the decision."""


@dataclasses.dataclass(frozen=True)
class HistoryTurn:
    """One turn of a restored conversation, as the chat shows it."""

    role: str  # "user", "assistant", "tool"
    text: str
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    ok: bool = True


@dataclasses.dataclass(frozen=True)
class MemoryHit:
    """One long-term memory for the memory pane (``score`` is None when listed, not searched)."""

    record: MemoryRecord
    score: float | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return str(value)


def history_turns(raw: Sequence[dict[str, Any]]) -> list[HistoryTurn]:
    """The agent's ``history()`` entries as chat turns (tool calls become tool turns)."""
    turns: list[HistoryTurn] = []
    for entry in raw:
        role = str(entry.get("role", ""))
        content = _text(entry.get("content"))
        if role == "user" or (role == "assistant" and content and not entry.get("tool_calls")):
            turns.append(HistoryTurn(role, content))
        elif role == "assistant":
            for call in entry.get("tool_calls") or ():
                fn = call.get("function", call) if isinstance(call, dict) else {}
                args = fn.get("arguments")
                turns.append(
                    HistoryTurn(
                        "tool_call",
                        "",
                        tool=str(fn.get("name", "tool")),
                        arguments=args if isinstance(args, dict) else {"arguments": args},
                    )
                )
            if content:
                turns.append(HistoryTurn("assistant", content))
        elif role == "tool":
            turns.append(
                HistoryTurn(
                    "tool",
                    content,
                    tool=str(entry.get("name") or entry.get("tool") or "tool"),
                    ok=bool(entry.get("ok", True)),
                )
            )
    return turns


class AgentAdapter:
    """One agent's conversations on one backend; see the module docstring.

    ``backend`` / ``memory``: use these instead of opening the configured ones (tests pass a
    FakeBackend and a hash-embedded memory). ``tools``: the agent's tools (None: the agent's
    safe built-ins).
    """

    def __init__(
        self,
        config: AssistantConfig,
        *,
        backend: ModelBackend | None = None,
        memory: LongTermMemory | None = None,
        tools: Any = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.memory = memory
        self._owns_memory = memory is None
        self._tools = tools
        self._agent: Agent | None = None
        self._session: str | None = None
        self._asker: ApprovalAsker | None = None
        self._pending: set[concurrent.futures.Future[ApprovalDecision]] = set()
        self._lock = threading.Lock()

    # -- opening -------------------------------------------------------------------------

    def open(self) -> None:
        """Load the backend and open the memory (blocking; raises BackendUnavailableError)."""
        if self.backend is None:
            self.backend = open_backend(self.config)
        if self.memory is None:
            if self.config.memory_url is not None:  # a chromadb server shared with other agents
                self.memory = LongTermMemory(url=self.config.memory_url)
            else:
                self.memory = LongTermMemory(self.config.memory_dir)

    @property
    def ready(self) -> bool:
        return self.backend is not None and self.memory is not None

    def set_approver(self, asker: ApprovalAsker) -> None:
        self._asker = asker

    @property
    def session(self) -> str | None:
        return self._session

    def model_session_id(self, session: str) -> str:
        return f"{self.config.agent}-{session}"

    def open_session(self, session: str) -> list[HistoryTurn]:
        """Make ``session`` the current conversation (resumed when it exists); its history."""
        if self.backend is None or self.memory is None:
            raise RuntimeError("AgentAdapter.open() must succeed before open_session()")
        home = self.config.session_home(session)
        common: dict[str, Any] = {
            "model": self.backend,
            "home": home,
            "tools": self._tools,
            "approve": self._approve,
            "memory": self.memory,
            "workspace": self.config.workspace_dir,
            "planner": self.config.planner,
        }
        if home.is_dir() and any(home.iterdir()):
            agent = Agent.load(self.config.agent, **common)
        else:
            home.mkdir(parents=True, exist_ok=True)
            agent = Agent(name=self.config.agent, session=self.model_session_id(session), **common)
        with self._lock:
            self._agent, self._session = agent, session
        return history_turns(agent.history())

    # -- running -------------------------------------------------------------------------

    async def run(self, goal: str, emit: Callable[[Event], None]) -> None:
        """Run ``goal`` on the current conversation, handing every event to ``emit``."""
        agent = self._require_agent()
        async for event in agent.stream(goal):
            emit(event)

    def stop(self) -> None:
        """Stop the current run (thread-safe); a pending approval is answered ``deny``."""
        with self._lock:
            agent = self._agent
            pending = list(self._pending)
        for future in pending:
            if not future.done():
                future.set_result("deny")
        if agent is not None:
            agent.stop()

    async def _approve(self, request: ApprovalRequest) -> ApprovalDecision:
        if self._asker is None:
            return "deny"
        future = self._asker(request)
        with self._lock:
            self._pending.add(future)
        try:
            return await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._pending.discard(future)

    def _require_agent(self) -> Agent:
        agent = self._agent
        if agent is None:
            raise RuntimeError("no conversation is open: call open_session() first")
        return agent

    # -- reading -------------------------------------------------------------------------

    def backend_label(self) -> str:
        """Which kind of backend runs the model, for the info pane."""
        if self.backend is None:
            return "not loaded"
        kind = type(self.backend).__name__.removesuffix("Backend").lower() or "custom"
        return f"{kind} {self.config.base_url}" if self.config.base_url else kind

    def session_info(self) -> dict[str, Any]:
        """The current conversation's token count, window, memory use, model and device."""
        agent = self._agent
        return dict(agent.session_info()) if agent is not None else {}

    def plan_text(self) -> str | None:
        """The current plan as text (None when the conversation has none)."""
        agent = self._agent
        plan = agent.plan if agent is not None else None
        return plan.render_text() if plan is not None else None

    def search_memory(
        self, query: str, kinds: Sequence[MemoryKind] | None = None, k: int = 20
    ) -> list[MemoryHit]:
        """The best memories for ``query``, or the newest ones when the query is blank."""
        memory = self.memory
        if memory is None:
            return []
        if not query.strip():
            records = memory.list_records(kinds=kinds, last=k)
            return [MemoryHit(r) for r in reversed(records)]
        return [MemoryHit(h.record, h.score) for h in memory.search(query, k=k, kinds=kinds)]

    def memory_counts(self) -> dict[str, int]:
        memory = self.memory
        if memory is None:
            return {}
        return {kind.value: memory.count(kind) for kind in MemoryKind}

    # -- managing ------------------------------------------------------------------------

    def delete_session(self, session: str) -> None:
        """Forget a conversation: the agent's home for it and its model session."""
        with self._lock:
            if self._session == session:
                self._agent, self._session = None, None
        home: Path = self.config.session_home(session)
        shutil.rmtree(home, ignore_errors=True)
        if self.backend is not None:
            try:
                self.backend.delete_session(self.model_session_id(session))
            except (OSError, RuntimeError, ValueError):
                pass  # a server that cannot delete it keeps an orphan; the list no longer has it

    def close(self) -> None:
        self.stop()
        if self._owns_memory and self.memory is not None:
            self.memory.close()
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()
