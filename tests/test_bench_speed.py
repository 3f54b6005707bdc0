"""``bench/speed.py --profile-step`` tells the parts of a decode step apart (tiny model)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from agentcore.core.engine import Engine


@pytest.fixture(scope="module")
def speed(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("speed")


def test_the_step_profile_finds_every_projection_norm_and_attention(
    speed: ModuleType, tiny_engine: Engine
) -> None:
    """Per step: four projections per layer plus the LM head, two norms per layer plus the
    final one, one attention call per layer; the parts add up to the profiled step."""
    layers = tiny_engine.core.dims.n_layers
    out = speed.profile_step(tiny_engine, list(range(5, 40)), 3)
    parts = out["parts"]
    assert parts["weight matmuls"]["calls"] == 4 * layers + 1
    assert parts["RMS norms"]["calls"] == 2 * layers + 1
    assert parts["attention kernel"]["calls"] == layers
    assert parts["other tensor ops"]["calls"] > 0
    assert sum(p["ms"] for p in parts.values()) == pytest.approx(out["profiled_step_ms"])
    assert out["weight_mib_per_step"] > 0
