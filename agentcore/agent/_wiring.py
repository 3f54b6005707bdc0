"""Wiring: an agent's parts, built from the constructor's arguments.

Owns :func:`build_parts` and :class:`AgentParts`: the long-term memory store (a store, a folder
or a chromadb server's URL), the tool registry (a registry, a list of tools, or the built-in
set), the policy bound to the workspace, the audit log, the safety filter, perception, the
memory layer (working memory and retrieval), skills, the plan layer, the learner (its
summariser's model calls each in a ``chat`` span), the action selector and the executor; and
:class:`RunParts`, the ones a run goes through. Never turns a model name into a backend (the
agent does: that is where a local model's torch is imported) and never runs anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from agentcore import _tracing as tracing
from agentcore.agent._action import ActionSelector
from agentcore.agent._audit import AuditLog
from agentcore.agent._config import AgentConfig
from agentcore.agent._execution import Executor
from agentcore.agent._learning import Learner
from agentcore.agent._perception import Perception
from agentcore.agent._planning import PlanLayer
from agentcore.agent._policy import Policy
from agentcore.agent._retrieval import MemoryLayer
from agentcore.agent._safety import ApprovalCallback, SafetyFilter
from agentcore.agent._skills import MemorySkillStore
from agentcore.backends import ModelBackend
from agentcore.backends._summarizer import BackendSummarizer
from agentcore.core.params import SamplingParams
from agentcore.memory import LongTermMemory, Reflector
from agentcore.planners import Planner
from agentcore.tools import Tool, ToolRegistry
from agentcore.tools.builtin import default_tools

__all__ = [
    "AgentParts",
    "RunParts",
    "build_parts",
    "resolve_memory",
    "resolve_tools",
    "sampling_params",
]


@dataclasses.dataclass(frozen=True)
class AgentParts:
    """Everything an agent is made of besides its backend, conversation and run counters."""

    memory: LongTermMemory
    tools: ToolRegistry
    policy: Policy
    audit: AuditLog
    safety: SafetyFilter
    perception: Perception
    memory_layer: MemoryLayer
    skills: MemorySkillStore
    planning: PlanLayer
    learner: Learner
    selector: ActionSelector
    executor: Executor


@dataclasses.dataclass(frozen=True)
class RunParts:
    """The layers one run goes through: the agent's, as they are when the run starts."""

    name: str
    config: AgentConfig
    tools: ToolRegistry
    safety: SafetyFilter
    perception: Perception
    memory_layer: MemoryLayer
    planning: PlanLayer
    learner: Learner
    selector: ActionSelector
    executor: Executor
    approve: ApprovalCallback | None


def resolve_memory(memory: LongTermMemory | Path | str | None, home: Path) -> LongTermMemory:
    if isinstance(memory, LongTermMemory):
        return memory
    if isinstance(memory, str) and memory.startswith(("http://", "https://")):
        return LongTermMemory(url=memory)  # a chromadb server shared by many agents
    return LongTermMemory(Path(memory) if memory is not None else home / "memory")


def resolve_tools(
    tools: ToolRegistry | Sequence[Tool | Callable[..., Any]] | None,
    workspace: Path,
    store: LongTermMemory,
    name: str,
) -> ToolRegistry:
    if isinstance(tools, ToolRegistry):
        return tools
    if tools is None:
        return default_tools(workspace=workspace, memory=store, agent=name)
    return ToolRegistry(tools)


def sampling_params(config: AgentConfig) -> SamplingParams:
    """The config's sampling, with its ``seed`` unless the sampling names one."""
    params = config.sampling
    if config.seed is not None and params.seed is None:
        params = dataclasses.replace(params, seed=config.seed)
    return params


class SpannedSummarizer:
    """The learner's summariser (lessons, reflection), each model call in a ``chat`` span; the
    run's span is current while a run closes, so the calls nest under it."""

    def __init__(self, inner: BackendSummarizer) -> None:
        self.inner = inner

    def __call__(self, prompt: str) -> str:
        span = tracing.start_chat(None, model=self.inner.backend.name, params=self.inner.params)
        try:
            text = self.inner(prompt)
        except BaseException as exc:
            tracing.end_interrupted(span, exc)
            raise
        tracing.end(span)
        return text


def build_parts(
    backend: ModelBackend,
    *,
    name: str,
    home: Path,
    workspace: Path,
    config: AgentConfig,
    session_id: str,
    tools: ToolRegistry | Sequence[Tool | Callable[..., Any]] | None,
    memory: LongTermMemory | Path | str | None,
    planner: Planner | Literal["auto", "off"],
    policy: Policy | None,
) -> AgentParts:
    """Build an agent's parts in dependency order (see the module docstring)."""
    store = resolve_memory(memory, home)
    registry = resolve_tools(tools, workspace, store, name)
    policy = policy or Policy.default(workspace)
    if policy.workspace is None:
        policy = policy.with_changes(workspace=workspace)
    audit = AuditLog(policy.audit_path or home / "audit.jsonl", fsync=policy.audit_fsync)
    safety = SafetyFilter(
        policy,
        registry,
        agent=name,
        audit=audit,
        home=home,
        resources=[store.path] if store.path is not None else [],
    )
    memory_layer = MemoryLayer(
        store,
        agent=name,
        config=config.working_memory,
        memory_k=config.memory_k,
        lesson_k=config.lesson_k,
        min_similarity=config.min_memory_similarity,
    )
    skills = MemorySkillStore(store, agent=name, min_similarity=0.92)
    summarizer = SpannedSummarizer(BackendSummarizer(backend, max_tokens=60))
    learner = Learner(
        store,
        agent=name,
        summarize=summarizer if config.distill_lessons else None,
        skills=skills,
        reflector=(
            Reflector(store, summarizer, agent=name) if config.reflect and config.learn else None
        ),
    )
    return AgentParts(
        memory=store,
        tools=registry,
        policy=policy,
        audit=audit,
        safety=safety,
        perception=Perception(config.max_observation_chars),
        memory_layer=memory_layer,
        skills=skills,
        planning=PlanLayer(planner, registry, skills=skills),
        learner=learner,
        selector=ActionSelector(
            backend,
            registry,
            session=session_id,
            params=sampling_params(config),
            hints=config.schema_hints,
        ),
        executor=Executor(registry, redact=safety.redact, max_chars=policy.max_output_chars),
    )
