"""Int8 weights and packed float32 weights: their forms, the model core on them, and the
loader's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from agentcore.core import cache as cache_module
from agentcore.core.cache import StreamingConfig
from agentcore.core.llama import CoreModel
from agentcore.core.loader import choose_weights
from agentcore.core.quant import (
    Int8Weight,
    PackedWeight,
    int8_float32_available,
    linear,
    packed_float_available,
)

CPU = torch.device("cpu")
needs_packed = pytest.mark.skipif(
    not packed_float_available(), reason="this PyTorch build has no oneDNN packed linear"
)


def test_int8_weight_rounds_each_row_to_its_own_scale() -> None:
    w = torch.randn(48, 32, generator=torch.Generator().manual_seed(0))
    w[3] *= 100  # one row far larger than the others keeps its own scale
    packed = Int8Weight(w)
    err = (packed.dequantize(torch.float32) - w).abs()
    assert bool((err <= packed.scale[:, None] / 2 + 1e-6).all())
    assert packed.nbytes() == 48 * 32 + 48 * 4


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_int8_matmul_equals_dense_on_the_dequantized_weight(rows: int) -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(64, 32, generator=gen).bfloat16()
    x = torch.randn(1, rows, 32, generator=gen).bfloat16()
    bias = torch.randn(64, generator=gen).bfloat16()
    packed = Int8Weight(w)
    ref = F.linear(x.float(), packed.dequantize(torch.float32), bias.float())
    out = linear(x, packed, bias)
    assert out.shape == (1, rows, 64) and out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, atol=0.05, rtol=0.02)


def test_float_weights_pass_through_unchanged() -> None:
    x, w = torch.randn(2, 5, 8), torch.randn(4, 8)
    assert torch.equal(linear(x, w), F.linear(x, w))


@pytest.fixture
def bf16_core(make_llama: Any) -> CoreModel:
    return CoreModel(make_llama(seed=3)).to(dtype=torch.bfloat16)


def test_quantized_core_stays_close_to_bf16(bf16_core: CoreModel, make_llama: Any) -> None:
    ref_core = CoreModel(make_llama(seed=3)).to(dtype=torch.bfloat16)
    bf16_core.quantize_int8()
    assert bf16_core.quantized and not ref_core.quantized
    assert bf16_core.weight_bytes() < 0.75 * ref_core.weight_bytes()
    ids = torch.randint(0, 258, (1, 120), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=60, chunk_size=30)
    ours = bf16_core.prefill(ids, bf16_core.new_cache(cfg), "all")
    ref = ref_core.prefill(ids, ref_core.new_cache(cfg), "all")
    # same prediction almost everywhere, probabilities close
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean()
    assert agree > 0.9, agree
    kl = F.kl_div(ours.log_softmax(-1), ref.log_softmax(-1), log_target=True, reduction="batchmean")
    assert float(kl) < 0.05


def test_quantized_decode_equals_chunked(
    bf16_core: CoreModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The int8 kernel (few rows) and the dequantized matmul (many rows) agree to bf16 precision.

    The decode steps attend on PyTorch's bf16 matmuls, as the chunks do: the native kernel's
    float32 softmax rounds differently (on this model nearer a float32 run's logits: KL 5.56e-5
    against 5.69e-5), which would flip near ties here that are not the int8 kernel's."""
    monkeypatch.setattr(cache_module, "_native_attention", lambda *_: None)
    bf16_core.quantize_int8()
    ids = torch.randint(0, 258, (1, 40), generator=torch.Generator().manual_seed(2))
    cfg = StreamingConfig(n_sink=4, window=30, chunk_size=20)
    chunked = bf16_core.prefill(ids, bf16_core.new_cache(cfg), "all")
    cache = bf16_core.new_cache(cfg)
    steps = torch.cat([bf16_core.forward(ids[:, i : i + 1], cache) for i in range(40)], dim=1)
    assert torch.allclose(chunked, steps, atol=0.1)
    assert bool((chunked.argmax(-1) == steps.argmax(-1)).float().mean() > 0.95)


def test_quantized_core_refuses_to_be_saved(bf16_core: CoreModel, tmp_path: Path) -> None:
    bf16_core.quantize_int8()
    with pytest.raises(ValueError, match="int8 core cannot be saved"):
        bf16_core.save(tmp_path / "core.safetensors")


def test_adapter_merge_into_int8_qkv(bf16_core: CoreModel) -> None:
    bf16_core.quantize_int8()
    layer = bf16_core.layers[0]
    before = layer.w_qkv.dequantize(torch.float32)
    delta = torch.full_like(before, 0.01)
    bf16_core.add_to_qkv(0, delta)
    after = layer.w_qkv.dequantize(torch.float32)
    assert torch.allclose(after - before, delta, atol=float(layer.w_qkv.scale.max()))


