"""Learning: what the agent keeps from each run for the next ones.

Owns :class:`Learner`: an ``episodic`` record per run (goal, plan, actions, outcome) and for
user feedback; ``fact`` records for what the user tells about themselves and their world
("My sister lives in Lyon.") and for what they ask to be remembered, each stored once; a
lesson distilled by the model after a failed run (prompted for one ``LESSON:`` line, parsed
with :func:`memory.parse_lessons`; when the model gives no usable line, the lesson states the
failure itself); per-tool success statistics, rendered for the prompt; skills; and the
periodic :class:`memory.Reflector`. Never decides what the agent does next.

An outcome is recorded as ``succeeded`` only on evidence (:attr:`Episode.evidence`: a tool
call that succeeded, a check); a run that only answered in text is ``unverified``, a stopped
one ``failed``. Only a real procedure becomes a ``skill``: a finished plan of two or more
steps whose tool calls succeeded, never a single answer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from agentcore.memory import (
    LongTermMemory,
    MemoryKind,
    MemoryRecord,
    Reflector,
    TrustLevel,
    parse_lessons,
)
from agentcore.planners import PlanError, SkillStore, TaskGraph

__all__ = ["Episode", "Learner", "asks_to_remember", "is_procedure"]

log = logging.getLogger(__name__)

LESSON_SOURCE = "lesson:failure"
# a tool's record: [calls ok, calls failed, outages in a row, time of the last outage (epoch s)]
_STREAK, _LAST_OUTAGE, _STATS_LEN = 2, 3, 4
# a request to keep something: an imperative at the start of a sentence or clause
_REMEMBER_REQUEST = re.compile(
    r"(?:^|[.!;:,]\s*)(?:please\s+)?"
    r"(?:remember|memori[sz]e|don't forget|do not forget|note that|keep in mind)\b",
    re.IGNORECASE,
)


def asks_to_remember(text: str) -> bool:
    """Whether a user's goal asks for something to be kept ("Remember that ...", "Please note
    that ...", "Don't forget ...", "Keep in mind ..."), the only goals stored as permanent
    facts. Words such as "always", "never", "important" or "I'm" make a goal salient, not a
    fact; a question ("Do you remember ...?") is never a request."""
    stripped = text.strip()
    return not stripped.endswith("?") and _REMEMBER_REQUEST.search(stripped) is not None


@dataclasses.dataclass
class Episode:
    """What happened in one run, filled in by the agent as it goes."""

    run_id: str
    goal: str
    source: str = "user"
    actions: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    plan_text: str = ""
    answer: str = ""
    success: bool = False
    stop_reason: str = ""
    untrusted: bool = False  # the run read untrusted content (a tool result, a denial)
    chat_only: bool = False  # the goal only stated things or chatted (no request, no question)
    # what shows the run did its job: "tool:calculate ok", "check: ...", "feedback: +1"
    evidence: list[str] = dataclasses.field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``succeeded`` (finished, with evidence), ``unverified`` (finished, nothing checked
        it: a text answer), or ``failed``."""
        if not self.success:
            return "failed"
        return "succeeded" if self.evidence else "unverified"

    def text(self) -> str:
        lines = [f"Goal: {self.goal}"]
        if self.plan_text:
            lines.append(f"Plan: {self.plan_text}")
        if self.actions:
            lines.append("Actions: " + "; ".join(self.actions[-8:]))
        outcome = {
            "succeeded": f"succeeded ({'; '.join(self.evidence[-3:])})",
            "unverified": "answered, unverified",
        }.get(self.outcome, f"failed ({self.stop_reason})")
        lines.append(f"Outcome: {outcome}. Answer: {self.answer[:300]}")
        return "\n".join(lines)


