"""``bench/replies.py``: what it counts as a loop, a right number and code that parses, and a
whole run on the tiny model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from agentcore.core.engine import Engine


@pytest.fixture(scope="module")
def replies(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("replies")


def test_what_counts_as_a_loop(replies: ModuleType) -> None:
    assert replies.loops("1. **10111111111111111111")  # SmolLM2's reply, greedy
    assert replies.loops("e não parece nada, " * 5)
    assert replies.loops("A soft whispering sound,\n" * 4)
    # a topic's words come back without a loop
    assert not replies.loops(
        "Pros of working from home: flexibility. Cons of working from home: isolation. "
        "Working from home suits some people."
    )
    assert not replies.loops("    return n * factorial(n - 1)\n" + " " * 16)  # indentation


def test_numbers_and_code_are_checked_as_a_user_would(replies: ModuleType) -> None:
    assert replies.has_number("The total is 2,500 dollars.", "2500")
    assert not replies.has_number("12 + 30 = 32", "42")
    assert not replies.has_number("Room 33080.", "3308")  # part of another number
    assert replies.code_parses("Here:\n```python\ndef f(n):\n    return n\n```\nDone.")
    assert not replies.code_parses("```python\ndef f(n)\n    return n\n```")
    assert not replies.code_parses("Use the max function.")  # no function defined
    assert replies.distinct_bigrams("a b a b a b") < replies.distinct_bigrams("a b c d e f")


def test_a_run_writes_every_arm(
    replies: ModuleType, tiny_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replies.Engine, "load", lambda *a, **k: tiny_engine)
    monkeypatch.setattr(replies, "REQUESTS", replies.REQUESTS[::7])
    monkeypatch.setattr(replies, "TOKENS", {"open": 4, "number": 4, "code": 4})
    assert replies.main(["--out", str(tmp_path)]) == 0
    raw = json.loads((tmp_path / "replies.json").read_text())
    assert set(raw["summary"]) == set(replies.ARMS)
    assert all(len(rows) == 4 for rows in raw["rows"].values())
