"""Recalled text weighed up in chosen heads (``RecallConfig.read_bias`` and ``read_heads``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from agentcore import testing
from agentcore.core import cache as cache_module
from agentcore.core import native
from agentcore.core.cache import StreamingCache, StreamingConfig, decode_attention
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.session import Session, SessionConfig

STREAM = StreamingConfig(n_sink=4, window=60, chunk_size=30)
# every question recalls (no gate), so the tests see recalled slots on every decode step
RECALL = RecallConfig(block_size=16, top_k=2, candidates=4, refresh=4, host_blocks=1000)


def _ids(seed: int, n: int) -> list[int]:
    return torch.randint(5, 256, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def _session(engine: Engine, recall: RecallConfig, ids: list[int]) -> Session:
    s = engine.new_session(SessionConfig(streaming=STREAM, recall=recall))
    s.append_tokens(ids)
    return s


@pytest.mark.parametrize(
    ("heads", "expected"),
    [
        (((1,),), "pairs"),
        (((1, -1),), "pairs"),
        (((1, 2, 3),), "pairs"),
        ((("1", 2),), "pairs"),
        (((True, 2),), "pairs"),
    ],
)
def test_read_heads_must_be_layer_head_pairs(heads: object, expected: str) -> None:
    with pytest.raises(
        ValueError, match=r"RecallConfig\.read_heads must be \(layer, query head\) "
    ):
        RecallConfig(read_heads=heads)  # type: ignore[arg-type]


def test_read_bias_must_be_finite_and_pairs_are_normalised() -> None:
    with pytest.raises(
        ValueError, match=r"RecallConfig\.read_bias must be a finite number, got inf"
    ):
        RecallConfig(read_bias=float("inf"))
    assert RecallConfig(read_heads=[[1, 2], (0, 3)]).read_heads == ((1, 2), (0, 3))  # type: ignore[list-item]


def test_a_head_the_model_does_not_have_is_refused_naming_its_shape(tiny_engine: Engine) -> None:
    for heads in (((2, 0),), ((0, 4),)):
        recall = dataclasses.replace(RECALL, read_bias=2.0, read_heads=heads)
        with pytest.raises(ValueError, match=r"this model has 2 layers of 4 query heads"):
            tiny_engine.new_session(SessionConfig(streaming=STREAM, recall=recall))


def test_nothing_changes_until_a_step_reads_recalled_text(tiny_engine: Engine) -> None:
    """The bias is on recalled slots only: a stream that has evicted nothing steps bit for bit
    as without it; once blocks are recalled, the chosen heads read them differently."""
    biased = dataclasses.replace(RECALL, read_bias=3.0, read_heads=((1, 2),))
    short = _ids(0, 50)  # inside sinks + window: nothing evicted, nothing recalled
    a, b = _session(tiny_engine, RECALL, short), _session(tiny_engine, biased, short)
    assert torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]
    for tok in (7, 8, 9):
        a.append_tokens([tok])
        b.append_tokens([tok])
        assert torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]
    long = _ids(1, 300)
    a, b = _session(tiny_engine, RECALL, long), _session(tiny_engine, biased, long)
    assert a.cache.n_recalled == b.cache.n_recalled > 0
    assert not torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]
    a.append_tokens([7])  # a decode step
    b.append_tokens([7])
    assert not torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]


def test_every_head_named_is_the_same_as_every_head(tiny_engine: Engine) -> None:
    """``read_heads=()`` weighs every head; naming all of them does the same, bit for bit, in
    the question's chunk and in the decode steps after it."""
    every = dataclasses.replace(RECALL, read_bias=2.0)
    named = dataclasses.replace(every, read_heads=tuple((i, h) for i in range(2) for h in range(4)))
    ids = _ids(2, 300)
    a, b = _session(tiny_engine, every, ids), _session(tiny_engine, named, ids)
    for tok in (None, 7, 8):
        if tok is not None:
            a.append_tokens([tok])
            b.append_tokens([tok])
        assert torch.equal(a.next_logits, b.next_logits)  # type: ignore[arg-type]


