"""Memory training: the differentiable segment forward matches a streaming session exactly,
gradients cross segments through the memory, and a trained adapter round-trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from agentcore.core.cache import StreamingConfig
from agentcore.core.codec import ByteCodec
from agentcore.core.engine import Engine
from agentcore.core.infini import InfiniConfig, InfiniMemory, MemoryGates
from agentcore.train import DocumentMaker, MemoryTrainConfig, segment_forward, train_memory

CFG = MemoryTrainConfig(window=40, segment=20, segments=6, steps=4, eval_every=2, eval_docs=2)


@pytest.fixture(scope="module")
def engine(tiny_factory: Any) -> Engine:
    return Engine.from_hf(tiny_factory(seed=3), ByteCodec(), name="tiny-train")


def _session_logits(engine: Engine, ids: torch.Tensor, gates: MemoryGates, update: str) -> Any:
    core = engine.core
    d = core.dims
    memory = InfiniMemory(
        InfiniConfig(update=update),  # type: ignore[arg-type]
        gates,
        n_layers=d.n_layers,
        n_kv_heads=d.n_kv_heads,
        head_dim=d.head_dim,
        device=core.device,
    )
    stream = StreamingConfig(n_sink=CFG.n_sink, window=CFG.window, chunk_size=CFG.segment)
    cache = core.new_cache(stream, memory=memory)
    return core.prefill(ids, cache, logits="all")[0]


@pytest.mark.parametrize("update", ["linear", "delta"])
@pytest.mark.parametrize("beta", [float("-inf"), 0.0, -2.0])
def test_segment_forward_equals_a_streaming_session(
    engine: Engine, update: str, beta: float
) -> None:
    ids = torch.randint(0, 256, (1, CFG.length), generator=torch.Generator().manual_seed(5))
    gates = MemoryGates(engine.core.dims.n_layers, engine.core.dims.n_heads, init=beta)
    expected = _session_logits(engine, ids, gates, update)
    cfg = dataclasses.replace(CFG, update=update)  # type: ignore[arg-type]
    with torch.no_grad():
        hidden = segment_forward(engine.core, ids, gates, cfg)
        got = F.linear(hidden, engine.core.lm_head)[0]
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-4)


def test_gradients_reach_past_the_window_only_through_the_memory(engine: Engine) -> None:
    ids = torch.randint(0, 256, (1, CFG.length), generator=torch.Generator().manual_seed(6))
    changed = ids.clone()
    changed[0, 6:14] = (changed[0, 6:14] + 1) % 256  # segment 0, far outside the last window
    last = slice(CFG.length - CFG.segment, CFG.length)
    for beta, expect_change in ((float("-inf"), False), (0.0, True)):
        gates = MemoryGates(engine.core.dims.n_layers, engine.core.dims.n_heads, init=beta)
        with torch.no_grad():
            a = segment_forward(engine.core, ids, gates, CFG)[0, last]
            b = segment_forward(engine.core, changed, gates, CFG)[0, last]
        assert (not torch.equal(a, b)) == expect_change
    gates = MemoryGates(engine.core.dims.n_layers, engine.core.dims.n_heads, init=0.0)
    out = segment_forward(engine.core, ids, gates, CFG)[0, last].pow(2).mean()
    out.backward()
    assert gates.beta.grad is not None and gates.beta.grad.abs().sum() > 0


def _books(tmp_path: Path) -> list[Path]:
    words = ["the", "quiet", "river", "carried", "boats", "past", "the", "old", "mill", "daily"]
    g = torch.Generator().manual_seed(7)
    text = " ".join(words[int(i)] for i in torch.randint(0, len(words), (600,), generator=g))
    path = tmp_path / "book.txt"
    path.write_text(text)
    return [path]


def test_training_runs_and_the_adapter_round_trips(
    engine: Engine, tiny_factory: Any, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(CFG, lora_rank=2, window=64, segment=64)
    maker = DocumentMaker(engine.codec, _books(tmp_path), length=cfg.length, score_from=128, seed=0)
    with pytest.raises(ValueError, match="too short for the passkey template"):
        DocumentMaker(engine.codec, _books(tmp_path), length=100, score_from=50).passkey(50)
    docs = [maker.text(), maker.passkey(needle_before=200)]
    assert docs[1].kind == "passkey" and sum(docs[1].mask) >= 6
    assert len(docs[0].ids) == len(docs[1].ids) == cfg.length
    before = engine.core.layers[0].w_qkv.detach().clone()  # type: ignore[union-attr]
    gates, lora, metrics = train_memory(engine.core, maker, docs, cfg, log=lambda _: None)
    assert lora is not None
    assert len(metrics["history"]) == 2 and metrics["final"]["step"] == cfg.steps
    assert not torch.equal(gates.beta, torch.full_like(gates.beta, cfg.gate_init))  # it learned
    extra = {f"lora.A.{i}": lora.A[i] for i in range(len(lora.A))}
    extra.update({f"lora.B.{i}": lora.B[i] for i in range(len(lora.B))})
    path = gates.save(
        tmp_path / "a.safetensors",
        config={"lora_scale": lora.scale},
        metrics={"final": metrics["final"]},
        extra=extra,
    )
    assert (tmp_path / "a.json").is_file()
    other = Engine.from_hf(tiny_factory(seed=3), ByteCodec(), name="tiny-load")
    other.load_memory_adapter(path)
    torch.testing.assert_close(other.memory_gates().beta, gates.beta.detach())
    assert other.default_infini is not None and other.default_infini.update == cfg.update
    assert "infini" in other.new_session().extensions  # --memory-adapter turns the memory on
    merged = other.core.layers[0].w_qkv  # type: ignore[union-attr]
    torch.testing.assert_close(merged - before, lora.merged(0).detach(), atol=1e-6, rtol=0)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="segments must be >= 4"):
        MemoryTrainConfig(segments=3)
    with pytest.raises(ValueError, match=r"window \(100\) must be a multiple of segment"):
        MemoryTrainConfig(window=100, segment=64)
