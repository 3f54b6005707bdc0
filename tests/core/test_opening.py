"""A session keeps its conversation's opening in view (:data:`OPENING_TOKENS` sinks): the
sizes :meth:`StreamingConfig.for_budget` chooses, and, on both registered models, that the
chat template's system prompt and the start of the first user turn fit in the sinks."""

from __future__ import annotations

import pytest

from agentcore.core.cache import OPENING_TOKENS, StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.models import QWEN25_CODER_05B

FIRST_LINE = "Here is a long passage from a book."


def test_for_budget_keeps_the_opening_inside_the_budget() -> None:
    cfg = StreamingConfig.for_budget(2048)
    assert (cfg.n_sink, cfg.window, cfg.budget) == (OPENING_TOKENS, 2048 - OPENING_TOKENS, 2048)
    assert StreamingConfig().budget == 2048 and StreamingConfig().n_sink == OPENING_TOKENS
    small = StreamingConfig.for_budget(100)  # a quarter of a small budget at most
    assert (small.n_sink, small.window) == (25, 75)
    assert StreamingConfig.for_budget(2048, n_sink=4).window == 2044


@pytest.mark.slow
@pytest.mark.parametrize("alias", [None, QWEN25_CODER_05B.alias])
def test_the_chat_opening_fits_in_the_sinks(alias: str | None) -> None:
    engine = Engine.load(alias)
    opening = engine.codec.render_chat(
        [{"role": "user", "content": FIRST_LINE + " " + "word " * 200}],
        add_generation_prompt=False,
    )
    head = opening[: opening.index(FIRST_LINE) + len(FIRST_LINE)]
    assert len(engine.codec.encode(head)) <= engine.default_streaming().n_sink
