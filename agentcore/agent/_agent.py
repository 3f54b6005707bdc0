"""The agent: one persistent model session driven through the layers, goal after goal.

Owns :class:`Agent`, the facade users import: it resolves the model (a backend, a server URL or
a local model, the one place that imports the local model core), has its parts built
(``_wiring``), keeps its conversation with the model session (``_conversation``), runs each goal
through a fresh :class:`~agentcore.agent._loop.RunLoop` while making sure one goal runs at a
time, closes every run however it ends (answer, limits, :meth:`Agent.stop`, an error, task
cancellation) with a consistent session, plan, memory and saved state, and saves and loads the
agent under its home folder. Never implements a layer or a phase of the loop itself: each lives
in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from agentcore import _tracing as tracing
from agentcore.agent._config import AgentConfig
from agentcore.agent._conversation import Conversation
from agentcore.agent._events import Event, FinalAnswer, TrustLevel
from agentcore.agent._history import AgentHistory
from agentcore.agent._loop import RunLoop
from agentcore.agent._policy import Policy
from agentcore.agent._redact import log_redacted
from agentcore.agent._result import Result
from agentcore.agent._retrieval import MemoryLayer
from agentcore.agent._run import Ending, RunState
from agentcore.agent._safety import ApprovalCallback
from agentcore.agent._state import AgentState, load_state, save_state
from agentcore.agent._wiring import RunParts, build_parts
from agentcore.backends import HttpBackend, ModelBackend
from agentcore.core.models import AGENT_ALIAS
from agentcore.memory import LongTermMemory
from agentcore.paths import data_home, validate_name
from agentcore.planners import Planner, TaskGraph, render_text
from agentcore.tools import Tool, ToolRegistry

__all__ = ["Agent"]

log = logging.getLogger(__name__)
STATE_FILE = "agent.json"
HISTORY_FILE = "history.jsonl"


def _resolve_backend(model: ModelBackend | str, home: Path) -> ModelBackend:
    if not isinstance(model, str):
        return model
    if model.startswith(("http://", "https://")):
        return HttpBackend(model)
    # the local model core needs torch: an agent over a remote model never imports it
    from agentcore.backends import LocalBackend

    # "agent": the model agents use by default (AGENT_ALIAS); "default": the registry default
    name = {"agent": AGENT_ALIAS, "default": None}.get(model, model)
    backend = LocalBackend.load(name, sessions_dir=home / "sessions")
    # the agent's sessions remember what left the window
    backend.engine.default_recall = backend.engine.recall_config()
    return backend


class Agent:
    """A goal-directed agent on a persistent model session (see the module docstring).

    ``run(goal)`` / ``stream(goal)`` run one goal; a plain chat message is a goal, and a text
    reply is the final answer. The agent saves itself under ``home`` after every run and
    :meth:`load` resumes it; the constructor always starts a fresh agent state.

    ``model``: a backend, an ``http(s)://`` server, or a local model: ``"agent"`` (default: the
    0.5B model, :data:`~agentcore.core.models.AGENT_ALIAS`, whose sessions recall what left
    their window), ``"default"`` (the faster SmolLM2-135M), any alias, file or folder.
    """

    def __init__(
        self,
        model: ModelBackend | str = "agent",
        *,
        tools: ToolRegistry | Sequence[Tool | Callable[..., Any]] | None = None,
        memory: LongTermMemory | Path | str | None = None,
        planner: Planner | Literal["auto", "off"] = "auto",
        policy: Policy | None = None,
        name: str = "agent",
        home: Path | None = None,
        workspace: Path | None = None,
        approve: ApprovalCallback | None = None,
        config: AgentConfig | None = None,
        session: str | None = None,
    ) -> None:
        self.name = validate_name(name, "agent")
        self.home = Path(home) if home is not None else data_home() / "agents" / self.name
        self.home.mkdir(parents=True, exist_ok=True)
        self.workspace = Path(workspace) if workspace is not None else self.home / "workspace"
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.config = config or AgentConfig.default()
        self.session_id = validate_name(session or f"agent-{self.name}")
        self.backend: ModelBackend = _resolve_backend(model, self.home)
        parts = build_parts(
            self.backend,
            name=self.name,
            home=self.home,
            workspace=self.workspace,
            config=self.config,
            session_id=self.session_id,
            tools=tools,
            memory=memory,
            planner=planner,
            policy=policy,
        )
        self.memory = parts.memory
        self.tools = parts.tools
        self.policy: Policy = parts.policy
        self.approve = approve
        self.audit = parts.audit
        self.safety = parts.safety
        self.perception = parts.perception
        self.memory_layer = parts.memory_layer
        self.skills = parts.skills
        self.planning = parts.planning
        self.learner = parts.learner
        self.selector = parts.selector
        self.executor = parts.executor
        self._conversation = Conversation(self.home / HISTORY_FILE)
        self._runs = 0
        self._last_run_id: str | None = None
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._running = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public properties

    @property
    def plan(self) -> TaskGraph | None:
        return self.planning.graph

    @property
    def recall_layer(self) -> MemoryLayer:
        """Deprecated: the old name of :attr:`memory_layer` (working memory and retrieval)."""
        return self.memory_layer

    @property
    def _history(self) -> AgentHistory:
        """The visible conversation's journal (the conversation owns it)."""
        return self._conversation.history

    # ------------------------------------------------------------------ running

    def run(self, goal: str, *, source: str = "user") -> Result:
        """Run ``goal`` to its end (blocking) and return the :class:`Result`."""

        async def drive() -> Result:
            events = [ev async for ev in self.stream(goal, source=source)]
            return self._result(goal, events)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(drive())
        raise RuntimeError(
            "Agent.run() was called inside a running event loop; use `async for event in "
            "agent.stream(goal)` (or `await agent.arun(goal)`) there instead"
        )

    async def arun(self, goal: str, *, source: str = "user") -> Result:
        """:meth:`run` for async code."""
        events = [ev async for ev in self.stream(goal, source=source)]
        return self._result(goal, events)

    def _result(self, goal: str, events: list[Event]) -> Result:
        final = events[-1]
        assert isinstance(final, FinalAnswer)
        outcome = self._outcomes.get(final.run_id, {})
        return Result(
            run_id=final.run_id,
            goal=goal,
            answer=final.text,
            success=final.success,
            stop_reason=final.stop_reason,
            events=events,
            steps=int(outcome.get("steps", 0)),
            tool_calls=int(outcome.get("tool_calls", 0)),
            tokens=int(outcome.get("tokens", 0)),
            duration_s=float(outcome.get("duration_s", 0.0)),
        )

    def stop(self) -> None:
        """Ask the current run to end (thread-safe); it ends with ``stop_reason="cancelled"``."""
        self._stop.set()

    async def stream(self, goal: str, *, source: str = "user") -> AsyncIterator[Event]:
        """Run ``goal``, yielding every event; the last one is a :class:`FinalAnswer`.

        Cancelling the consuming task (or closing the iterator) stops generation, closes the
        run as ``cancelled`` and saves a consistent state before the cancellation propagates.
        """
        if not isinstance(goal, str) or not goal.strip():
            raise ValueError(f"goal={goal!r}: expected a non-empty string")
        with self._lock:
            if self._running:
                raise RuntimeError(f"agent {self.name!r} is already running a goal")
            self._running = True
        self._stop.clear()
        run = RunState(self.name, goal, self.policy, source)
        loop = RunLoop(
            self._loop_parts(),
            self._conversation,
            run,
            stopped=self._stop.is_set,
            session_exists=lambda: self.backend.session_info(self.session_id) is not None,
        )
        run.span = tracing.start_agent(
            self.name,
            run_id=run.run_id,
            session=self.session_id,
            model=self.backend.name,
            source=source,
        )
        sent = 0
        closed = False
        error: BaseException | None = None
        try:
            try:
                ending: Ending | None = None
                async for item in loop.run(goal, source):
                    if isinstance(item, Ending):
                        ending = item
                        continue
                    sent += 1
                    yield item
                assert ending is not None, "a run's loop ends with its Ending"
                loop.finish(ending)
            except Exception as exc:
                message = f"agent {self.name!r}: run {run.run_id} failed"
                log_redacted(log, logging.ERROR, message, exc, self.safety.redact)
                error = exc
                loop.finish(Ending(f"error: {type(exc).__name__}: {exc}", False, "error"))
            with tracing.current(run.span):  # learning's model calls nest under the run
                await asyncio.to_thread(self._close_run, loop)
            closed = True
            for ev in run.events[sent:]:
                yield ev
        except BaseException:
            if not closed:  # cancelled or closed mid-run: settle everything, then propagate
                loop.finish(Ending("", False, "cancelled"))
                with tracing.current(run.span):
                    self._close_run(loop)
            raise
        finally:
            self._running = False
            run.end_trace(self.safety.redact, error)

    def _loop_parts(self) -> RunParts:
        """The layers as they are now (a part replaced on the agent is used from the next run)."""
        return RunParts(
            name=self.name,
            config=self.config,
            tools=self.tools,
            safety=self.safety,
            perception=self.perception,
            memory_layer=self.memory_layer,
            planning=self.planning,
            learner=self.learner,
            selector=self.selector,
            executor=self.executor,
            approve=self.approve,
        )

    def _close_run(self, loop: RunLoop) -> None:
        """Settle the run, keep its outcome, save."""
        run = loop.run_state
        outcome = loop.settle()
        self._runs += 1
        self._last_run_id = run.run_id
        self._outcomes[run.run_id] = outcome
        self.save()

    # ------------------------------------------------------------------ perception from outside

    def observe(self, content: str, *, source: str, trust: TrustLevel | str) -> None:
        """Perceive ``content`` without acting (simulations, environments). It is shown to the
        model as data at the start of the next run; trust (a :class:`TrustLevel` or its value,
        ``"environment"``) is capped by the source."""
        obs = self.perception.perceive(content, source=source, trust=trust)
        self.memory_layer.observe(obs)

    # ------------------------------------------------------------------ learning from outside

    def feedback(self, rating: float | bool, note: str = "", *, run_id: str | None = None) -> None:
        """Rate a run (the last one by default): ``True``/``False`` or -1..1, with a note.
        Stored in long-term memory; a negative rating with a note becomes a lesson."""
        value = (1.0 if rating else -1.0) if isinstance(rating, bool) else float(rating)
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"rating={rating!r}: expected a bool or a number between -1 and 1")
        rid = run_id or self._last_run_id
        if rid is None or rid not in self._outcomes:
            known = ", ".join(list(self._outcomes)[-5:]) or "none yet"
            raise ValueError(f"run_id={rid!r}: no such run of this agent (recent: {known})")
        outcome = self._outcomes[rid]
        self.learner.feedback(
            rid,
            str(outcome.get("goal", "")),
            value,
            note,
            {
                "success": bool(outcome.get("success")),
                "stop_reason": str(outcome.get("stop_reason")),
            },
        )
        outcome["rating"] = value
        self.save()

    # ------------------------------------------------------------------ persistence

    def _state(self) -> AgentState:
        return AgentState(
            name=self.name,
            session_id=self.session_id,
            model=self.backend.name,
            runs=self._runs,
            last_run_id=self._last_run_id,
            system_sent=self._conversation.system_sent,
            history=self._history.recent(),
            history_total=len(self._history),
            history_bytes=self._history.committed,
            pending=self._conversation.pending,
            plan=self.plan.to_dict() if self.plan is not None else None,
            tool_stats=self.learner.tool_stats,
            working=self.memory_layer.dump(),
            run_outcomes=dict(list(self._outcomes.items())[-200:]),
        )

    def save(self) -> None:
        """Append the run's turns to ``<home>/history.jsonl`` and write the agent's state
        atomically to ``<home>/agent.json`` (the backend saves the model session itself after
        every turn)."""
        self._history.flush()
        save_state(self._state(), self.home / STATE_FILE)
        save_session = getattr(self.backend, "save", None)
        if callable(save_session):
            try:
                save_session(self.session_id)
            except Exception:  # the agent's own state is saved; the model session resumes stale
                log.warning(
                    "agent %r: saving model session %r failed",
                    self.name,
                    self.session_id,
                    exc_info=True,
                )

    @classmethod
    def load(
        cls,
        name: str,
        *,
        model: ModelBackend | str = "agent",
        home: Path | None = None,
        **kwargs: Any,
    ) -> Agent:
        """Resume agent ``name`` from its home: same session, history, plan, statistics and
        memory. Other keyword arguments are the constructor's (tools, approve, policy...)."""
        home = (
            Path(home)
            if home is not None
            else data_home() / "agents" / validate_name(name, "agent")
        )
        path = home / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no saved agent {name!r} at {path}; create it with Agent(name={name!r}) first"
            )
        state = load_state(path)
        kwargs.setdefault("session", state.session_id)
        agent = cls(model, name=name, home=home, **kwargs)
        agent._history.restore(list(state.history), state.history_total, state.history_bytes)
        agent._conversation.pending = list(state.pending)
        agent._conversation.system_sent = state.system_sent
        agent._runs = state.runs
        agent._last_run_id = state.last_run_id
        agent._outcomes = dict(state.run_outcomes)
        agent.learner.tool_stats = {k: list(v) for k, v in state.tool_stats.items()}
        agent.memory_layer.restore(state.working)
        if state.plan is not None:
            agent.planning.adopt(TaskGraph.from_dict(state.plan))
        return agent

    # ------------------------------------------------------------------ inspection

    def history(self) -> list[dict[str, Any]]:
        """The visible conversation: user, assistant and tool turns (copies; reads the
        journal)."""
        return [dict(m) for m in self._history.all()]

    def session_info(self) -> dict[str, Any]:
        """Token count, window, memory sizes, model and device, for UIs."""
        info: dict[str, Any] = {
            "agent": self.name,
            "session": self.session_id,
            "model": self.backend.name,
            "runs": self._runs,
            "history": len(self._history),
            "working_memory": len(self.memory_layer.working),
            "memory": {
                kind: self.memory.count(kind) for kind in ("episodic", "fact", "lesson", "skill")
            },
            "tools": self.tools.names(),
            "plan": render_text(self.plan) if self.plan is not None else None,
        }
        backend_info = self.backend.session_info(self.session_id)
        if backend_info:
            info["tokens"] = backend_info.get("tokens")
            info["window"] = backend_info.get("window")
            info["backend"] = backend_info
        engine = getattr(self.backend, "engine", None)  # a local backend's Engine
        info["device"] = str(getattr(engine, "device", "unknown")) if engine else "remote"
        return info

    def close(self) -> None:
        """Save and release the long-term memory store."""
        self.save()
        self.memory.close()

    def __repr__(self) -> str:
        return (
            f"Agent(name={self.name!r}, model={self.backend.name!r}, session={self.session_id!r})"
        )
