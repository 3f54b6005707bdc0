"""Reflection: turning an agent's recent memories into higher-level lessons.

Owns ``Reflector``: it watches the importance an agent's new episodic memories and facts
have accumulated since its last reflection; past ``ReflectionConfig.threshold`` it asks a
``Summarizer`` (the agent's own model, passed in) for lessons, parses them and stores them
as ``lesson`` records citing the memories they came from. Its state lives in the store (the
time of the agent's newest reflection lesson), so it survives restarts. Never calls a
model itself: generation is whatever ``Summarizer`` the caller gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from agentcore.memory._long_term import LongTermMemory
from agentcore.memory._records import MemoryKind, MemoryRecord, TrustLevel

__all__ = ["ReflectionConfig", "Reflector", "Summarizer", "parse_lessons"]

REFLECTION_SOURCE = "reflection"
_WATCHED = (MemoryKind.EPISODIC, MemoryKind.FACT)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Summarizer(Protocol):
    """Anything that turns a prompt into text: the agent's model backend, or a fake."""

    def __call__(self, prompt: str) -> str: ...


@dataclass(frozen=True)
class ReflectionConfig:
    """When to reflect and how much to read and write.

    ``threshold`` is in importance units (importance is in [0, 1]): Generative Agents
    reflected at 150 on a 1-10 scale, roughly 30 notable events; 8.0 here is ~16 events of
    importance 0.5.
    """

    threshold: float = 8.0
    max_memories: int = 40
    max_lessons: int = 3

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"ReflectionConfig.threshold={self.threshold!r}: expected > 0")
        if self.max_memories < 1:
            raise ValueError(
                f"ReflectionConfig.max_memories={self.max_memories!r}: expected an integer >= 1"
            )
        if self.max_lessons < 1:
            raise ValueError(
                f"ReflectionConfig.max_lessons={self.max_lessons!r}: expected an integer >= 1"
            )


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])?\s*")
_LESSON_TAG = re.compile(r"^(?:lesson|insight)\s*\d*\s*:\s*", re.IGNORECASE)
_CITATION = re.compile(
    r"\s*\((?:because of|because|from|see|based on|evidence:?)?\s*([\d,\s;and]+)\)\s*\.?$",
    re.IGNORECASE,
)


def parse_lessons(reply: str, n_memories: int, max_lessons: int) -> list[tuple[str, list[int]]]:
    """Lessons from a summariser reply: ``(text, cited memory numbers, 1-based)``.

    Lines tagged ``LESSON:`` win when present; otherwise every non-empty line counts.
    A trailing ``(because of 1, 3)`` becomes the citation list (numbers out of range are
    ignored). Lines of fewer than three words (headings, "Sure!") are skipped.
    """
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    tagged = [line for line in lines if _LESSON_TAG.match(_BULLET.sub("", line, count=1))]
    chosen = tagged or lines
    lessons: list[tuple[str, list[int]]] = []
    for line in chosen:
        text = _LESSON_TAG.sub("", _BULLET.sub("", line, count=1), count=1).strip()
        cited: list[int] = []
        match = _CITATION.search(text)
        if match:
            cited = [
                int(n) for n in re.findall(r"\d+", match.group(1)) if 1 <= int(n) <= n_memories
            ]
            text = text[: match.start()].strip()
        text = text.strip(" \"'")
        if len(text.split()) < 3 or text.endswith(":"):
            continue
        lessons.append((text, sorted(set(cited))))
        if len(lessons) == max_lessons:
            break
    return lessons


