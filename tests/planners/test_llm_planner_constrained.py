"""Integration: plans decoded under the plan schema by the real constraint engine (llguidance)
always become valid graphs, with no repair and no retry.

The decoder here picks tokens at random among those llguidance allows (byte-level tokenizer),
so it explores far stranger outputs than a model would; the scripted fake used elsewhere
does not enforce the schema at all.
"""

from __future__ import annotations

import random
from typing import Any

import llguidance
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from llguidance import LLMatcher

from agentcore.planners import LLMPlanner, PlanContext, PlannerLimits, TaskStatus

BYTES = llguidance.LLTokenizer("byte")


class RandomConstrainedGenerator:
    """A ``JsonGenerator`` that samples uniformly among the tokens the grammar allows."""

    def __init__(self, seed: int, stop_bias: float = 0.5) -> None:
        self.rng = random.Random(seed)
        self.stop_bias = stop_bias
        self.calls = 0

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str:
        self.calls += 1
        grammar = LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False}
        )
        matcher = LLMatcher(BYTES, grammar)
        assert not matcher.is_error(), matcher.get_error()
        out: list[int] = []
        eos = BYTES.eos_token
        while not matcher.is_stopped():
            mask = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
            allowed = np.flatnonzero(np.unpackbits(mask, bitorder="little")[: BYTES.vocab_size])
            choices = [int(t) for t in allowed if t != eos]
            if eos in allowed and (not choices or self.rng.random() < self.stop_bias):
                break
            token = self.rng.choice(choices)
            assert matcher.consume_token(token), matcher.get_error()
            out.append(token)
        assert matcher.is_accepting()
        return BYTES.decode_str(out)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), max_steps=st.integers(2, 7))
def test_constrained_plans_are_always_valid_graphs(seed: int, max_steps: int) -> None:
    gen = RandomConstrainedGenerator(seed)
    limits = PlannerLimits(max_steps=max_steps, max_goal_chars=12)
    ctx = PlanContext(tools=("search", "shell"), agents=("writer",))
    graph = LLMPlanner(gen, limits).plan("anything", ctx)
    assert gen.calls == 1  # no retry was needed
    assert not [n for n in graph.notes if "dropped" in n]  # no dangling reference to repair
    assert limits.min_steps <= len(graph) + sum("merged" in n for n in graph.notes) <= max_steps
    order = graph.topological_order()
    for a, b in graph.edges():
        assert int(a) < int(b) and order.index(a) < order.index(b)
    assert graph.ready_ids() and all(
        graph.task(t).status is TaskStatus.READY for t in graph.ready_ids()
    )
    for task in graph.tasks():
        assert task.assignee is None or task.assignee.name in ("search", "shell", "writer")
