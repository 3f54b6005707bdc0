"""Int4 weights: the packed form against its dequantized reference, the model core on it,
adapter merges, and the loader's choice."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from agentcore.core.cache import StreamingConfig
from agentcore.core.llama import CoreModel
from agentcore.core.loader import choose_weights
from agentcore.core.quant import (
    Int4Weight,
    Int8Weight,
    _int4_layout,
    _unpack_int4,
    int4_available,
    int4_exact,
    int8_float32_available,
    linear,
    packed_float_available,
)

pytestmark = pytest.mark.skipif(not int4_available(), reason="no CPU int4 matmul in this torch")

CPU = torch.device("cpu")


def _steps(w: Int4Weight) -> torch.Tensor:
    """``[n_out, n_in]``: each weight's quantization step (its group's scale)."""
    return w.scales_zeros[..., 0].float().t().repeat_interleave(w.group_size, dim=1)


def test_int4_rounds_each_group_to_its_own_range() -> None:
    w = torch.randn(48, 96, generator=torch.Generator().manual_seed(0))
    w[3, :32] *= 100  # one group far larger than the others keeps its own scale
    packed = Int4Weight(w)
    err = (packed.dequantize() - w).abs()
    # half a step of rounding, plus the bf16 rounding of the scale and zero
    assert bool((err <= 0.55 * _steps(packed)).all())
    assert float(err[3, 32:].max()) < 0.3  # its neighbours keep their step (~0.3, not ~30)
    assert packed.nbytes() == 48 * 96 // 2 + 3 * 48 * 2 * 2


def test_q4_1_blocks_come_back_exactly() -> None:
    """A GGUF Q4_1 tensor (w = d * q + m per block of 32, q in 0..15 using 0 and 15) dequantized
    to float requantizes to the same q: only d and m round to bf16 (a few % of a step)."""
    gen = torch.Generator().manual_seed(1)
    n, k = 32, 128
    q = torch.randint(0, 16, (n, k // 32, 32), generator=gen)
    q[..., 0], q[..., 1] = 0, 15  # llama.cpp's Q4_1 maps each block's min to 0, its max to 15
    d = (torch.rand(n, k // 32, 1, generator=gen) * 0.02 + 0.001).half().float()
    # a block's minimum m is about -7.5 steps for weights around zero; some sit off centre
    m = (-(7.5 + 4 * torch.randn(n, k // 32, 1, generator=gen)) * d).half().float()
    w = (d * q + m).reshape(n, k)
    packed = Int4Weight(w)
    assert torch.equal(_unpack_int4(packed.packed, n, k, _int4_layout()), q.reshape(n, k).byte())
    err = (packed.dequantize() - w).abs() / _steps(packed)
    assert float(err.max()) < 0.1, float(err.max())
    assert int4_exact(w)
    assert not int4_exact(w + 0.3 * d.repeat_interleave(32, 1).reshape(n, k) * torch.rand(n, k))
    assert not int4_exact(torch.randn(n, k))


def test_bf16_dequantization_stays_within_a_tenth_of_a_step() -> None:
    """Prefill of a bf16 model dequantizes in bf16: each term rounds, the result stays close."""
    w = torch.randn(96, 256, generator=torch.Generator().manual_seed(3)) * 0.05 + 0.01
    packed = Int4Weight(w)
    err = (packed.dequantize(torch.bfloat16).float() - packed.dequantize()).abs()
    assert float((err / _steps(packed)).max()) < 0.1


@pytest.mark.parametrize("rows", [1, 3, 8, 33, 100])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_int4_matmul_equals_dense_on_the_dequantized_weight(rows: int, dtype: torch.dtype) -> None:
    """Decode-sized batches use the kernel (bf16 inside), larger ones dequantize: both equal
    ``x @ W_deq.T + b`` to bf16 precision (float32 activations round to bf16 for the kernel)."""
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(64, 96, generator=gen).to(dtype)
    x = torch.randn(1, rows, 96, generator=gen).to(dtype)
    bias = torch.randn(64, generator=gen).to(dtype)
    packed = Int4Weight(w)
    ref = F.linear(x.float(), packed.dequantize(), bias.float())
    out = linear(x, packed, bias)
    assert out.shape == (1, rows, 64) and out.dtype == dtype
    tol = 0.02 * float(ref.abs().max())  # bf16 keeps 8 bits: 2^-8 relative per element
    assert float((out.float() - ref).abs().max()) < tol


def test_int4_refuses_shapes_the_kernel_cannot_take() -> None:
    with pytest.raises(ValueError, match="n_out a multiple of 16"):
        Int4Weight(torch.randn(24, 64))
    with pytest.raises(ValueError, match=r"n_in of the group size 32.*\[32, 48\]"):
        Int4Weight(torch.randn(32, 48))


_OTHER_ISA = """
import torch
from agentcore.core.quant import Int4Weight, _int4_layout
w = torch.randn(80, 64)  # one full 64-row block and a partial one; two 32-row blocks and one
packed = Int4Weight(w)
x = torch.randn(2, 64)
err = (packed(x).float() - x.bfloat16().float() @ packed.dequantize().t()).abs().max()
print(torch.backends.cpu.get_cpu_capability(), _int4_layout(), float(err))
assert float(err) < 0.1
"""


@pytest.mark.parametrize("isa", ["avx2", "default"])
def test_int4_kernel_and_unpacking_on_other_cpu_kernels(isa: str) -> None:
    """The kernel packs rows differently per CPU kernel (AVX512, AVX2, plain): dequantization
    reads each layout back (an AVX2-only CPU is the machine int4 is for)."""
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT" and isa == "avx2":
        pytest.skip("this CPU has no AVX2")
    env = {"ATEN_CPU_CAPABILITY": isa, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_ISA], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == isa.upper()


# ------------------------------------------------------------------ the model core


def _reference(core: CoreModel) -> CoreModel:
    """A float copy of ``core`` whose weights are what :meth:`CoreModel.quantize_int4` computes
    with: each projection int4-dequantized, the LM head int8-dequantized."""
    ref = copy.deepcopy(core)
    with torch.no_grad():
        for layer in ref.layers:
            for name in CoreModel._PROJECTIONS:
                w = getattr(layer, name)
                w.copy_(Int4Weight(w).dequantize(w.dtype))
        head = Int8Weight(ref.lm_head, kernel_dtype=torch.bfloat16)
        ref.lm_head = torch.nn.Parameter(head.dequantize(ref.dtype), requires_grad=False)
    return ref


@pytest.fixture(params=[torch.float32, torch.bfloat16], ids=["float32", "bf16"])
def cores(request: Any, make_llama: Any) -> tuple[CoreModel, CoreModel]:
    core = CoreModel(make_llama(seed=5)).to(dtype=request.param)
    ref = _reference(core)
    core.quantize_int4()
    return core, ref


def test_quantized_core_holds_int4(cores: tuple[CoreModel, CoreModel]) -> None:
    core, ref = cores
    assert core.weights == "int4" and core.quantized and ref.weights == "float"
    assert all(isinstance(vars(layer)["w_down"], Int4Weight) for layer in core.layers)
    assert isinstance(core.lm_head, Int8Weight)
    assert core.weight_bytes() < 0.6 * ref.weight_bytes()


def test_int4_core_prefill_equals_the_dequantized_reference(
    cores: tuple[CoreModel, CoreModel],
) -> None:
    """Chunks of many rows dequantize: the same dense matmuls as the reference."""
    core, ref = cores
    ids = torch.randint(0, 258, (1, 120), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=60, chunk_size=40)
    ours = core.prefill(ids, core.new_cache(cfg), "all")
    theirs = ref.prefill(ids, ref.new_cache(cfg), "all")
    atol = 1e-4 if core.dtype == torch.float32 else 0.05
    assert torch.allclose(ours, theirs, atol=atol), float((ours - theirs).abs().max())


def test_int4_core_decodes_the_reference_greedy_tokens(
    cores: tuple[CoreModel, CoreModel],
) -> None:
    """Decode steps (one row: the int4 kernel, bf16 inside) follow the reference's greedy
    tokens, and their logits stay within bf16 precision of it."""
    core, ref = cores
    cfg = StreamingConfig(n_sink=4, window=60, chunk_size=20)
    prompt = torch.randint(0, 258, (1, 12), generator=torch.Generator().manual_seed(4))
    caches = core.new_cache(cfg), ref.new_cache(cfg)
    logits = core.prefill(prompt, caches[0]), ref.prefill(prompt, caches[1])
    ours, theirs, worst = [], [], 0.0
    for _ in range(30):
        tok = int(logits[1][0, -1].argmax())
        ours.append(int(logits[0][0, -1].argmax()))
        theirs.append(tok)
        step = torch.tensor([[tok]])  # both follow the reference's tokens
        logits = core.forward(step, caches[0]), ref.forward(step, caches[1])
        worst = max(worst, float((logits[0] - logits[1]).abs().max()))
    assert ours == theirs
    assert worst < 0.05, worst


def test_int4_keeps_shapes_the_kernel_cannot_take_as_float(make_llama: Any) -> None:
    core = CoreModel(make_llama(seed=6, intermediate_size=80))  # down: 80 inputs, not 32k
    core.quantize_int4()
    layer = core.layers[0]
    assert isinstance(vars(layer)["w_gate_up"], Int4Weight)
    assert isinstance(layer.w_down, torch.nn.Parameter)
    out = core.prefill(torch.tensor([[1, 2, 3]]), core.new_cache(StreamingConfig(4, 60, 20)))
    assert out.shape == (1, 1, 258) and bool(out.isfinite().all())


def test_int4_core_refuses_what_it_cannot_do(make_llama: Any, tmp_path: Path) -> None:
    core = CoreModel(make_llama(seed=7))
    with pytest.raises(ValueError, match="need bfloat16 or float32 activations"):
        copy.deepcopy(core).to(dtype=torch.float16).quantize_int4()
    int8 = copy.deepcopy(core).to(dtype=torch.bfloat16)
    int8.quantize_int8()
    with pytest.raises(ValueError, match="already holds int8 weights"):
        int8.quantize_int4()
    core.quantize_int4()
    core.quantize_int4()  # twice is once
    with pytest.raises(ValueError, match="int4 core cannot be saved"):
        core.save(tmp_path / "core.safetensors")


def test_adapter_update_on_int4_qkv(cores: tuple[CoreModel, CoreModel]) -> None:
    """An adapter's Q/K/V update is merged exactly (dense, in the model's dtype: int4 steps
    are too coarse to carry it); removing it brings the int4 weight back."""
    core, _ = cores
    layer = core.layers[0]
    base = vars(layer)["w_qkv"]
    assert isinstance(base, Int4Weight)
    delta = torch.full(base.shape, 1e-3)
    core.set_qkv_update(0, delta)
    merged = vars(layer)["w_qkv"]
    assert isinstance(merged, torch.Tensor) and merged.dtype == core.dtype
    expect = (base.dequantize() + delta).to(core.dtype)
    assert torch.equal(merged, expect)
    core.set_qkv_update(0, 2 * delta)  # replaces the first update, never adds to it
    assert torch.equal(vars(layer)["w_qkv"], (base.dequantize() + 2 * delta).to(core.dtype))
    out = core.prefill(torch.tensor([[5, 6, 7]]), core.new_cache(StreamingConfig(4, 60, 20)))
    assert bool(out.isfinite().all())
    core.set_qkv_update(0, None)
    assert vars(layer)["w_qkv"] is base
    core.add_to_qkv(1, delta)  # the training-time merge: dense as well
    assert isinstance(vars(core.layers[1])["w_qkv"], torch.Tensor)


# ------------------------------------------------------------------ the loader's choice


def _snap_to_int4(core: CoreModel) -> CoreModel:
    """``core`` with every projection replaced by its int4 dequantization (as a Q4_1 GGUF's)."""
    with torch.no_grad():
        for layer in core.layers:
            for name in CoreModel._PROJECTIONS:
                w = getattr(layer, name)
                w.copy_(Int4Weight(w).dequantize())
    return core


def test_core_knows_when_int4_is_exact(make_llama: Any) -> None:
    core = CoreModel(make_llama(seed=8))
    assert not core.int4_exact()  # random float weights: int4 rounds them
    assert _snap_to_int4(core).int4_exact()
    core.quantize_int4()
    assert not core.int4_exact()  # already quantized: nothing to choose


def test_int4_is_chosen_by_name_and_auto_keeps_its_rule() -> None:
    assert choose_weights(CPU, torch.bfloat16, "int4") == "int4"
    assert choose_weights(CPU, torch.float32, "int4") == "int4"
    assert choose_weights(CPU, torch.bfloat16, "auto") == "int8"
    fp32 = "packed" if packed_float_available() else "float"
    assert choose_weights(CPU, torch.float32, None) == (
        "int8" if int8_float32_available() else fp32
    )
    assert choose_weights(CPU, torch.float16, None) == "float"
    assert choose_weights(torch.device("cuda"), torch.bfloat16, None) == "float"
    assert choose_weights(CPU, torch.bfloat16, "float") == "float"


def test_choose_weights_int4() -> None:
    assert choose_weights(CPU, torch.bfloat16, "int4") == "int4"
    assert choose_weights(CPU, torch.float32, "int4") == "int4"
    with pytest.raises(ValueError, match="'int4' need the CPU and dtype bfloat16 or float32"):
        choose_weights(torch.device("cuda"), torch.bfloat16, "int4")
    with pytest.raises(ValueError, match="'int4' need the CPU and dtype bfloat16 or float32"):
        choose_weights(CPU, torch.float16, "int4")
