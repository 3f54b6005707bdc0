"""The streaming cache: exactness against transformers and a literal StreamingLLM reference."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from agentcore.core.cache import StreamingConfig
from agentcore.core.llama import CoreModel


def _tbt(core: CoreModel, ids: torch.Tensor, cfg: StreamingConfig) -> torch.Tensor:
    cache = core.new_cache(cfg)
    return torch.cat(
        [core.forward(ids[:, i : i + 1], cache, logits="all") for i in range(ids.shape[1])], 1
    )


@pytest.mark.parametrize("family", ["llama", "qwen2", "llama-mha"])
def test_short_input_matches_transformers(family: str, make_llama: Any, make_qwen2: Any) -> None:
    hf = {
        "llama": make_llama,
        "qwen2": make_qwen2,
        "llama-mha": lambda: make_llama(num_key_value_heads=4),
    }[family]()
    core = CoreModel(hf)
    ids = torch.randint(0, 258, (1, 70), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(ids).logits
    cfg = StreamingConfig(n_sink=4, window=100, chunk_size=32)
    chunked = core.prefill(ids, core.new_cache(cfg), logits="all")
    assert torch.allclose(chunked, ref, atol=1e-4), (chunked - ref).abs().max()
    tbt = _tbt(core, ids, cfg)
    assert torch.allclose(tbt, ref, atol=1e-4), (tbt - ref).abs().max()


def test_eviction_matches_literal_reference(tiny_hf: Any, literal_reference: Any) -> None:
    core = CoreModel(tiny_hf)
    ids = torch.randint(0, 258, (1, 90), generator=torch.Generator().manual_seed(2))
    cfg = StreamingConfig(n_sink=4, window=24, chunk_size=8)
    ref = literal_reference(tiny_hf, ids[0].tolist(), n_sink=4, window=24)
    tbt = _tbt(core, ids, cfg)[0]
    assert torch.allclose(tbt, ref, atol=1e-4), (tbt - ref).abs().max()
    chunked = core.prefill(ids, core.new_cache(cfg), logits="all")[0]
    assert torch.allclose(chunked, ref, atol=1e-4), (chunked - ref).abs().max()


def test_positions_are_assigned_inside_the_cache(tiny_hf: Any, literal_reference: Any) -> None:
    # window 3 + 4 sinks: after token 8 the cache holds [0,1,2,3,6,7,8] at positions 0..6
    core = CoreModel(tiny_hf)
    ids = torch.arange(10, 19)[None]
    cfg = StreamingConfig(n_sink=4, window=3, chunk_size=3)
    cache = core.new_cache(cfg)
    core.prefill(ids, cache)
    assert sorted(cache.ring_pos.tolist()) == [6, 7, 8]
    assert cache.cached_tokens() == 7
    ref = literal_reference(tiny_hf, ids[0].tolist(), n_sink=4, window=3)
    assert torch.allclose(_tbt(core, ids, cfg)[0], ref, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 5, 16, 40])
def test_chunk_sizes_agree(tiny_hf: Any, chunk: int) -> None:
    core = CoreModel(tiny_hf)
    ids = torch.randint(0, 258, (1, 200), generator=torch.Generator().manual_seed(3))
    base = _tbt(core, ids, StreamingConfig(n_sink=4, window=40, chunk_size=40))
    out = core.prefill(
        ids, core.new_cache(StreamingConfig(n_sink=4, window=40, chunk_size=chunk)), logits="all"
    )
    assert torch.allclose(out, base, atol=1e-5)


def test_no_sinks_is_a_plain_sliding_window(tiny_hf: Any, literal_reference: Any) -> None:
    core = CoreModel(tiny_hf)
    ids = torch.randint(0, 258, (1, 60), generator=torch.Generator().manual_seed(4))
    cfg = StreamingConfig(n_sink=0, window=16, chunk_size=8)
    ref = literal_reference(tiny_hf, ids[0].tolist(), n_sink=0, window=16)
    out = core.prefill(ids, core.new_cache(cfg), logits="all")[0]
    assert torch.allclose(out, ref, atol=1e-4)


def test_chunk_larger_than_budget_is_rejected(tiny_hf: Any) -> None:
    core = CoreModel(tiny_hf)
    cache = core.new_cache(StreamingConfig(n_sink=4, window=16, chunk_size=8))
    with pytest.raises(ValueError, match="chunk_size"):
        core.forward(torch.zeros(1, 9, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="chunk_size must be between"):
        StreamingConfig(n_sink=4, window=16, chunk_size=17)


def test_long_stream_has_bounded_cache(tiny_hf: Any) -> None:
    core = CoreModel(tiny_hf)
    cfg = StreamingConfig(n_sink=4, window=64, chunk_size=64)
    cache = core.new_cache(cfg)
    before = cache.nbytes()
    g = torch.Generator().manual_seed(5)
    total = 0
    while total < 100_000:
        ids = torch.randint(0, 258, (1, 64), generator=g)
        core.forward(ids, cache, logits="none")
        total += 64
        assert cache.cached_tokens() <= cfg.budget
    assert cache.pos == total
    assert cache.nbytes() == before  # static buffers: nothing grows with the stream
    # RoPE angles at position 100K stay exact: next-token logits are finite and well-formed
    logits = core.forward(torch.tensor([[7]]), cache)
    assert torch.isfinite(logits).all()


def test_far_positions_keep_precision(tiny_hf: Any) -> None:
    """The same window content gives the same logits at stream offset 0 and 1,000,000."""
    core = CoreModel(tiny_hf)
    cfg = StreamingConfig(n_sink=0, window=32, chunk_size=32)
    ids = torch.randint(0, 258, (1, 80), generator=torch.Generator().manual_seed(6))
    near = core.prefill(ids, core.new_cache(cfg), logits="all")
    far_cache = core.new_cache(cfg)
    far_cache.pos = 1_000_000  # pretend a million tokens already went by (no sinks to see them)
    far = core.prefill(ids, far_cache, logits="all")
    assert torch.allclose(near, far, atol=1e-3), (near - far).abs().max()