class Reflector:
    """Writes an agent's lessons to long-term memory when enough has happened."""

    def __init__(
        self,
        memory: LongTermMemory,
        summarizer: Summarizer,
        *,
        agent: str,
        config: ReflectionConfig | None = None,
    ) -> None:
        self.memory = memory
        self.summarizer = summarizer
        self.agent = agent
        self.config = config or ReflectionConfig()
        self._retry_at: float | None = None  # after a reply with no lessons, wait for more
        self._cursor: datetime | None = None  # newest memory time already counted
        self._counted = 0.0  # importance counted since the last reflection

    def last_reflection(self) -> datetime | None:
        """When this agent last stored reflection lessons, or None."""
        lessons = self.memory.list_records(
            kinds=[MemoryKind.LESSON], agent=self.agent, source=REFLECTION_SOURCE, last=1
        )
        return lessons[-1].time if lessons else None

    def pending(self) -> list[MemoryRecord]:
        """The agent's episodic memories and facts newer than its last reflection."""
        since = self.last_reflection()
        records = self.memory.list_records(kinds=_WATCHED, agent=self.agent, since=since)
        if since is not None:
            records = [r for r in records if r.time > since]
        return records

    def pending_importance(self) -> float:
        """Importance accumulated since the last reflection.

        The first call reads it from the store; later calls only read memories newer than
        the newest one already counted, so calling this every agent step stays cheap.
        (A memory written later with an older timestamp is not counted until the next
        reflection reads it.)
        """
        if self._cursor is None:
            fresh = self.pending()
            self._cursor = self.last_reflection() or _EPOCH
        else:
            fresh = [
                r
                for r in self.memory.list_records(
                    kinds=_WATCHED, agent=self.agent, since=self._cursor
                )
                if r.time > self._cursor
            ]
        if fresh:
            self._counted += sum(r.importance for r in fresh)
            self._cursor = max(self._cursor, max(r.time for r in fresh))
        return self._counted

    def maybe_reflect(self, now: datetime | None = None) -> list[MemoryRecord]:
        """Reflect if the pending importance has reached the threshold; the new lessons."""
        total = self.pending_importance()
        if total < max(self.config.threshold, self._retry_at or 0.0):
            return []
        lessons = self.reflect(now)
        # No usable lesson in the reply: do not ask again until as much importance again
        # has piled up, so a model that cannot follow the format is not called every step.
        self._retry_at = None if lessons else total + self.config.threshold
        return lessons

    def reflect(self, now: datetime | None = None) -> list[MemoryRecord]:
        """Reflect now on whatever is pending (nothing pending: no lessons)."""
        return self._reflect(self.pending(), now)

    def prompt(self, memories: list[MemoryRecord]) -> str:
        """The text the summariser receives for these memories (oldest first)."""
        lines = [
            f"You are {self.agent}. Below are your recent memories, oldest first.",
            "",
        ]
        for i, record in enumerate(memories, start=1):
            lines.append(f"{i}. [{record.time:%Y-%m-%d %H:%M}] {record.text}")
        lines += [
            "",
            f"What are at most {self.config.max_lessons} high-level lessons or insights these "
            "memories support? Write one per line, exactly in this form:",
            "LESSON: <the lesson> (because of <memory numbers, comma separated>)",
        ]
        return "\n".join(lines)

    def _reflect(self, pending: list[MemoryRecord], now: datetime | None) -> list[MemoryRecord]:
        if not pending:
            return []
        memories = pending[-self.config.max_memories :]
        reply = self.summarizer(self.prompt(memories))
        if not isinstance(reply, str):
            raise TypeError(f"summarizer returned {type(reply).__name__}; expected str")
        parsed = parse_lessons(reply, len(memories), self.config.max_lessons)
        if not parsed:
            return []
        stamp = now or datetime.now(UTC)
        stamp = max(stamp, max(r.time for r in pending))  # later than everything it covers
        # the summariser read every memory in the prompt: a lesson is trusted no more than the
        # least trusted of them (one from a web page or a tool's output stays data)
        least = min((r.trust for r in memories), key=lambda t: t.rank, default=TrustLevel.AGENT)
        trust = least if least.rank < TrustLevel.AGENT.rank else TrustLevel.AGENT
        lessons = []
        for text, cited in parsed:
            evidence = [memories[n - 1] for n in cited] or memories
            lessons.append(
                MemoryRecord(
                    kind=MemoryKind.LESSON,
                    text=text,
                    agent=self.agent,
                    time=stamp,
                    importance=max(r.importance for r in evidence),
                    source=REFLECTION_SOURCE,
                    trust=trust,
                    evidence=tuple(r.id for r in evidence),
                )
            )
        stored = self.memory.add_many(lessons)
        self._cursor, self._counted = None, 0.0  # recount from the new reflection on
        return stored
