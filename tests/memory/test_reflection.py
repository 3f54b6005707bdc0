"""Reflection: threshold, prompt, parsing, stored lessons, restart safety; a scripted
summariser for the unit tests and the real model backend in a slow test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcore.memory import (
    HashEmbeddingFunction,
    LongTermMemory,
    MemoryKind,
    MemoryRecord,
    ReflectionConfig,
    Reflector,
    Summarizer,
    TrustLevel,
    parse_lessons,
)

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


class ScriptedSummarizer:
    """Replies from a list, recording every prompt."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.replies.pop(0)


def _events(
    ltm: LongTermMemory, n: int, start: datetime, importance: float = 0.5
) -> list[MemoryRecord]:
    return ltm.add_many(
        [
            MemoryRecord(
                kind="episodic",
                text=f"deploy {i} failed because the config was missing",
                agent="ops",
                time=start + timedelta(minutes=i),
                importance=importance,
            )
            for i in range(n)
        ]
    )


def test_scripted_summariser_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedSummarizer("x"), Summarizer)


def test_no_reflection_below_threshold(ltm: LongTermMemory) -> None:
    summarizer = ScriptedSummarizer()
    reflector = Reflector(ltm, summarizer, agent="ops", config=ReflectionConfig(threshold=5.0))
    _events(ltm, 9, T0)  # 4.5 < 5.0
    assert reflector.pending_importance() == pytest.approx(4.5)
    assert reflector.maybe_reflect() == []
    assert summarizer.prompts == []


def test_reflection_stores_cited_lessons(ltm: LongTermMemory) -> None:
    events = _events(ltm, 10, T0)
    ltm.add(MemoryRecord(kind="episodic", text="someone else's event", agent="other"))
    summarizer = ScriptedSummarizer(
        "Sure! Here are the lessons:\n"
        "LESSON: Always check the config exists before deploying (because of 1, 3, 99)\n"
        "LESSON: Deploy failures repeat when nothing changes (because of 2)\n"
    )
    reflector = Reflector(ltm, summarizer, agent="ops", config=ReflectionConfig(threshold=5.0))
    now = T0 + timedelta(hours=1)
    lessons = reflector.maybe_reflect(now=now)

    prompt = summarizer.prompts[0]
    assert "1. [2025-05-01 09:00] deploy 0 failed" in prompt
    assert "someone else's event" not in prompt
    assert "LESSON: <the lesson>" in prompt
    assert [lesson.text for lesson in lessons] == [
        "Always check the config exists before deploying",
        "Deploy failures repeat when nothing changes",
    ]
    assert lessons[0].evidence == (events[0].id, events[2].id)  # 99 is out of range
    assert lessons[1].evidence == (events[1].id,)
    for lesson in lessons:
        assert lesson.kind is MemoryKind.LESSON
        assert lesson.trust is TrustLevel.AGENT
        assert lesson.source == "reflection"
        assert lesson.time == now
        assert ltm.get(lesson.id) == lesson
    assert reflector.pending() == []
    assert reflector.last_reflection() == now


def test_pending_is_derived_from_the_store_so_it_survives_restart(store_path: Path) -> None:
    first = ScriptedSummarizer("LESSON: configs must be checked before deploys (because of 1)")
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as ltm:
        _events(ltm, 10, T0)
        Reflector(ltm, first, agent="ops", config=ReflectionConfig(threshold=5.0)).maybe_reflect(
            now=T0 + timedelta(hours=1)
        )
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as ltm:
        reflector = Reflector(
            ltm, ScriptedSummarizer(), agent="ops", config=ReflectionConfig(threshold=5.0)
        )
        assert reflector.pending() == []
        assert reflector.maybe_reflect() == []
        newer = _events(ltm, 3, T0 + timedelta(hours=2))
        assert reflector.pending() == newer


def test_reflection_reads_only_the_newest_memories(ltm: LongTermMemory) -> None:
    _events(ltm, 12, T0)
    summarizer = ScriptedSummarizer("a lesson drawn from the last four events")
    reflector = Reflector(
        ltm, summarizer, agent="ops", config=ReflectionConfig(threshold=1.0, max_memories=4)
    )
    (lesson,) = reflector.reflect()
    assert "deploy 8 failed" in summarizer.prompts[0]
    assert "deploy 7 failed" not in summarizer.prompts[0]
    assert len(lesson.evidence) == 4  # no citation: the lesson rests on everything it read
    assert lesson.time >= T0 + timedelta(minutes=11)