class Learner:
    """Writes one agent's experience to long-term memory and keeps its tool statistics."""

    def __init__(
        self,
        store: LongTermMemory | None,
        *,
        agent: str,
        summarize: Callable[[str], str] | None,
        skills: SkillStore | None = None,
        reflector: Reflector | None = None,
    ) -> None:
        self.store = store
        self.agent = agent
        self.summarize = summarize
        self.skills = skills
        self.reflector = reflector
        self.tool_stats: dict[str, list[int]] = {}  # name -> its record (see _STATS_LEN)

    # -- statistics -----------------------------------------------------------------------------

    def record_tool(self, name: str, ok: bool, *, outage: bool = False) -> None:
        """Count a call. ``outage``: it failed in the tool itself (an exception, a timeout),
        not on the model's arguments; outages in a row can make the tool rest
        (:meth:`resting`), a call that succeeds ends the streak."""
        counts = self.tool_stats.setdefault(name, [0, 0])
        counts.extend([0] * (_STATS_LEN - len(counts)))  # saved before streaks were counted
        counts[0 if ok else 1] += 1
        if ok:
            counts[_STREAK] = 0
        elif outage:
            counts[_STREAK] += 1
            counts[_LAST_OUTAGE] = int(time.time())

    def resting(self, tools: list[str], after: int, seconds: float) -> list[str]:
        """Tools of ``tools`` that failed ``after`` times in a row in the tool itself, the
        last time less than ``seconds`` ago: not offered until then (a circuit breaker; the
        first call after the rest decides whether it rests again)."""
        if after < 1:
            return []
        now = time.time()
        return [
            name
            for name in tools
            if len(counts := self.tool_stats.get(name, ())) == _STATS_LEN
            and counts[_STREAK] >= after
            and now - counts[_LAST_OUTAGE] < seconds
        ]

    def stats_text(self, tools: list[str]) -> str:
        """``Tool record: calculate 4/4 ok, write_file 1/3 ok`` for tools used before."""
        parts = []
        for name in tools:
            ok, failed = self.tool_stats.get(name, (0, 0))[:2]
            if ok + failed:
                parts.append(f"{name} {ok}/{ok + failed} ok")
        return "Tool record: " + ", ".join(parts) if parts else ""

    # -- writing memories ----------------------------------------------------------------------

    def remember_fact(self, text: str, *, source: str, trust: TrustLevel, run_id: str) -> bool:
        """Store a fact once (the same words again are not stored twice); True when stored."""
        if self.store is None or not text.strip():
            return False
        key = _words(text)
        for hit in self.store.search(text, 3, kinds=[MemoryKind.FACT], agent=self.agent):
            if _words(hit.record.text) == key:
                return False
        self.store.add(
            MemoryRecord(
                kind=MemoryKind.FACT,
                text=text,
                agent=self.agent,
                importance=0.8,
                source=source,
                trust=trust,
                attributes={"run_id": run_id},
            )
        )
        return True

    def finish(self, episode: Episode, graph: TaskGraph | None) -> list[str]:
        """Store the episode; after a failure distil a lesson, after a planned success save
        a skill. Returns the texts of new lessons."""
        if self.store is None:
            return []
        if episode.chat_only and not episode.actions[:-1] and episode.success:
            # "My sister lives in Lyon.", "Thanks!": its facts are stored, there is no episode
            return [r.text for r in self.reflector.maybe_reflect()] if self.reflector else []
        self.store.add(
            MemoryRecord(
                kind=MemoryKind.EPISODIC,
                text=episode.text(),
                agent=self.agent,
                importance={"succeeded": 0.5, "unverified": 0.4}.get(episode.outcome, 0.7),
                source=f"run:{episode.source}",
                trust=TrustLevel.TOOL if episode.untrusted else TrustLevel.AGENT,
                attributes={
                    "run_id": episode.run_id,
                    "success": episode.success,
                    "outcome": episode.outcome,
                    "evidence": "; ".join(episode.evidence)[:500],
                    "stop_reason": episode.stop_reason,
                    "goal": episode.goal[:2000],
                },
            )
        )
        lessons: list[str] = []
        if not episode.success and episode.stop_reason not in ("cancelled",):
            lesson = self.distill(episode)
            if lesson:
                trust = TrustLevel.TOOL if episode.untrusted else TrustLevel.AGENT
                self._store_lesson(lesson, episode.goal, episode.run_id, LESSON_SOURCE, trust)
                lessons.append(lesson)
        if self.skills is not None and is_procedure(episode, graph):
            assert graph is not None
            try:
                self.skills.save(episode.goal, graph)
            except PlanError as exc:
                log.info("not stored as a skill: %s", exc)
        if self.reflector is not None:
            lessons += [r.text for r in self.reflector.maybe_reflect()]
        return lessons

    def lesson_prompt(self, episode: Episode) -> str:
        errors = "\n".join(f"- {e}" for e in episode.errors[-4:]) or "- (no error message)"
        return (
            f"A task failed.\nTask: {episode.goal}\nWhat went wrong:\n{errors}\n"
            "Write one short lesson for next time, starting with LESSON:"
        )

    def distill(self, episode: Episode) -> str:
        """One lesson for a failed run: the model's, else the failure stated plainly."""
        if self.summarize is not None:
            try:
                reply = self.summarize(self.lesson_prompt(episode))
            except Exception:  # a failing summariser must not lose the episode
                log.warning(
                    "the lesson summariser failed; stating the failure plainly", exc_info=True
                )
                reply = ""
            parsed = parse_lessons(reply, 0, 1)
            if parsed:
                return f"For '{_short(episode.goal)}': {parsed[0][0]}"
        what = episode.errors[-1] if episode.errors else episode.stop_reason
        return f"For '{_short(episode.goal)}': the last attempt failed ({_short(what, 160)})."

    def _store_lesson(
        self,
        text: str,
        goal: str,
        run_id: str,
        source: str,
        trust: TrustLevel = TrustLevel.AGENT,
    ) -> None:
        assert self.store is not None
        self.store.add(
            MemoryRecord(
                kind=MemoryKind.LESSON,
                text=text,
                agent=self.agent,
                importance=0.8,
                source=source,
                trust=trust,
                attributes={"run_id": run_id, "goal": goal[:2000]},
            )
        )

    def feedback(
        self, run_id: str, goal: str, rating: float, note: str, outcome: dict[str, Any]
    ) -> str | None:
        """Store user feedback on a run; a negative rating with a note becomes a lesson."""
        if self.store is None:
            return None
        text = f"Feedback on '{_short(goal)}': rating {rating:+.2f}" + (f". {note}" if note else "")
        self.store.add(
            MemoryRecord(
                kind=MemoryKind.EPISODIC,
                text=text,
                agent=self.agent,
                importance=min(1.0, 0.5 + abs(rating) / 2),
                source="feedback",
                trust=TrustLevel.USER,
                attributes={"run_id": run_id, "rating": float(rating), **outcome},
            )
        )
        if rating < 0 and note.strip():
            lesson = f"For '{_short(goal)}': the user said {note.strip()}"
            self._store_lesson(lesson, goal, run_id, "lesson:feedback")
            return lesson
        return None


def is_procedure(episode: Episode, graph: TaskGraph | None) -> bool:
    """A run worth keeping as a skill: a finished plan of two or more steps, carried out by at
    least two tool calls that succeeded (a single answer, or a plan answered in text, is not a
    procedure)."""
    if episode.outcome != "succeeded" or graph is None or not graph.succeeded():
        return False
    tool_ok = sum(1 for e in episode.evidence if e.startswith("tool:"))
    return len(graph.tasks()) >= 2 and tool_ok >= 2


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