def test_a_decode_step_adds_the_bias_to_the_recalled_keys_of_the_chosen_heads_only(
    tiny_engine: Engine,
) -> None:
    """One layer's decode attention with query head 3 weighed up (KV head 1, its second query
    head): head 3's weights over the recalled keys are multiplied by e**b and renormalised, as
    written out here per key; the other heads read as the unbiased step does."""
    b = 2.5
    recall = dataclasses.replace(RECALL, read_bias=b, read_heads=((0, 3),))
    s = _session(tiny_engine, recall, _ids(3, 300))
    cache = s.cache
    with torch.inference_mode():
        cache.begin(1)  # planned only, never run
    plan = cache._step
    assert plan is not None and plan.decode and plan.n_recall > 0 and plan.read_bias == b
    bias = cache._head_bias[0]
    assert bias is not None and bias.tolist() == [[0.0, 0.0], [0.0, b]]
    assert cache._head_bias[1] is None  # a layer with no chosen head reads as before
    d = cache.head_dim
    qg = torch.randn(1, 2, 2, d, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        got = cache._biased_decode(0, qg, plan, bias)
    n, ns, r = plan.n_keys, STREAM.n_sink, plan.n_recall
    keys, vals = cache.att_k[0][:, :, :n].float(), cache.att_v[0][:, :, :n].float()
    mask = torch.zeros(n) if plan.key_mask is None else plan.key_mask[0, :n].float()
    recalled = torch.zeros(n, dtype=torch.bool)
    recalled[ns : ns + r] = True
    for kv in range(2):
        for g in range(2):
            scores = keys[0, kv] @ qg[0, kv, g] * d**-0.5 + mask
            weights = torch.softmax(scores, dim=0)
            if (kv, g) == (1, 1):
                weights = torch.where(recalled, weights * torch.e**b, weights)
                weights = weights / weights.sum()
            torch.testing.assert_close(got[0, kv, g], weights @ vals[0, kv], atol=1e-5, rtol=1e-5)
    plain = decode_attention(qg, cache.att_k[0], cache.att_v[0], plan.key_mask, n)
    torch.testing.assert_close(got[0, 0], plain[0, 0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[0, 1, 1], plain[0, 1, 1], atol=1e-3)
    ops = native.decode_ops()
    if ops is not None:  # the native kernel adds the same bias to the same keys
        fast = ops.decode_attention(
            qg, cache.att_k[0], cache.att_v[0], plan.key_mask, n, bias, ns, ns + r
        )
        torch.testing.assert_close(fast, got, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_steps_weigh_the_heads_up_alike_on_the_native_kernel_and_on_pytorch(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    """A session that recalls, with two heads weighed up, decodes the same logits with its
    attention on the native kernel (the bias in the kernel) as on PyTorch (a mask per head)."""
    if native.decode_ops() is None:
        pytest.skip(f"no native kernels here: {native.status()}")
    engine = tiny_engine
    if dtype == torch.bfloat16:
        engine = testing.tiny_engine(seed=0)
        engine.core.to(dtype=dtype)
    recall = dataclasses.replace(RECALL, read_bias=2.0, read_heads=((0, 3), (1, 0)))
    ids = _ids(5, 300)
    fast, slow = _session(engine, recall, ids), _session(engine, recall, ids)
    assert fast.cache.n_recalled > 0
    for tok in (7, 8, 9, 10):
        fast.append_tokens([tok])
        monkeypatch.setattr(cache_module, "_native_attention", lambda *_: None)
        slow.append_tokens([tok])
        monkeypatch.undo()
        assert fast.cache._step is None and fast.next_logits is not None
        assert slow.next_logits is not None
        tol = 1e-4 if dtype == torch.float32 else 0.1  # bf16 rounds the sums at every matmul
        torch.testing.assert_close(fast.next_logits, slow.next_logits, atol=tol, rtol=tol)


def test_the_question_chunk_weighs_up_the_chosen_head_only(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last chunk of new input reads the recalled span weighed up in query head 2 of layer
    0 (KV head 1, its first query head): that head's output moves, the others' stay bit for bit
    what they are without the bias."""
    recall = dataclasses.replace(RECALL, read_bias=3.0, read_heads=((0, 2),))
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    attend = StreamingCache._attend_chunk

    def both(
        self: StreamingCache,
        layer: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        plan: Any,
    ) -> torch.Tensor:
        if layer == 0 and plan.read_bias:
            saved = plan.read_bias, plan.dry, plan.observed
            plan.read_bias, plan.dry, plan.observed = 0.0, True, True  # stores and sees nothing
            plain = attend(self, layer, q, k, v, plan)
            plan.read_bias, plan.dry, plan.observed = saved
            out = attend(self, layer, q, k, v, plan)
            pairs.append((plain, out))
            return out
        return attend(self, layer, q, k, v, plan)

    monkeypatch.setattr(StreamingCache, "_attend_chunk", both)
    _session(tiny_engine, recall, _ids(5, 300))
    # the last chunk's probe and its forward; the text's earlier chunks read the span unweighed
    assert len(pairs) == 2
    for plain, out in pairs:  # [B, Hq, T, D]
        for head in (0, 1, 3):
            assert torch.equal(plain[:, head], out[:, head])
        assert not torch.allclose(plain[:, 2], out[:, 2], atol=1e-4)


def test_a_saved_session_restores_with_its_heads_and_reads_as_before(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    recall = dataclasses.replace(RECALL, read_bias=2.0, read_heads=((1, 2), (0, 1)))
    s = _session(tiny_engine, recall, _ids(6, 300))
    r = tiny_engine.restore_session(s.save(tmp_path / "w.session"))
    assert r.config.recall == recall  # the pairs come back as tuples, not the file's lists
    for tok in (7, 8, 9):
        s.append_tokens([tok])
        r.append_tokens([tok])
        assert torch.equal(s.next_logits, r.next_logits)  # type: ignore[arg-type]
