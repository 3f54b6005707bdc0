"""WorkingMemory: typed sections, capacity eviction, rendering within a token budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.memory import (
    ItemKind,
    MemoryRecord,
    ScoredMemory,
    WorkingItem,
    WorkingMemory,
    WorkingMemoryConfig,
    estimate_tokens,
)


def _words(text: str) -> int:
    return len(text.split())


def test_sections_render_in_order_and_chronologically() -> None:
    wm = WorkingMemory(budget_tokens=500)
    wm.observe("the user asked for a summary", source="user")
    wm.note("check the second file first")
    wm.add_goal("summarise the report")
    wm.observe("tool returned 3 files", source="tool:ls", salience=0.9)
    wm.set_retrieved(
        [
            MemoryRecord(
                kind="lesson",
                text="reports need a TL;DR",
                agent="a1",
                time=datetime(2025, 1, 2, tzinfo=UTC),
            )
        ]
    )
    out = wm.render()
    assert out.dropped == ()
    assert out.text.split("\n\n") == [
        "## Current goals\n- summarise the report",
        "## Retrieved from long-term memory\n- (lesson, 2025-01-02) reports need a TL;DR",
        "## Recent observations\n- [user] the user asked for a summary\n- [tool:ls] tool returned 3 files",
        "## Scratch notes\n- check the second file first",
    ]
    assert out.tokens == estimate_tokens(out.text)
    assert [it.kind for it in out.included] == [
        ItemKind.GOAL,
        ItemKind.RETRIEVED,
        ItemKind.OBSERVATION,
        ItemKind.OBSERVATION,
        ItemKind.NOTE,
    ]


def test_budget_drops_least_salient_and_reports_it() -> None:
    wm = WorkingMemory(budget_tokens=24, count_tokens=_words)
    goal = wm.add_goal("ship the release", salience=0.1)  # goals outrank any salience
    keep = wm.observe("build failed on step three", salience=0.9)
    lose = wm.observe("someone said hello there again", salience=0.2)
    also = wm.note("retry with clean cache", salience=0.6)
    out = wm.render()
    assert out.tokens <= 24
    assert lose in out.dropped and len(out.dropped) == 1
    assert {goal, keep, also} == set(out.included)
    assert "hello" not in out.text


def test_smaller_items_still_fit_after_a_big_one_is_dropped() -> None:
    wm = WorkingMemory(budget_tokens=12, count_tokens=_words)
    big = wm.observe("word " * 40, salience=1.0)
    small = wm.observe("tiny", salience=0.1)
    out = wm.render()
    assert out.dropped == (big,)
    assert out.included == (small,)


def test_zero_budget_renders_nothing() -> None:
    wm = WorkingMemory()
    item = wm.add_goal("g")
    out = wm.render(budget_tokens=0)
    assert (out.text, out.tokens, out.included, out.dropped) == ("", 0, (), (item,))


def test_whole_text_is_rechecked_with_the_real_counter() -> None:
    """A tokenizer where parts and whole disagree: joining costs extra, so trim to fit."""

    def lumpy(text: str) -> int:
        return len(text.split()) + 3 * text.count("\n\n")

    wm = WorkingMemory(budget_tokens=14, count_tokens=lumpy)
    wm.add_goal("one two three")
    wm.observe("four five six", salience=0.9)
    wm.note("seven eight", salience=0.1)
    out = wm.render()
    assert lumpy(out.text) == out.tokens <= 14
    assert len(out.included) + len(out.dropped) == 3


def test_full_section_evicts_least_salient_then_oldest() -> None:
    evicted: list[WorkingItem] = []
    config = WorkingMemoryConfig(max_observations=3)
    wm = WorkingMemory(config, on_evict=evicted.append)
    first = wm.observe("first", salience=0.5)
    important = wm.observe("important", salience=0.9)
    wm.observe("third", salience=0.5)
    wm.observe("fourth", salience=0.5)
    assert evicted == [first]
    wm.observe("fifth", salience=0.5)
    assert [e.text for e in evicted] == ["first", "third"]
    assert important in wm.items(ItemKind.OBSERVATION)
    assert len(wm.items("observation")) == 3


def test_retrieved_hits_replace_the_previous_ones_best_first() -> None:
    wm = WorkingMemory(WorkingMemoryConfig(max_recalled=2))
    records = [MemoryRecord(kind="fact", text=f"fact {i}", agent="a1") for i in range(3)]
    hits = [
        ScoredMemory(
            record=r, score=1.0 - i / 10, similarity=0.5, relevance=0.5, recency=0.5, importance=0.5
        )
        for i, r in enumerate(records)
    ]
    wm.set_retrieved(hits[2:])
    kept = wm.set_retrieved(hits)
    assert [it.memory_id for it in kept] == [records[0].id, records[1].id]
    assert [it.salience for it in kept] == pytest.approx([1.0, 2 / 3])
    assert [it.text for it in wm.items(ItemKind.RETRIEVED)] == ["fact 0", "fact 1"]


def test_the_old_recall_names_still_work() -> None:
    wm = WorkingMemory()
    record = MemoryRecord(kind="fact", text="the sky is blue", agent="a1")
    with pytest.warns(DeprecationWarning, match=r"use set_retrieved\(\)"):
        (kept,) = wm.recall([record])
    assert ItemKind.RECALLED is ItemKind.RETRIEVED is ItemKind("recalled")
    assert wm.items("recalled") == (kept,) and list(ItemKind) == [
        ItemKind.GOAL,
        ItemKind.RETRIEVED,
        ItemKind.OBSERVATION,
        ItemKind.NOTE,
    ]


def test_goals_complete_and_items_clear() -> None:
    wm = WorkingMemory()
    goal = wm.add_goal("write tests")
    wm.add_goal("fix   the\nbug")  # whitespace collapses: one item, one line
    assert wm.complete_goal("fix the bug")
    assert not wm.complete_goal("never added")
    assert wm.complete_goal(goal)
    wm.note("n")
    assert len(wm) == 1
    wm.clear("note")
    assert len(wm) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda wm: wm.observe("x", salience=1.5),
            r"salience=1.5: expected a number between 0 and 1",
        ),
        (lambda wm: wm.note("   "), r"text='   ': expected non-empty text"),
        (lambda wm: wm.render(budget_tokens=-1), r"budget_tokens=-1"),
    ],
)
def test_bad_input_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(WorkingMemory())  # type: ignore[operator]


def test_config_presets_and_validation() -> None:
    assert WorkingMemoryConfig.small().budget_tokens < WorkingMemoryConfig.default().budget_tokens
    assert WorkingMemoryConfig.large().max_observations > WorkingMemoryConfig().max_observations
    with pytest.raises(
        ValueError, match=r"WorkingMemoryConfig.max_notes=0: expected an integer >= 1"
    ):
        WorkingMemoryConfig(max_notes=0)
    assert WorkingMemory(budget_tokens=77).config.budget_tokens == 77


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 4
    assert estimate_tokens("x" * 400) == 100


_entry = st.tuples(
    st.sampled_from(["goal", "observation", "note"]),
    st.text(alphabet="abc def\n", min_size=1, max_size=60).filter(lambda s: s.strip() != ""),
    st.floats(min_value=0, max_value=1),
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(_entry, max_size=25), budget=st.integers(min_value=0, max_value=120))
def test_render_never_exceeds_budget_and_accounts_for_every_item(
    entries: list[tuple[str, str, float]], budget: int
) -> None:
    wm = WorkingMemory(WorkingMemoryConfig(max_observations=10, max_notes=10, max_goals=10))
    for kind, text, salience in entries:
        {"goal": wm.add_goal, "observation": wm.observe, "note": wm.note}[kind](text, salience)
    out = wm.render(budget_tokens=budget)
    assert out.tokens == estimate_tokens(out.text) <= budget
    assert sorted(out.included + out.dropped, key=lambda it: it.seq) == sorted(
        wm.items(), key=lambda it: it.seq
    )
    for item in out.included:
        assert item.line() in out.text.split("\n")
