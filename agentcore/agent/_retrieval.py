"""Working memory and retrieval: what the agent keeps in mind for a run.

Owns :class:`MemoryLayer`: the bounded :class:`memory.WorkingMemory` (goals, observations,
retrieved memories, and the facts the user told the agent, kept as notes) and retrieval from
:class:`memory.LongTermMemory` at the start of each run (the agent's facts and episodes similar
to the goal, each searched on its own so that episodes never crowd out a fact, and its
lessons), rendered into the run's context within the working memory's token budget
(:class:`Context`: the text and the first untrusted source it shows): what the user told the
agent comes first, under its own heading, so a question about it ("Where does my sister
live?") is read next to the answer. Untrusted observations, and memories and lessons that came
from untrusted content, are shown with their source, as data. Never writes to long-term memory
(that is learning's job) and never calls a model.

"Retrieval" is the agent's word for searching long-term memory; "recall" is the model core's,
for blocks of the KV cache brought back after they left the window (``agentcore.core.recall``).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

from agentcore.agent._perception import Observation, is_untrusted, neutralize
from agentcore.memory import (
    ItemKind,
    LongTermMemory,
    MemoryKind,
    ScoredMemory,
    WorkingItem,
    WorkingMemory,
    WorkingMemoryConfig,
)

__all__ = ["Context", "MemoryLayer", "Retrieved"]


@dataclasses.dataclass(frozen=True)
class Retrieved:
    """What retrieval found in long-term memory for one goal."""

    memories: tuple[ScoredMemory, ...] = ()
    lessons: tuple[ScoredMemory, ...] = ()
    facts: tuple[ScoredMemory, ...] = ()  # ``fact`` records (also in ``memories``)


@dataclasses.dataclass(frozen=True)
class Context:
    """The text put before a goal, and the first untrusted source it shows (None: all of it
    is trusted): calls chosen after reading it may carry that source's content."""

    text: str
    untrusted: str | None = None


