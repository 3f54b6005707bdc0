"""Fixtures for the agent tests: a memory store on the hash embedder, agent factories, a
backend that ignores the tools it is offered (like an unconstrained remote model), and spy
tools that record whether a forbidden action ever ran."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentcore.agent import Agent, AgentConfig, Policy
from agentcore.backends import ChatRequest, Completion, Message, ModelBackend, ToolCallOut, Usage
from agentcore.memory import HashEmbeddingFunction, LongTermMemory
from agentcore.tools import Tool, ToolRegistry, tool
from agentcore.tools.builtin import default_tools

RogueStep = str | tuple[str, dict[str, Any]] | Callable[[list[Message]], Any]


class RogueBackend(ModelBackend):
    """A model backend that returns scripted calls whatever tools it was offered: what an
    unconstrained or compromised remote model could do. The safety filter must hold anyway."""

    def __init__(self, script: Sequence[RogueStep] = (), *, default: str = "done") -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[tuple[list[Message], list[str]]] = []
        self.sessions: set[str] = set()
        self._ids = itertools.count(1)

    @property
    def name(self) -> str:
        return "rogue"

    def complete(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        messages, session = request.messages, request.session
        offered = [t["function"]["name"] for t in request.tools or ()]
        self.requests.append(([dict(m) for m in messages], offered))
        if session:
            self.sessions.add(session)
        item: Any = self.script.pop(0) if self.script else self.default
        if callable(item):
            item = item([dict(m) for m in messages])
        if isinstance(item, str):
            if on_token is not None:
                on_token(item)
            return Completion(text=item, usage=Usage(10, len(item)), session=session)
        name, arguments = item
        call = ToolCallOut(f"rogue_{next(self._ids)}", name, dict(arguments))
        return Completion(
            text="", tool_calls=(call,), finish_reason="tool_calls", usage=Usage(10, 5)
        )

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str:
        raise AssertionError("the rogue backend does not plan")

    def session_info(self, session: str) -> dict[str, Any] | None:
        return {"id": session} if session in self.sessions else None

    def delete_session(self, session: str) -> bool:
        return False


class Spy:
    """Tools with side effects that record every time they actually run."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> list[Tool]:
        ran = self.ran

        @tool(side_effects="executes")
        def shell(command: str) -> str:
            """Run a shell command."""
            ran.append(("shell", {"command": command}))
            return "ran"

        @tool(side_effects="writes")
        def delete_everything(confirm: bool = True) -> str:
            """Delete every file."""
            ran.append(("delete_everything", {"confirm": confirm}))
            return "deleted"

        @tool(side_effects=["network"])
        def send_email(to: str, body: str) -> str:
            """Send an email."""
            ran.append(("send_email", {"to": to, "body": body}))
            return "sent"

        @tool(side_effects="network")
        def post(url: str, data: str = "") -> str:
            """POST data to a URL."""
            ran.append(("post", {"url": url, "data": data}))
            return "posted"

        return [shell, delete_everything, send_email, post]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LongTermMemory]:
    memory = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    yield memory
    memory.close()


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def make_agent(tmp_path: Path, store: LongTermMemory) -> Callable[..., Agent]:
    """``make_agent(backend, **overrides)``: an agent in ``tmp_path`` on the hash-embedded
    store, planner off unless given."""

    def make(backend: Any, **kwargs: Any) -> Agent:
        kwargs.setdefault("memory", store)
        kwargs.setdefault("home", tmp_path / "home")
        kwargs.setdefault("planner", "off")
        kwargs.setdefault("name", "tester")
        return Agent(backend, **kwargs)

    return make


@pytest.fixture
def rogue() -> type[RogueBackend]:
    """The :class:`RogueBackend` class: ``rogue([("tool", {...}), "text", ...])``."""
    return RogueBackend


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def registry(workspace: Path, spy: Spy) -> ToolRegistry:
    """Built-in tools on ``workspace`` plus the spy tools."""
    tools = default_tools(workspace=workspace)
    tools.extend(spy.tools())
    return tools


@pytest.fixture
def no_learning() -> AgentConfig:
    return AgentConfig(learn=False, distill_lessons=False, grounding=False)


__all__ = ["Policy"]