@needs_packed
@pytest.mark.parametrize("shape", [(1,), (3,), (16,), (40,), (2, 7)])
def test_packed_matmul_equals_f_linear(shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(96, 64, generator=gen)
    x = torch.randn(*shape, 64, generator=gen)
    bias = torch.randn(96, generator=gen)
    out = linear(x, PackedWeight(w), bias)
    assert out.shape == (*shape, 96) and out.dtype == torch.float32
    assert torch.allclose(out, F.linear(x, w, bias), atol=1e-5, rtol=1e-5)


@needs_packed
def test_packed_weight_gives_the_plain_weight_back_exactly() -> None:
    w = torch.randn(48, 80, generator=torch.Generator().manual_seed(5))
    packed = PackedWeight(w)
    assert torch.equal(packed.dequantize(), w)
    assert packed.dequantize(torch.bfloat16).dtype == torch.bfloat16
    assert packed.nbytes() == 48 * 80 * 4
    with pytest.raises(
        ValueError, match=r"packed weights are float32 on the CPU, got torch\.bfloat16"
    ):
        PackedWeight(w.bfloat16())


@needs_packed
def test_packed_core_equals_the_float_core(make_llama: Any, tmp_path: Path) -> None:
    ref = CoreModel(make_llama(seed=3))
    core = CoreModel(make_llama(seed=3))
    core.pack_float()
    core.pack_float()  # again: nothing to do
    assert core.weights == "packed" and core.quantized and ref.weights == "float"
    ids = torch.randint(0, 258, (1, 90), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=40, chunk_size=20)
    ours = core.prefill(ids, core.new_cache(cfg), "all")
    expected = ref.prefill(ids, ref.new_cache(cfg), "all")
    assert torch.allclose(ours, expected, atol=1e-4)
    assert torch.equal(ours.argmax(-1), expected.argmax(-1))
    cache, ref_cache = core.new_cache(cfg), ref.new_cache(cfg)
    for i in range(30):  # decode steps (one row) as well as chunks
        step = core.forward(ids[:, i : i + 1], cache)
        assert torch.allclose(step, ref.forward(ids[:, i : i + 1], ref_cache), atol=1e-4)
    with pytest.raises(ValueError, match="packed core cannot be saved"):
        core.save(tmp_path / "core.safetensors")
    with pytest.raises(ValueError, match="already holds packed weights"):
        core.quantize_int4()
    bf16 = CoreModel(make_llama(seed=3)).to(dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="packed weights are float32 on the CPU; this model is"):
        bf16.pack_float()


@needs_packed
def test_adapter_updates_on_packed_qkv_equal_the_float_ones(make_llama: Any) -> None:
    ref = CoreModel(make_llama(seed=3))
    core = CoreModel(make_llama(seed=3))
    core.pack_float()
    plain = ref.layers[0].w_qkv.detach().clone()
    delta = torch.randn(plain.shape, generator=torch.Generator().manual_seed(6)) * 0.01
    core.set_qkv_update(0, delta)
    ref.set_qkv_update(0, delta)
    assert torch.equal(core.layers[0].w_qkv.dequantize(), ref.layers[0].w_qkv)
    core.set_qkv_update(0, None)  # its own weight again, exactly
    assert torch.equal(core.layers[0].w_qkv.dequantize(), plain)
    core.add_to_qkv(1, delta)
    ref.add_to_qkv(1, delta)
    assert torch.equal(core.layers[1].w_qkv.dequantize(), ref.layers[1].w_qkv)


def test_choose_weights() -> None:
    assert choose_weights(CPU, torch.bfloat16, "auto") == "int8"
    fp32 = "packed" if packed_float_available() else "float"
    # float32 gets int8 where agentcore's native kernel runs (tests/core/test_native.py)
    assert choose_weights(CPU, torch.float32, None) == (
        "int8" if int8_float32_available() else fp32
    )
    assert choose_weights(torch.device("cuda"), torch.bfloat16, "auto") == "float"
    assert choose_weights(CPU, torch.bfloat16, "float") == "float"
    assert choose_weights(CPU, torch.float32, "float") == "float"
    with pytest.raises(ValueError, match="weights 'packed' need the CPU, dtype float32"):
        choose_weights(CPU, torch.bfloat16, "packed")
    with pytest.raises(
        ValueError, match="weights 'int3' is not one of auto, float, packed, int8, int4"
    ):
        choose_weights(CPU, torch.bfloat16, "int3")
    with pytest.raises(ValueError, match="need the CPU and dtype bfloat16, or float32 with"):
        choose_weights(torch.device("cuda"), torch.float32, "int8")
    with pytest.raises(ValueError, match="need the CPU and dtype bfloat16, or float32 with"):
        choose_weights(CPU, torch.float16, "int8")
