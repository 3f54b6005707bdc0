"""Infini-attention compressive memory: closed gate exactness, delta rule, recall, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agentcore import testing
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.infini import InfiniConfig, InfiniMemory, MemoryGates, sigma
from agentcore.core.session import SessionConfig

STREAM = StreamingConfig(n_sink=4, window=40, chunk_size=20)


def _memory(update: str, d: int = 16, h: int = 2) -> InfiniMemory:
    return InfiniMemory(
        InfiniConfig(update=update),  # type: ignore[arg-type]
        MemoryGates(1, h),
        n_layers=1,
        n_kv_heads=h,
        head_dim=d,
        device=torch.device("cpu"),
    )


def test_closed_gate_equals_streaming_exactly(tiny_engine: Engine) -> None:
    ids = torch.randint(0, 256, (300,), generator=torch.Generator().manual_seed(0)).tolist()
    plain = tiny_engine.new_session(SessionConfig(streaming=STREAM))
    plain.append_tokens(ids)
    gates = tiny_engine.memory_gates()
    with torch.no_grad():
        gates.beta.fill_(float("-inf"))
    try:
        for update in ("linear", "delta"):
            s = tiny_engine.new_session(
                SessionConfig(streaming=STREAM, infini=InfiniConfig(update=update))
            )  # type: ignore[arg-type]
            s.append_tokens(ids)
            assert s.extensions["infini"].written.min() > 0  # the memory was written
            assert torch.equal(s.next_logits, plain.next_logits)  # type: ignore[arg-type]
    finally:
        with torch.no_grad():
            gates.beta.fill_(-4.0)


def test_open_gate_changes_the_output(tiny_engine: Engine) -> None:
    ids = torch.randint(0, 256, (300,), generator=torch.Generator().manual_seed(1)).tolist()
    plain = tiny_engine.new_session(SessionConfig(streaming=STREAM))
    plain.append_tokens(ids)
    s = tiny_engine.new_session(SessionConfig(streaming=STREAM, infini=InfiniConfig()))
    s.append_tokens(ids)
    assert not torch.allclose(s.next_logits, plain.next_logits)  # type: ignore[arg-type]


def test_delta_rule_repeated_write_leaves_memory_unchanged() -> None:
    mem = _memory("delta")
    g = torch.Generator().manual_seed(2)
    k = torch.randn(1, 2, 1, 16, generator=g)
    v = torch.randn(1, 2, 1, 16, generator=g)
    mem.memory_update(0, k, v)
    m1, z1 = mem.M.clone(), mem.z.clone()
    mem.memory_update(0, k, v)
    assert torch.allclose(mem.M, m1, atol=1e-4)
    # z counts the key again (normaliser), M stores nothing new: the value was already there
    linear = _memory("linear")
    linear.memory_update(0, k, v)
    lm = linear.M.clone()
    linear.memory_update(0, k, v)
    assert torch.allclose(linear.M, 2 * lm)
    assert torch.equal(z1 * 2, mem.z)


def test_folding_every_layer_at_once_equals_layer_by_layer() -> None:
    g = torch.Generator().manual_seed(5)
    for update in ("linear", "delta"):
        mems = [
            InfiniMemory(
                InfiniConfig(update=update),  # type: ignore[arg-type]
                MemoryGates(3, 4),
                n_layers=3,
                n_kv_heads=2,
                head_dim=8,
                device=torch.device("cpu"),
            )
            for _ in range(2)
        ]
        for step in range(5):  # one token per step, as a decode step evicts
            k = torch.randn(3, 1, 2, 1, 8, generator=g)
            v = torch.randn(3, 1, 2, 1, 8, generator=g)
            for layer in range(3):
                mems[0].memory_update(layer, k[layer], v[layer])
            mems[1].on_evict_layers(k, v, torch.tensor([step]))
        assert torch.allclose(mems[0].M, mems[1].M, atol=1e-6), update
        assert torch.allclose(mems[0].z, mems[1].z, atol=1e-6), update
        assert torch.equal(mems[0].written, mems[1].written)


def test_decode_folds_like_the_layer_by_layer_path(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token-by-token decoding across evictions, open gates: the batched fold of a decode step
    gives the logits the per-layer fold gives."""
    ids = torch.randint(0, 256, (120,), generator=torch.Generator().manual_seed(6)).tolist()

    def run() -> list[torch.Tensor]:
        s = tiny_engine.new_session(SessionConfig(streaming=STREAM, infini=InfiniConfig()))
        s.append_tokens(ids[:30])
        out = []
        for t in ids[30:]:
            s.append_tokens([t])
            out.append(s.next_logits.clone())  # type: ignore[union-attr]
        assert s.extensions["infini"].written.min() > 0
        return out

    batched = run()

    def layer_by_layer(
        self: InfiniMemory, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor
    ) -> None:
        for layer in range(k.shape[0]):
            self.on_evict(layer, k[layer], v[layer], pos)

    monkeypatch.setattr(InfiniMemory, "on_evict_layers", layer_by_layer)
    for a, b in zip(batched, run(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_associative_recall_through_memory() -> None:
    """Keys written with their values come back when queried; unrelated queries do not."""
    d, pairs = 16, 4
    g = torch.Generator().manual_seed(3)
    # near-orthogonal feature vectors: keys whose sigma() are sparse one-hot-like patterns
    keys = torch.full((pairs, d), -6.0)
    for i in range(pairs):
        keys[i, 4 * i : 4 * i + 4] = 3.0
    values = torch.randn(pairs, d, generator=g)
    for update in ("linear", "delta"):
        mem = _memory(update, d=d, h=1)
        mem.memory_update(0, keys[None, None], values[None, None])
        out = mem.memory_read(0, keys[None, None])[0, 0]  # [pairs, d]
        err = (out - values).norm(dim=-1) / values.norm(dim=-1)
        assert float(err.max()) < 0.05, (update, err)
        other = mem.memory_read(0, torch.randn(1, 1, 3, d, generator=g))[0, 0]
        assert float((other[:, None] - values[None]).norm(dim=-1).min()) > 0.3


def test_memory_is_saved_with_the_session(tiny_engine: Engine, tmp_path: Path) -> None:
    s = tiny_engine.new_session(
        SessionConfig(streaming=STREAM, infini=InfiniConfig(update="linear"))
    )
    s.append_tokens(
        torch.randint(0, 256, (250,), generator=torch.Generator().manual_seed(4)).tolist()
    )
    r = tiny_engine.restore_session(s.save(tmp_path / "m.session"))
    a, b = s.extensions["infini"], r.extensions["infini"]
    assert torch.equal(a.M, b.M) and torch.equal(a.z, b.z)
    s.append_tokens([5, 6, 7])
    r.append_tokens([5, 6, 7])
    assert torch.allclose(s.next_logits, r.next_logits, atol=1e-6)  # type: ignore[arg-type]


def test_restoring_a_session_leaves_the_engine_gates_alone(tmp_path: Path) -> None:
    """A session saved under other gates resumes with its own copy of them; the gates every
    other session of the engine reads stay as they are."""
    engine = testing.tiny_engine(name="tiny-gates")
    config = SessionConfig(streaming=STREAM, infini=InfiniConfig())
    ids = torch.randint(0, 256, (250,), generator=torch.Generator().manual_seed(5)).tolist()
    saved = engine.new_session(config)
    saved.append_tokens(ids)
    path = saved.save(tmp_path / "g.session")
    shared = engine.memory_gates()
    with torch.no_grad():
        shared.beta.fill_(-1.0)  # e.g. an adapter loaded since the save
    other = engine.new_session(config)
    restored = engine.restore_session(path)
    assert torch.equal(shared.beta, torch.full_like(shared.beta, -1.0))
    assert other.extensions["infini"].gates is shared
    assert torch.equal(restored.extensions["infini"].gates.beta, torch.full_like(shared.beta, -4.0))
    restored.append_tokens([5, 6, 7])
    with torch.no_grad():
        shared.beta.fill_(-4.0)
    saved.append_tokens([5, 6, 7])
    assert torch.allclose(saved.next_logits, restored.next_logits, atol=1e-6)  # type: ignore[arg-type]
    again = engine.restore_session(path)  # saved gates equal to the engine's: shared again
    assert again.extensions["infini"].gates is shared


def test_gates_adapter_round_trip(tmp_path: Path) -> None:
    gates = MemoryGates(3, 4)
    with torch.no_grad():
        gates.beta[1, 2] = 1.5
    path = gates.save(tmp_path / "gates.safetensors", config={"lr": 0.1}, metrics={"loss": 1.0})
    assert path.with_suffix(".json").is_file()
    back = MemoryGates.load(path, 3, 4)
    assert torch.equal(back.beta, gates.beta)
    with pytest.raises(ValueError, match="layers, heads"):
        MemoryGates.load(path, 2, 4)
    with pytest.raises(FileNotFoundError, match="train memory"):
        MemoryGates.load(tmp_path / "missing.safetensors", 3, 4)


def test_sigma_is_non_negative_and_read_is_finite() -> None:
    x = torch.linspace(-50, 50, 101)
    assert bool((sigma(x) >= 0).all())  # ELU+1 underflows to 0 far below -15 in float32
    assert bool((sigma(x[x > -15]) > 0).all())
    mem = _memory("delta")
    far = torch.full((1, 2, 3, 16), -80.0)  # every feature underflows: the normaliser is 0
    mem.memory_update(0, far, torch.ones(1, 2, 3, 16))
    assert torch.isfinite(mem.memory_read(0, far)).all()
