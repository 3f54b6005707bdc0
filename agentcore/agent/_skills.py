"""Skills in long-term memory: finished plans kept as ``skill`` records for similar goals.

Owns :class:`MemorySkillStore`, a :class:`planners.SkillStore` on
:class:`memory.LongTermMemory`: ``save`` stores a finished graph's template (JSON in the
record's attributes, the goal as the searchable text; ``tool`` trust when a step came from
untrusted content, whose label the template keeps; a template longer than a record's attribute
may hold raises PlanError and is not stored); ``find`` returns the template of the
most similar stored goal above a similarity threshold. Never plans and never runs tasks.
"""

from __future__ import annotations

from agentcore.memory import (
    MAX_ATTRIBUTE_CHARS,
    LongTermMemory,
    MemoryKind,
    MemoryRecord,
    TrustLevel,
)
from agentcore.planners import PlanError, PlanTemplate, TaskGraph

__all__ = ["MemorySkillStore"]


class MemorySkillStore:
    """Skills of one agent in a long-term memory (embedding similarity >= ``min_similarity``)."""

    def __init__(self, store: LongTermMemory, *, agent: str, min_similarity: float = 0.6) -> None:
        self.store = store
        self.agent = agent
        self.min_similarity = min_similarity

    def save(self, goal: str, graph: TaskGraph) -> PlanTemplate:
        if not graph.succeeded():
            raise PlanError(
                f"only a finished graph (every task done) can be stored as a skill; "
                f"graph for {goal!r} is not"
            )
        shaped = graph.copy()
        shaped.goal = goal
        template = PlanTemplate.from_graph(shaped)
        stored = template.model_dump_json()
        if len(stored) > MAX_ATTRIBUTE_CHARS:
            # a plan this long is one occasion's, not a procedure worth repeating
            raise PlanError(
                f"a plan of {len(stored)} characters is too long to store as a skill "
                f"(at most {MAX_ATTRIBUTE_CHARS})"
            )
        self.store.add(
            MemoryRecord(
                kind=MemoryKind.SKILL,
                text=goal,
                agent=self.agent,
                importance=0.6,
                source="skill",
                # a plan with a step copied from untrusted content is not the agent's own
                trust=TrustLevel.TOOL if template.untrusted else TrustLevel.AGENT,
                attributes={"template": stored},
            )
        )
        return template

    def find(self, goal: str) -> PlanTemplate | None:
        if not goal.strip():
            return None
        hits = self.store.search(goal, 1, kinds=[MemoryKind.SKILL], agent=self.agent)
        if not hits or hits[0].similarity < self.min_similarity:
            return None
        raw = hits[0].record.attributes.get("template")
        if not isinstance(raw, str):
            return None
        return PlanTemplate.model_validate_json(raw)
