"""``bench/sampling.py``: its ``before`` reference draws from the same distribution as the
shipped sampler, and both of its measurements run (tiny model)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from agentcore.core.engine import Engine
from agentcore.core.sampling import Sampler, SamplingParams


@pytest.fixture(scope="module")
def sampling(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("sampling")


def test_the_reference_and_the_shipped_sampler_pick_alike(sampling: ModuleType) -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0])
    sampler = Sampler(seed=1)
    for name, params in sampling.PARAMS.items():
        picks = {
            arm: torch.bincount(
                torch.tensor([pick(sampler, logits, params) for _ in range(3000)]), minlength=5
            ).float()
            / 3000
            for arm, pick in sampling.ARMS.items()
        }
        torch.testing.assert_close(
            picks["before"], picks["as shipped"], atol=0.04, rtol=0, msg=name
        )
    greedy = SamplingParams(temperature=0.0)
    assert sampling.pick_before(sampler, logits, greedy) == 4


def test_both_measurements_run_on_a_model(sampling: ModuleType, tiny_engine: Engine) -> None:
    logits = sampling.book_logits(tiny_engine, 3)
    assert len(logits) == 3 and logits[0].shape == (tiny_engine.codec.vocab_size,)
    picks = sampling.pick_us(logits, rounds=1)
    assert set(picks) == set(sampling.PARAMS)
    assert all(set(arms) == {"as shipped", "before"} for arms in picks.values())
    stream = sampling.stream_tok_s(tiny_engine, tokens=5, rounds=1)
    assert set(stream) == {"as shipped", "before"} and all(v > 0 for v in stream.values())