class MemoryLayer:
    """Working memory plus long-term retrieval for one agent.

    ``memory_k`` / ``lesson_k``: memories (facts and episodes, each) and lessons retrieved per
    goal; ``min_similarity``: hits below it are dropped. ``recall_k`` is the deprecated name of
    ``memory_k``.
    """

    def __init__(
        self,
        store: LongTermMemory | None,
        *,
        agent: str,
        config: WorkingMemoryConfig,
        memory_k: int = 3,
        lesson_k: int = 2,
        min_similarity: float = 0.25,
        recall_k: int | None = None,
    ) -> None:
        if recall_k is not None:
            warnings.warn(
                "MemoryLayer(recall_k=...) is deprecated; use memory_k=...",
                DeprecationWarning,
                stacklevel=2,
            )
            memory_k = recall_k
        self.store = store
        self.agent = agent
        self.working = WorkingMemory(config)
        self.memory_k = memory_k
        self.lesson_k = lesson_k
        self.min_similarity = min_similarity
        self._shown = -1  # highest working-memory seq already shown to the model

    # -- perception in ----------------------------------------------------------------------

    def observe(self, obs: Observation) -> WorkingItem:
        tag = obs.source if not obs.untrusted else f"{obs.source}, untrusted"
        return self.working.observe(obs.content, salience=obs.salience, source=tag)

    # -- retrieval ----------------------------------------------------------------------------

    def retrieve(self, goal: str) -> Retrieved:
        """Search long-term memory for ``goal``; keep the hits in working memory."""
        if self.store is None or not goal.strip():
            return Retrieved()
        facts: list[ScoredMemory] = []
        episodes: list[ScoredMemory] = []
        lessons: list[ScoredMemory] = []
        if self.memory_k:
            facts, episodes = (
                [
                    h
                    for h in self.store.search(goal, self.memory_k, kinds=[kind], agent=self.agent)
                    if h.similarity >= self.min_similarity
                ]
                for kind in (MemoryKind.FACT, MemoryKind.EPISODIC)
            )
        memories = [*facts, *episodes]
        if self.lesson_k:
            lessons = [
                h
                for h in self.store.search(
                    goal, self.lesson_k, kinds=[MemoryKind.LESSON], agent=self.agent
                )
                if h.similarity >= self.min_similarity
            ]
        self.working.clear(ItemKind.RETRIEVED)
        self.working.set_retrieved([*lessons, *memories])
        return Retrieved(tuple(memories), tuple(lessons), tuple(facts))

    def note_fact(self, text: str) -> WorkingItem:
        """Keep a fact the user told in working memory (shown when a later goal names it)."""
        return self.working.note(f"The user said: {neutralize(' '.join(text.split()))}", 0.8)

    def noted_facts(self, goal: str) -> list[str]:
        """Facts in working memory that share a content word with ``goal``, oldest first."""
        wanted = _content_words(goal)
        return [
            item.text.removeprefix("The user said: ")
            for item in self.working.items(ItemKind.NOTE)
            if item.text.startswith("The user said: ") and wanted & _content_words(item.text)
        ]

    # -- context out -------------------------------------------------------------------------

    def context(
        self, found: Retrieved, extra: list[str] | None = None, noted: list[str] | None = None
    ) -> str:
        """The text of :meth:`render`."""
        return self.render(found, extra, noted).text

    def render(
        self, found: Retrieved, extra: list[str] | None = None, noted: list[str] | None = None
    ) -> Context:
        """The context put before a goal: lessons, what the user told (retrieved facts and
        ``noted`` ones from working memory), other retrieved memories and observations the
        model has not seen yet (e.g. from :meth:`Agent.observe`), each section only when
        non-empty, then ``extra`` lines. Over the working memory's token budget, the oldest
        observations go first, then the weakest memories, then lessons, then facts; ``extra``
        always stays."""
        fresh = [i for i in self.working.items(ItemKind.OBSERVATION) if i.seq > self._shown]
        self.mark_seen()
        untrusted: str | None = None
        for hit in (*found.lessons, *found.memories):
            if _untrusted(hit):
                untrusted = f"memory:{hit.record.source}"[:200]
                break
        for item in fresh:
            if untrusted is None and item.source.endswith(", untrusted"):
                untrusted = item.source.removesuffix(", untrusted")[:200]
        told = _told_lines(found.facts, noted or [])
        others = tuple(h for h in found.memories if h.record.kind is not MemoryKind.FACT)
        sections: list[tuple[str, list[str]]] = [
            ("Lessons from earlier runs:", [_lesson_line(h) for h in found.lessons]),
            ("What the user told you:", told),
            ("From memory:", _unique_lines(others)),
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
        for index, from_start in ((3, True), (2, False), (0, False), (1, False)):
            items = sections[index][1]
            while items and self.working.count_tokens(text) > budget:
                items.pop(0 if from_start else -1)
                text = render()
        return Context(text, untrusted)

    def mark_seen(self) -> None:
        for item in self.working.items():
            self._shown = max(self._shown, item.seq)

    # -- persistence ---------------------------------------------------------------------------

    def dump(self) -> list[dict[str, Any]]:
        return [
            {"kind": i.kind.value, "text": i.text, "salience": i.salience, "source": i.source}
            for i in self.working.items()
            if i.kind is not ItemKind.RETRIEVED
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
    return is_untrusted(hit.record.trust)


def _lesson_line(hit: ScoredMemory) -> str:
    """A lesson; one that came from untrusted content is shown as data."""
    return f"- {_DATA_ONLY if _untrusted(hit) else ''}{neutralize(hit.record.text)}"


def _memory_line(hit: ScoredMemory) -> str:
    """One retrieved memory, short: an episode shows only its goal and how it ended; one that
    came from untrusted content is marked as data."""
    record = hit.record
    goal = record.attributes.get("goal")
    if record.kind is MemoryKind.EPISODIC and isinstance(goal, str):
        outcome = record.attributes.get("outcome")
        if outcome is None:  # a record from before outcomes needed evidence
            outcome = "succeeded" if record.attributes.get("success") else "failed"
        ended = {"succeeded": "done", "unverified": "answered, unchecked"}.get(
            str(outcome), "not done"
        )
        text = f"Earlier request ({ended}): {goal}"
    else:
        text = record.text
    text = neutralize(" ".join(text.split()))
    text = text if len(text) <= 200 else text[:200] + " [...]"
    return _DATA_ONLY + text if _untrusted(hit) else text


_STOP = frozenset(
    re.findall(
        r"\w+",
        "the a an and or but of to in on at for with from by is are was were be been am do does did "
        "what where when who whom whose which why how that this these those it its my your our their "
        "his her me you we they i he she them us can could would will should shall may might have has "
        "had not no yes please tell about said user",
    )
)


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 2}


def _told_lines(facts: tuple[ScoredMemory, ...], noted: list[str]) -> list[str]:
    """Facts the user told, retrieved and noted, each once (same words), as the user said them;
    one that came from untrusted content is marked as data."""
    seen: set[frozenset[str]] = set()
    lines: list[str] = []
    texts = [_memory_line(h) for h in facts] + [neutralize(t) for t in noted]
    for text in texts:
        key = frozenset(_content_words(text.removeprefix(_DATA_ONLY)))
        if key not in seen:
            seen.add(key)
            lines.append(f"- {text}")
    return lines


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