def test_unusable_reply_backs_off_until_more_importance_piles_up(ltm: LongTermMemory) -> None:
    _events(ltm, 10, T0)
    summarizer = ScriptedSummarizer("ok", "LESSON: configs go missing during rushed deploys")
    reflector = Reflector(ltm, summarizer, agent="ops", config=ReflectionConfig(threshold=5.0))
    assert reflector.maybe_reflect() == []
    assert reflector.maybe_reflect() == []  # not asked again yet
    assert len(summarizer.prompts) == 1
    _events(ltm, 10, T0 + timedelta(hours=1))  # +5.0 importance
    assert len(reflector.maybe_reflect()) == 1
    assert len(summarizer.prompts) == 2


def test_non_string_reply_is_an_error(ltm: LongTermMemory) -> None:
    _events(ltm, 2, T0)
    reflector = Reflector(ltm, lambda prompt: None, agent="ops")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="summarizer returned NoneType; expected str"):
        reflector.reflect()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "LESSON: check configs before deploys (because of 1, 2)",
            [("check configs before deploys", [1, 2])],
        ),
        (
            "1. Lesson 1: keep backups of configs (from 3)\n2. Lesson 2: rollbacks need a plan",
            [("keep backups of configs", [3]), ("rollbacks need a plan", [])],
        ),
        (
            "- deploys fail without config (2 and 3).\n- Here:\n- ok",
            [("deploys fail without config", [2, 3])],
        ),
        (
            "Intro text that is not a lesson\nLESSON: only tagged lines count here",
            [("only tagged lines count here", [])],
        ),
        ("", []),
    ],
)
def test_parse_lessons(reply: str, expected: list[tuple[str, list[int]]]) -> None:
    assert parse_lessons(reply, n_memories=5, max_lessons=3) == expected


def test_parse_lessons_caps_the_count() -> None:
    reply = "\n".join(f"LESSON: lesson number {i} is here" for i in range(10))
    assert len(parse_lessons(reply, n_memories=3, max_lessons=2)) == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError, match=r"ReflectionConfig.threshold=0: expected > 0"):
        ReflectionConfig(threshold=0)
    with pytest.raises(ValueError, match=r"max_lessons=0"):
        ReflectionConfig(max_lessons=0)


@pytest.mark.slow
def test_reflection_with_the_real_model_backend(ltm: LongTermMemory) -> None:
    """The agent's model as the summariser. Skips until agentcore.backends can build the
    default local backend: it looks for ``agentcore.backends.default_summarizer()``."""
    backends = pytest.importorskip("agentcore.backends")
    factory = getattr(backends, "default_summarizer", None)
    if factory is None:
        pytest.skip("agentcore.backends has no default_summarizer() yet")
    summarizer = factory()
    assert isinstance(summarizer, Summarizer)
    _events(ltm, 12, T0, importance=0.6)
    reflector = Reflector(ltm, summarizer, agent="ops", config=ReflectionConfig(threshold=5.0))
    prompt = reflector.prompt(reflector.pending())
    reply = summarizer(prompt)
    assert isinstance(reply, str) and reply.strip()
    lessons = reflector.maybe_reflect()
    # A 135M model may not follow the format; whatever it returns must be stored correctly.
    for lesson in lessons:
        assert ltm.get(lesson.id) == lesson
        assert lesson.kind is MemoryKind.LESSON and lesson.evidence


def test_pending_importance_is_counted_incrementally(
    ltm: LongTermMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    reflector = Reflector(
        ltm, ScriptedSummarizer("LESSON: deploys need their config files"), agent="ops"
    )
    _events(ltm, 4, T0)
    assert reflector.pending_importance() == pytest.approx(2.0)
    seen_since: list[datetime | None] = []
    real = ltm.list_records

    def spy(**kwargs: object) -> list[MemoryRecord]:
        seen_since.append(kwargs.get("since"))  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ltm, "list_records", spy)
    _events(ltm, 4, T0 + timedelta(hours=1))
    assert reflector.pending_importance() == pytest.approx(4.0)
    assert reflector.pending_importance() == pytest.approx(4.0)  # nothing new: no double count
    assert seen_since == [T0 + timedelta(minutes=3), T0 + timedelta(hours=1, minutes=3)]
    assert len(reflector.reflect(now=T0 + timedelta(hours=2))) == 1
    assert reflector.pending_importance() == 0.0
    _events(ltm, 2, T0 + timedelta(hours=3))
    assert reflector.pending_importance() == pytest.approx(1.0)
