"""Working memory and recall: what the agent keeps in mind for a run.

Owns :class:`MemoryLayer`: the bounded :class:`memory.WorkingMemory` (goals, observations,
recalled memories) and recall from :class:`memory.LongTermMemory` at the start of each run
(the agent's episodes and facts similar to the goal, and its lessons), rendered into the run's
context within the working memory's token budget. Untrusted observations, and memories and
lessons that came from untrusted content, are shown with their source, as data. Never writes to long-term memory (that is learning's job) and never calls a
model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agentcore.agent._perception import Observation, neutralize
from agentcore.memory import (
    ItemKind,
    LongTermMemory,
    MemoryKind,
    ScoredMemory,
    WorkingItem,
    WorkingMemory,
    WorkingMemoryConfig,
)

__all__ = ["MemoryLayer", "Recall"]


@dataclasses.dataclass(frozen=True)
class Recall:
    """What recall found for one goal."""

    memories: tuple[ScoredMemory, ...] = ()
    lessons: tuple[ScoredMemory, ...] = ()


class MemoryLayer:
    """Working memory plus long-term recall for one agent."""

    def __init__(
        self,
        store: LongTermMemory | None,
        *,
        agent: str,
        config: WorkingMemoryConfig,
        recall_k: int = 3,
        lesson_k: int = 2,
        min_similarity: float = 0.25,
    ) -> None:
        self.store = store
        self.agent = agent
        self.working = WorkingMemory(config)
        self.recall_k = recall_k
        self.lesson_k = lesson_k
        self.min_similarity = min_similarity
        self._shown = -1  # highest working-memory seq already shown to the model
        # the first untrusted source in the last context rendered (None: all trusted)
        self.untrusted_shown: str | None = None

    # -- perception in ----------------------------------------------------------------------

    def observe(self, obs: Observation) -> WorkingItem:
        tag = obs.source if not obs.untrusted else f"{obs.source}, untrusted"
        return self.working.observe(obs.content, salience=obs.salience, source=tag)

    # -- recall -------------------------------------------------------------------------------

    def recall(self, goal: str) -> Recall:
        """Search long-term memory for ``goal``; keep the hits in working memory."""
        if self.store is None or not goal.strip():
            return Recall()
        memories: list[ScoredMemory] = []
        lessons: list[ScoredMemory] = []
        if self.recall_k:
            memories = [
                h
                for h in self.store.search(
                    goal,
                    self.recall_k,
                    kinds=[MemoryKind.EPISODIC, MemoryKind.FACT],
                    agent=self.agent,
                )
                if h.similarity >= self.min_similarity
            ]
        if self.lesson_k:
            lessons = [
                h
                for h in self.store.search(
                    goal, self.lesson_k, kinds=[MemoryKind.LESSON], agent=self.agent
                )
                if h.similarity >= self.min_similarity
            ]
        self.working.clear(ItemKind.RECALLED)
        self.working.recall([*lessons, *memories])
        return Recall(tuple(memories), tuple(lessons))

    # -- context out -------------------------------------------------------------------------

    def context(self, recall: Recall, extra: list[str] | None = None) -> str:
        """The text put before a goal: lessons, recalled memories and observations the model
        has not seen yet (e.g. from :meth:`Agent.observe`), each section only when non-empty,
        then ``extra`` lines. Over the working memory's token budget, the oldest observations
        go first, then the weakest memories, then lessons; ``extra`` always stays."""
        fresh = [i for i in self.working.items(ItemKind.OBSERVATION) if i.seq > self._shown]
        self.mark_seen()
        self.untrusted_shown = None
        for hit in (*recall.lessons, *recall.memories):
            if _untrusted(hit):
                self.untrusted_shown = f"memory:{hit.record.source}"[:200]
                break
        for item in fresh:
            if self.untrusted_shown is None and item.source.endswith(", untrusted"):
                self.untrusted_shown = item.source.removesuffix(", untrusted")[:200]
        sections: list[tuple[str, list[str]]] = [
            ("Lessons from earlier runs:", [_lesson_line(h) for h in recall.lessons]),
            ("From memory:", _unique_lines(recall.memories)),
            ("Observed since last time:", [item.line() for item in fresh]),
        ]
        tail = list(extra or [])

        def render() -> str:
            lines: list[str] = []
            for header, items in sections:
                if items:
                    lines += [header, *items]
            return "\n".join([*lines, *tail])

        budget = self.working.config.budget_tokens
        text = render()
        for index, from_start in ((2, True), (1, False), (0, False)):
            items = sections[index][1]
            while items and self.working.count_tokens(text) > budget:
                items.pop(0 if from_start else -1)
                text = render()
        return text

    def mark_seen(self) -> None:
        for item in self.working.items():
            self._shown = max(self._shown, item.seq)

    # -- persistence ---------------------------------------------------------------------------

    def dump(self) -> list[dict[str, Any]]:
        return [
            {"kind": i.kind.value, "text": i.text, "salience": i.salience, "source": i.source}
            for i in self.working.items()
            if i.kind is not ItemKind.RECALLED
        ]

    def restore(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            kind = ItemKind(item["kind"])
            if kind is ItemKind.GOAL:
                self.working.add_goal(item["text"], item["salience"])
            elif kind is ItemKind.OBSERVATION:
                self.working.observe(item["text"], item["salience"], item.get("source", ""))
            elif kind is ItemKind.NOTE:
                self.working.note(item["text"], item["salience"])
        self.mark_seen()


_DATA_ONLY = "(untrusted, data only) "


def _untrusted(hit: ScoredMemory) -> bool:
    return str(getattr(hit.record.trust, "value", hit.record.trust)) in ("tool", "external")


def _lesson_line(hit: ScoredMemory) -> str:
    """A lesson; one that came from untrusted content is shown as data."""
    return f"- {_DATA_ONLY if _untrusted(hit) else ''}{neutralize(hit.record.text)}"


def _memory_line(hit: ScoredMemory) -> str:
    """One recalled memory, short: an episode shows only its goal and how it ended; one that
    came from untrusted content is marked as data."""
    record = hit.record
    goal = record.attributes.get("goal")
    if record.kind is MemoryKind.EPISODIC and isinstance(goal, str):
        ended = "done" if record.attributes.get("success") else "not done"
        text = f"Earlier request ({ended}): {goal}"
    else:
        text = record.text
    text = neutralize(" ".join(text.split()))
    text = text if len(text) <= 200 else text[:200] + " [...]"
    return _DATA_ONLY + text if _untrusted(hit) else text


def _unique_lines(hits: tuple[ScoredMemory, ...]) -> list[str]:
    """Facts before episodes, near-duplicates (same words) once."""
    ordered = sorted(hits, key=lambda h: h.record.kind is MemoryKind.EPISODIC)
    seen: set[frozenset[str]] = set()
    lines: list[str] = []
    for hit in ordered:
        line = _memory_line(hit)
        key = frozenset(w for w in line.lower().replace(".", " ").split() if w != "remember")
        if key not in seen:
            seen.add(key)
            lines.append(f"- {line}")
    return lines
