"""``bench/speed.py --profile-step`` tells the parts of a decode step apart (tiny model)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

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


def test_the_native_kernel_counts_as_a_weight_matmul(speed: ModuleType) -> None:
    """An int8 engine on float32 activations runs its projections on agentcore's native
    kernel or its native decode ops: the profile still finds every one, and the kernel table
    has its row."""
    from agentcore import testing
    from agentcore.core import native

    if native.int8_linear() is None:
        pytest.skip(f"the native kernel does not run here: {native.status()}")
    engine = testing.tiny_engine(model=testing.tiny_llama())
    engine.core.quantize_int8(group_size=32)
    layers = engine.core.dims.n_layers
    # the layers run on the native decode ops: the head alone is a matmul of its own, each
    # layer's four projections sit in its two native layer ops
    out = speed.profile_step(engine, list(range(5, 40)), 3)
    parts = out["parts"]
    assert parts["weight matmuls"]["calls"] == 1
    assert parts["native layer ops (norm, Q/K/V, rotation; output, MLP)"]["calls"] == 2 * layers
    assert parts["attention kernel"]["calls"] == layers
    assert parts["RMS norms"]["calls"] == 1
    kernels = [r["kernel"] for r in speed.kernel_rows(engine, 1)]
    assert any(k.startswith("agentcore native int8") for k in kernels), kernels


def test_the_report_has_a_table_per_weights_arm(speed: ModuleType) -> None:
    row = {
        "context": 18,
        "agentcore_decode": 20.0,
        "agentcore_prefill": 100.0,
        "agentcore int8_decode": 40.0,
        "agentcore int8_prefill": 110.0,
        "llama.cpp_decode": 80.0,
        "llama.cpp_prefill": 200.0,
        "agree": 5,
        "agree agentcore int8": 3,
    }
    model = {
        "alias": "default",
        "window": 2044,
        "dtype": "float32",
        "weights": "packed",
        "arms": [
            {"name": "agentcore", "dtype": "float32", "weights": "packed"},
            {"name": "agentcore int8", "dtype": "float32", "weights": "int8"},
        ],
        "rows": [row],
        "rss_mib": {"agentcore": 1.0, "agentcore int8": 2.0, "llama.cpp": 3.0},
    }
    raw = {
        "machine": {"date": "today", "cpu": "x86_64", "cores": 2, "torch": "2"},
        "cpu": "a CPU",
        "llama_cpp": "0.3",
        "threads": 2,
        "steps": 32,
        "rounds": 3,
        "flags": " --weights auto,int8",
        "took_s": 60.0,
        "models": [model],
    }
    text = speed.report(raw)
    assert "## default (agentcore: window 2044, float32, packed weights)" in text
    assert "## default (agentcore: window 2044, float32, int8 weights)" in text
    assert "| 18 | 20 | 80 | 0.25 | 100 | 200 | 0.50 | 5 |" in text
    assert "| 18 | 40 | 80 | 0.50 | 110 | 200 | 0.55 | 3 |" in text


def test_the_bf16_kernel_on_int8_tiles_counts_as_a_weight_matmul(speed: ModuleType) -> None:
    """A bf16 int8 engine on a CPU with AVX512-BF16 runs its projections on agentcore's kernel
    over the int8 tiles: the profile counts every call as a weight matmul (the first version of
    the part table left them in "other tensor ops"), and both kernel tables have its row."""
    from agentcore import testing
    from agentcore.core import native

    if native.int8_linear_bf16() is None:
        pytest.skip(f"the bf16 kernel does not run here: {native.status()}")
    engine = testing.tiny_engine(model=testing.tiny_llama())
    engine.core.to(dtype=torch.bfloat16)
    engine.core.quantize_int8(dense_rows=4)
    assert engine.core.layers[0].w_qkv.tiled
    layers = engine.core.dims.n_layers
    out = speed.profile_step(engine, list(range(5, 40)), 3)
    assert out["parts"]["weight matmuls"]["calls"] == 4 * layers + 1
    for batch in (1, speed.BATCH_ROWS):
        kernels = [r["kernel"] for r in speed.kernel_rows(engine, 1, batch=batch)]
        assert any(k.startswith("agentcore bf16 on int8 tiles") for k in kernels), kernels
