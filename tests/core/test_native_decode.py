"""agentcore's native decode-step operations (``agentcore/core/native/decode.cpp``): each one
against the PyTorch ops it replaces, their errors, and the model core's decode steps on them
against its PyTorch path (sinks, the ring wrapping, recall, Qwen-style biases)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from agentcore.core import llama, native
from agentcore.core.cache import StreamingConfig, decode_attention
from agentcore.core.llama import CoreModel
from agentcore.core.quant import Int8Weight
from agentcore.core.recall import EvictedStore, RecallConfig
from agentcore.core.rope import Rotary
from tests.core.test_native import kernel


@pytest.fixture(params=["avx2", "avx512"])
def ops(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The native module, its attention on each kernel (AVX2; AVX512F where the CPU has it);
    on a machine that should have the module, its absence is a failure."""
    kernel()  # skips where the module cannot run, fails where it should and does not
    module = native.decode_ops()
    wide = request.param == "avx512"
    if wide and not module.attention_avx512_supported():
        pytest.skip("this CPU has no AVX512F: decode steps run the AVX2 attention only")
    before = module.use_avx512_attention(wide)
    try:
        yield module
    finally:
        module.use_avx512_attention(before)


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Softmax attention in float64: ``q: [B,H,G,D]``, ``k, v: [B,H,n,D]``, mask ``[n]``."""
    scores = q.double() @ k.double().transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores + mask.double()
    return (torch.softmax(scores, dim=-1) @ v.double()).float()


@pytest.mark.parametrize("n", [1, 7, 18, 256, 257, 1000])
@pytest.mark.parametrize(
    "heads,groups,d", [(3, 3, 64), (2, 7, 64), (1, 2, 128), (2, 1, 24), (1, 17, 64)]
)
def test_attention_equals_softmax_attention(
    ops: Any, n: int, heads: int, groups: int, d: int
) -> None:
    gen = torch.Generator().manual_seed(n * 7 + d)
    q = torch.randn(2, heads, groups, d, generator=gen) * 2
    cache_k = torch.randn(2, heads, n + 5, d, generator=gen) * 2  # more slots than keys read
    cache_v = torch.randn(2, heads, n + 5, d, generator=gen)
    want = reference_attention(q, cache_k[:, :, :n], cache_v[:, :, :n], None)
    got = ops.decode_attention(q, cache_k, cache_v, None, n)
    assert got.shape == q.shape
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    # the model's entry point takes the same path and agrees with PyTorch's own
    torch.testing.assert_close(
        decode_attention(q, cache_k, cache_v, None, n), want, atol=2e-5, rtol=1e-4
    )


def test_attention_masks_keys_and_whole_ranges(ops: Any) -> None:
    gen = torch.Generator().manual_seed(1)
    n = 700  # three ranges of 256 keys: the first wholly masked, the last partly
    q = torch.randn(1, 3, 3, 64, generator=gen)
    k = torch.randn(1, 3, n, 64, generator=gen)
    v = torch.randn(1, 3, n, 64, generator=gen)
    mask = torch.zeros(1, n + 10)
    mask[:, 4:300] = float("-inf")
    mask[:, 650:] = float("-inf")
    mask[:, 600:650] = -3.0
    want = reference_attention(q, k, v, mask[0, :n])
    torch.testing.assert_close(ops.decode_attention(q, k, v, mask, n), want, atol=2e-5, rtol=1e-4)
    # scores far apart: the softmax's exps underflow to 0 without turning into NaN
    q_big = q * 300
    got = ops.decode_attention(q_big, k, v, mask, n)
    assert bool(torch.isfinite(got).all())
    torch.testing.assert_close(
        got, reference_attention(q_big, k, v, mask[0, :n]), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("gap", [1, 31, 32, 33, 300, 512])
def test_attention_skips_masked_runs_of_any_length(ops: Any, gap: int) -> None:
    """A recall session's frame: sinks, then ``gap`` masked slots (recall not filled), then the
    window, a short masked run inside it; runs of at least 32 keys end a span of work. Masked
    keys and values hold NaN: none is read, whatever the span boundaries."""
    gen = torch.Generator().manual_seed(gap)
    sinks, window = 64, 9 + gap % 300
    n = sinks + gap + window
    q = torch.randn(1, 3, 3, 64, generator=gen)
    k = torch.randn(1, 3, n, 64, generator=gen)
    v = torch.randn(1, 3, n, 64, generator=gen)
    mask = torch.zeros(1, n)
    mask[:, sinks : sinks + gap] = float("-inf")
    mask[:, sinks + gap + 2 : sinks + gap + 5] = float("-inf")
    masked = mask[0] == float("-inf")
    want = reference_attention(q, k, v, mask[0])
    k[:, :, masked], v[:, :, masked] = float("nan"), float("nan")
    torch.testing.assert_close(ops.decode_attention(q, k, v, mask, n), want, atol=2e-5, rtol=1e-4)
    table = torch.tensor([[0, n - 1, n]])
    kk, vv = k[None].clone(), v[None].clone()  # [layers=1, 1, H, n, D]
    new_k, new_v = kk[0, :, :, n - 1 :].clone(), vv[0, :, :, n - 1 :].clone()
    rows = ops.decode_attend_rows(
        q.reshape(1, 9, 1, 64), new_k, new_k, new_v, [torch.zeros(1, 1, 3, 1, 64)], [kk], [vv],
        [mask], table, 0,
    )  # fmt: skip
    torch.testing.assert_close(rows.reshape(1, 3, 3, 64), want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("live,gap", [(20, 40), (200, 33), (300, 64), (3, 500)])
def test_attention_over_many_runs_of_keys(ops: Any, live: int, gap: int) -> None:
    """Runs of ``live`` keys between masked runs of ``gap``: tasks join several runs (up to
    four, 256 keys in all) and cut runs longer than that; every key still counts once."""
    gen = torch.Generator().manual_seed(live * 7 + gap)
    n = 1500
    q = torch.randn(2, 2, 4, 64, generator=gen)
    k = torch.randn(2, 2, n, 64, generator=gen)
    v = torch.randn(2, 2, n, 64, generator=gen)
    mask = torch.full((1, n), float("-inf"))
    for start in range(5, n, live + gap):
        mask[:, start : start + live] = torch.randn(min(live, n - start), generator=gen)
    want = reference_attention(q, k, v, mask[0])
    masked = mask[0] == float("-inf")
    k[:, :, masked], v[:, :, masked] = float("nan"), float("nan")
    torch.testing.assert_close(ops.decode_attention(q, k, v, mask, n), want, atol=2e-5, rtol=1e-4)


def test_attention_rejects_what_it_cannot_read(ops: Any) -> None:
    q, k = torch.randn(1, 2, 3, 64), torch.randn(1, 2, 10, 64)
    with pytest.raises(RuntimeError, match="12 keys asked of 10"):
        ops.decode_attention(q, k, k, None, 12)
    with pytest.raises(RuntimeError, match="mask has 5 values for 10 keys"):
        ops.decode_attention(q, k, k, torch.zeros(1, 5), 10)
    with pytest.raises(RuntimeError, match="head size 12 is not a multiple of 8"):
        ops.decode_attention(
            torch.randn(1, 2, 3, 12), torch.randn(1, 2, 10, 12), torch.randn(1, 2, 10, 12), None, 10
        )
    with pytest.raises(RuntimeError, match="q must be a contiguous float32 or bf16 CPU tensor"):
        ops.decode_attention(q.double(), k, k, None, 10)
    with pytest.raises(RuntimeError, match="does not match k"):
        ops.decode_attention(torch.randn(1, 3, 3, 64), k, k, None, 10)
    with pytest.raises(RuntimeError, match=r"head_bias must hold one value per query head \(2 KV"):
        ops.decode_attention(q, k, k, None, 10, torch.ones(2, 2), 0, 4)
    with pytest.raises(RuntimeError, match=r"head_bias's keys 4..11 are not within the 10 keys"):
        ops.decode_attention(q, k, k, None, 10, torch.ones(2, 3), 4, 11)


def test_rows_store_each_key_and_attend_over_their_own_caches(ops: Any) -> None:
    """``decode_attend_rows``: three sessions' caches of different sizes, each row's new key
    and value stored in its own slots, each row's attention over its own first keys (one
    masked, one past a range of 256) equal to attention over that cache alone."""
    gen = torch.Generator().manual_seed(5)
    layers, hkv, g, d = 3, 2, 3, 32
    sizes, n_keys, slots = [40, 300, 600], [12, 300, 520], [7, 299, 400]
    raws = [torch.zeros(layers, 1, hkv, s, d) for s in sizes]
    att_ks = [torch.randn(layers, 1, hkv, s, d, generator=gen) for s in sizes]
    att_vs = [torch.randn(layers, 1, hkv, s, d, generator=gen) for s in sizes]
    masks = [torch.empty(0), torch.empty(0), torch.zeros(1, 600)]
    masks[2][:, 20:90] = float("-inf")
    q = torch.randn(3, hkv * g, 1, d, generator=gen)
    k, k_rot, v = (torch.randn(3, hkv, 1, d, generator=gen) for _ in range(3))
    table = torch.tensor([[s - 2, s, n] for s, n in zip(slots, n_keys, strict=True)])
    before = [(ak.clone(), av.clone()) for ak, av in zip(att_ks, att_vs, strict=True)]
    out = ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, masks, table, 1)
    assert out.shape == q.shape
    for j in range(3):
        s, n = slots[j], n_keys[j]
        assert torch.equal(raws[j][1, 0, :, s - 2], k[j, :, 0])
        assert torch.equal(att_ks[j][1, 0, :, s], k_rot[j, :, 0])
        assert torch.equal(att_vs[j][1, 0, :, s], v[j, :, 0])
        want_k, want_v = before[j][0].clone(), before[j][1].clone()
        want_k[1, 0, :, s], want_v[1, 0, :, s] = k_rot[j, :, 0], v[j, :, 0]
        assert torch.equal(att_ks[j], want_k) and torch.equal(att_vs[j], want_v)  # nothing else
        assert int((raws[j] != 0).sum()) == hkv * d
        mask = masks[j][0, :n] if masks[j].numel() else None
        want = reference_attention(
            q[j].view(1, hkv, g, d), att_ks[j][1, :, :, :n], att_vs[j][1, :, :, :n], mask
        )
        torch.testing.assert_close(out[j].view(1, hkv, g, d), want, atol=2e-5, rtol=1e-4)
        # the same as the one-session kernel, bit for bit
        alone = ops.decode_attention(
            q[j : j + 1].view(1, hkv, g, d),
            att_ks[j][1],
            att_vs[j][1],
            masks[j] if mask is not None else None,
            n,
        )
        assert torch.equal(out[j : j + 1].view(1, hkv, g, d), alone)
    bad = table.clone()
    bad[1, 2] = 301
    with pytest.raises(RuntimeError, match="row 1: slots 297, 299 and 301 keys do not fit"):
        ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, masks, bad, 1)
    with pytest.raises(RuntimeError, match="3 rows need as many caches and masks, got 2"):
        ops.decode_attend_rows(q, k, k_rot, v, raws[:2], att_ks, att_vs, masks, table, 1)
    with pytest.raises(RuntimeError, match=r"row 0's cache .* cannot take layer 3"):
        ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, masks, table, 3)
    short = [masks[0], masks[1], torch.zeros(1, 100)]
    with pytest.raises(RuntimeError, match="row 2's mask has 100 values for 520 keys"):
        ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, short, table, 1)
    with pytest.raises(RuntimeError, match="slots must be a contiguous int64"):
        ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, masks, table.int(), 1)


def test_bf16_attention_reads_bf16_keys_and_rounds_once(ops: Any) -> None:
    """bf16 query, keys, values and mask (a bf16 model's cache): the kernel widens them and
    computes in float32, so its result is the float32 attention over the same bf16 values,
    rounded to bf16 once (what PyTorch's bf16 matmuls round at every step)."""
    gen = torch.Generator().manual_seed(8)
    n = 700  # three ranges of 256 keys
    q = torch.randn(2, 3, 3, 64, generator=gen).bfloat16()
    k = torch.randn(2, 3, 768, 64, generator=gen).bfloat16()
    v = torch.randn(2, 3, 768, 64, generator=gen).bfloat16()
    mask = torch.zeros(1, 768, dtype=torch.bfloat16)
    mask[:, 10:300] = float("-inf")
    got = ops.decode_attention(q, k, v, mask, n)
    assert got.dtype == torch.bfloat16 and got.shape == q.shape
    want = reference_attention(
        q.float(), k[:, :, :n].float(), v[:, :, :n].float(), mask[0, :n].float()
    )
    # within one bf16 rounding of the float32 result (2^-8 relative), and no further
    torch.testing.assert_close(got.float(), want, atol=1e-6, rtol=2**-8)
    assert (
        float((got.float() - want).abs().max())
        <= float((want.bfloat16().float() - want).abs().max()) * 1.01
    )
    with pytest.raises(
        RuntimeError, match=r"k and v must be CPU tensors of q's dtype \(BFloat16\)"
    ):
        ops.decode_attention(q, k.float(), v.float(), None, n)


def test_bf16_rows_store_each_key_and_attend_as_alone(ops: Any) -> None:
    """``decode_attend_rows`` on bf16 caches: each row's key and value stored exactly, each
    row's attention what the one-session kernel gives, bit for bit; a float32 cache among bf16
    rows is refused by name."""
    gen = torch.Generator().manual_seed(9)
    layers, hkv, g, d = 2, 2, 3, 64
    sizes, n_keys, slots = [50, 600], [20, 520], [9, 400]
    bf = torch.bfloat16
    raws = [torch.zeros(layers, 1, hkv, s, d, dtype=bf) for s in sizes]
    att_ks = [torch.randn(layers, 1, hkv, s, d, generator=gen).to(bf) for s in sizes]
    att_vs = [torch.randn(layers, 1, hkv, s, d, generator=gen).to(bf) for s in sizes]
    masks = [torch.empty(0), torch.zeros(1, 600, dtype=bf)]
    masks[1][:, 30:90] = float("-inf")
    q = torch.randn(2, hkv * g, 1, d, generator=gen).to(bf)
    k, k_rot, v = (torch.randn(2, hkv, 1, d, generator=gen).to(bf) for _ in range(3))
    table = torch.tensor([[s - 2, s, n] for s, n in zip(slots, n_keys, strict=True)])
    out = ops.decode_attend_rows(q, k, k_rot, v, raws, att_ks, att_vs, masks, table, 1)
    assert out.dtype == bf and out.shape == q.shape
    for j in range(2):
        s, n = slots[j], n_keys[j]
        assert torch.equal(raws[j][1, 0, :, s - 2], k[j, :, 0])
        assert torch.equal(att_ks[j][1, 0, :, s], k_rot[j, :, 0])
        assert torch.equal(att_vs[j][1, 0, :, s], v[j, :, 0])
        mask = masks[j] if masks[j].numel() else None
        alone = ops.decode_attention(
            q[j : j + 1].view(1, hkv, g, d), att_ks[j][1], att_vs[j][1], mask, n
        )
        assert torch.equal(out[j : j + 1].view(1, hkv, g, d), alone)
    mixed = [att_ks[0], att_ks[1].float()]
    with pytest.raises(RuntimeError, match=r"row 1's cache Float .* in BFloat16"):
        ops.decode_attend_rows(q, k, k_rot, v, raws, mixed, att_vs, masks, table, 1)


def int8_weight(n_out: int, n_in: int, seed: int) -> Int8Weight:
    gen = torch.Generator().manual_seed(seed)
    return Int8Weight(torch.randn(n_out, n_in, generator=gen) * 0.1, group_size=32)


@pytest.mark.parametrize("rows,bias", [(1, False), (1, True), (3, True)])
def test_qkv_equals_norm_projection_and_rotation(ops: Any, rows: int, bias: bool) -> None:
    hq, hkv, d, hidden = 6, 2, 32, 96
    gen = torch.Generator().manual_seed(rows)
    w = int8_weight((hq + 2 * hkv) * d, hidden, 3)
    b = torch.randn((hq + 2 * hkv) * d, generator=gen) if bias else None
    norm = torch.rand(hidden, generator=gen) + 0.5
    x = torch.randn(rows, hidden, generator=gen) * 3
    rotary = Rotary(1.0 / (10000 ** (torch.arange(0, d, 2).float() / d)), 1.0)
    freqs = rotary.freqs(torch.tensor([1234]), torch.device("cpu"))  # complex [1, D/2]
    q, k, v, q_rot, k_rot = ops.decode_qkv(
        x, norm, 1e-5, w.q, w.scale, b, torch.view_as_real(freqs), hq, hkv
    )
    qkv = F.linear(F.rms_norm(x, (hidden,), norm, 1e-5), w.dequantize(torch.float32), b)
    wq, wk, wv = qkv.split((hq * d, hkv * d, hkv * d), dim=-1)
    want_q = wq.view(rows, hq, 1, d)
    want_k = wk.view(rows, hkv, 1, d)
    for got, want in ((q, want_q), (k, want_k), (v, wv.view(rows, hkv, 1, d))):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(q_rot, Rotary.rotate(want_q, freqs), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(k_rot, Rotary.rotate(want_k, freqs), atol=1e-4, rtol=1e-4)
    with pytest.raises(RuntimeError, match="freqs must hold 16 \\(cos, sin\\) pairs"):
        ops.decode_qkv(x, norm, 1e-5, w.q, w.scale, b, torch.zeros(1, 8, 2), hq, hkv)
    with pytest.raises(RuntimeError, match="projection rows do not split into 5 \\+ 2 x 2 heads"):
        ops.decode_qkv(x, norm, 1e-5, w.q, w.scale, b, torch.view_as_real(freqs), 5, hkv)
    if rows > 1:  # one rotation per row: each row's stream position
        per_row = rotary.freqs(torch.arange(rows) * 77 + 5, torch.device("cpu"))  # [rows, D/2]
        _, _, _, q_rot, k_rot = ops.decode_qkv(
            x, norm, 1e-5, w.q, w.scale, b, torch.view_as_real(per_row), hq, hkv
        )
        f = per_row[:, None, None]  # [rows,1,1,D/2]
        torch.testing.assert_close(q_rot, Rotary.rotate(want_q, f), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(k_rot, Rotary.rotate(want_k, f), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rows,bias", [(1, False), (2, True)])
def test_mlp_equals_projection_residuals_and_swiglu(ops: Any, rows: int, bias: bool) -> None:
    hidden, inter, attn = 64, 160, 96
    gen = torch.Generator().manual_seed(10 + rows)
    wo, wgu, wd = (
        int8_weight(hidden, attn, 1),
        int8_weight(2 * inter, hidden, 2),
        int8_weight(hidden, inter, 4),
    )
    b_o = torch.randn(hidden, generator=gen) if bias else None
    norm = torch.rand(hidden, generator=gen) + 0.5
    x = torch.randn(rows, hidden, generator=gen)
    a = torch.randn(rows, attn, generator=gen) * 20  # gates from about -100 to 100: silu's tails
    got = ops.decode_mlp(x, a, wo.q, wo.scale, b_o, norm, 1e-6, wgu.q, wgu.scale, wd.q, wd.scale)
    h = x + F.linear(a, wo.dequantize(torch.float32), b_o)
    gate, up = F.linear(F.rms_norm(h, (hidden,), norm, 1e-6), wgu.dequantize(torch.float32)).chunk(
        2, -1
    )
    want = h + F.linear(F.silu(gate) * up, wd.dequantize(torch.float32))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    with pytest.raises(
        RuntimeError, match="gate/up has 320 rows for a down projection of 96 inputs"
    ):
        ops.decode_mlp(x, a, wo.q, wo.scale, b_o, norm, 1e-6, wgu.q, wgu.scale, wo.q, wo.scale)


def test_store_writes_one_slot_of_each_cache(ops: Any) -> None:
    gen = torch.Generator().manual_seed(4)
    raw, att_k, att_v = (torch.zeros(3, 2, 2, 10, 16) for _ in range(3))
    k, k_rot, v = (torch.randn(2, 2, 1, 16, generator=gen) for _ in range(3))
    ops.decode_store(k, k_rot, v, raw, att_k, att_v, 1, 4, 7)
    assert torch.equal(raw[1, :, :, 4], k[:, :, 0]) and torch.equal(
        att_k[1, :, :, 7], k_rot[:, :, 0]
    )
    assert torch.equal(att_v[1, :, :, 7], v[:, :, 0])
    assert int((raw != 0).sum() + (att_k != 0).sum() + (att_v != 0).sum()) == 3 * 2 * 2 * 16
    with pytest.raises(RuntimeError, match="layer 3 slot 4 outside"):
        ops.decode_store(k, k_rot, v, raw, att_k, att_v, 3, 4, 7)


def decode_both_ways(
    core: CoreModel, ids: torch.Tensor, cfg: StreamingConfig, recall: RecallConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Prefill a prompt, then decode ``ids`` one token at a time twice: on the native decode
    ops and on the PyTorch path. Returns both logits ``[steps, V]`` and the native layers."""
    outs = []
    native_layers = 0
    for use_native in (True, False):
        dims = core.dims
        store = (
            EvictedStore(
                recall, n_layers=dims.n_layers, n_kv_heads=dims.n_kv_heads, head_dim=dims.head_dim
            )
            if recall
            else None
        )
        cache = core.new_cache(cfg, recall=store)
        core.prefill(ids[:, :6], cache)
        steps = []
        original = native.decode_ops
        if not use_native:  # every decode op off: the model's layers and the cache's attention
            native.decode_ops = lambda: None  # type: ignore[assignment]
        try:
            for i in range(6, ids.shape[1]):
                steps.append(core.forward(ids[:, i : i + 1], cache)[0, -1])
        finally:
            native.decode_ops = original  # type: ignore[assignment]
        outs.append(torch.stack(steps))
        if use_native:
            native_layers = sum(layer.native_decode() for layer in core.layers)
    return outs[0], outs[1], native_layers


@pytest.mark.parametrize("model", ["llama", "qwen2"])
def test_core_decodes_on_native_ops_as_on_pytorchs_path(
    ops: Any, model: str, make_llama: Any, make_qwen2: Any
) -> None:
    hf = (
        make_llama(seed=5, hidden_size=128, num_attention_heads=4, head_dim=32)
        if model == "llama"
        else make_qwen2(seed=5)
    )
    core = CoreModel(hf)
    core.quantize_int8(group_size=32)
    ids = torch.randint(0, 258, (1, 70), generator=torch.Generator().manual_seed(2))
    cfg = StreamingConfig(n_sink=4, window=24, chunk_size=16)  # the ring wraps twice
    fast, slow, native_layers = decode_both_ways(core, ids, cfg)
    assert native_layers == core.dims.n_layers
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    assert torch.equal(fast.argmax(-1), slow.argmax(-1))


def test_core_decodes_with_recall_on_native_ops(ops: Any, make_llama: Any) -> None:
    core = CoreModel(make_llama(seed=6, hidden_size=128, num_attention_heads=4, head_dim=32))
    core.quantize_int8(group_size=32)
    ids = torch.randint(0, 258, (1, 120), generator=torch.Generator().manual_seed(3))
    recall = RecallConfig(block_size=4, top_k=2, candidates=4, refresh=4, host_blocks=64)
    fast, slow, _ = decode_both_ways(
        core, ids, StreamingConfig(n_sink=4, window=24, chunk_size=16), recall
    )
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    assert torch.equal(fast.argmax(-1), slow.argmax(-1))


def test_layers_off_the_native_path_keep_pytorchs(ops: Any, make_llama: Any) -> None:
    core = CoreModel(make_llama(seed=7, hidden_size=128, num_attention_heads=4, head_dim=32))
    assert not any(layer.native_decode() for layer in core.layers)  # float weights
    core.quantize_int8(group_size=32)
    assert all(layer.native_decode() for layer in core.layers)
    ids = torch.randint(0, 258, (2, 8), generator=torch.Generator().manual_seed(4))
    cache = core.new_cache(StreamingConfig(n_sink=4, window=24, chunk_size=16), batch=2)
    core.prefill(ids[:, :6], cache)
    x = torch.zeros(1, 1, 128)
    assert llama._decode_ops(x, [cache], None) is None  # gradients on: training
    with torch.inference_mode():
        assert llama._decode_ops(torch.zeros(1, 2, 128), [cache], None) is None  # two tokens
        assert llama._decode_ops(x.bfloat16(), [cache], None) is None
        assert llama._decode_ops(x, [cache], 0) is None  # a probe
        assert llama._decode_ops(x, [cache, cache], None) is ops  # one session per row
        assert llama._decode_ops(x, [cache], None) is ops
    # a batch of two rows in one cache decodes on the native ops as on PyTorch's
    step = core.forward(ids[:, 6:7], cache)
    assert step.shape == (2, 1, 258) and bool(torch.isfinite(step).all())


@pytest.mark.parametrize("op", ["int8_linear", "decode_attention"])
def test_the_ops_let_other_threads_run_meanwhile(ops: Any, op: str) -> None:
    """The native ops release the GIL, as PyTorch's do: a Python thread keeps stepping while
    one runs. Held, the thread would stand still for the whole op (its longest pause between
    two steps at least the op's time)."""
    gen = torch.Generator().manual_seed(8)
    if op == "int8_linear":
        w = Int8Weight(torch.randn(4096, 4096, generator=gen), group_size=32)
        x = torch.randn(512, 4096, generator=gen)  # ~9 G multiply-adds: >= ~50 ms anywhere
        run = lambda: ops.int8_linear(x, w.q, w.scale)  # noqa: E731
    else:
        q = torch.randn(16, 4, 128, 64, generator=gen)  # 128 query heads a KV head: ~4 G
        k = torch.randn(16, 4, 4096, 64, generator=gen)
        run = lambda: ops.decode_attention(q, k, k, None, 4096)  # noqa: E731
    run()
    stop, steps = threading.Event(), [time.perf_counter()]

    def spin() -> None:
        while not stop.is_set():
            steps.append(time.perf_counter())

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.02)
        t0 = time.perf_counter()
        run()
        took = time.perf_counter() - t0
        time.sleep(0.02)
    finally:
        stop.set()
        spinner.join()
    pause = max(b - a for a, b in itertools.pairwise(steps))
    assert took > 0.03  # long enough to tell the two apart
    assert pause < took / 2, (pause, took)
