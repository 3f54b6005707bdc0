"""agentcore's native int8 kernel (agentcore.core.native): its result against PyTorch's, the
int8 weights and the model core on it with float32 activations, and every way it can be
missing (a CPU without AVX2, a build that fails, a wrong result, turned off)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from agentcore.core import native
from agentcore.core.cache import StreamingConfig
from agentcore.core.llama import CoreModel
from agentcore.core.loader import choose_weights
from agentcore.core.quant import NATIVE_ROWS, Int8Weight, int8_float32_available, linear

CPU = torch.device("cpu")


@pytest.fixture
def fresh_native() -> Iterator[None]:
    """Forget the loaded kernel before and after a test that changes how it loads."""
    native._load.cache_clear()
    yield
    native._load.cache_clear()


def kernel() -> native.Int8Linear:
    """The kernel; on a machine that should have it (x86 with AVX2, not turned off), its
    absence is a failure, not a skip."""
    why = native._unsupported()
    if why is not None:
        pytest.skip(f"the native kernel cannot run here: {why}")
    found = native.int8_linear()
    assert found is not None, native.status()
    return found


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 9, 13, 27])
@pytest.mark.parametrize("n_out,n_in", [(64, 576), (33, 40), (7, 1536)])
def test_kernel_equals_the_float32_product(rows: int, n_out: int, n_in: int) -> None:
    gen = torch.Generator().manual_seed(rows * 1000 + n_out)
    x = torch.randn(rows, n_in, generator=gen)
    q = torch.randint(-127, 128, (n_out, n_in), generator=gen, dtype=torch.int8)
    scale = torch.rand(n_out, generator=gen) / 50
    want = x.double() @ (q.double() * scale.double()[:, None]).T
    got = kernel()(x, q, scale)
    assert got.dtype == torch.float32 and got.shape == (rows, n_out)
    assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-5)


def test_kernel_loops_share_pytorchs_threads() -> None:
    """Compiled without OpenMP, the kernel's parallel loop ran on one core of two (11.3 ms a
    pass over SmolLM2's weights instead of 6.0)."""
    kernel()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert native.threads_used(64) == 2
        torch.set_num_threads(1)
        assert native.threads_used(64) == 1
    finally:
        torch.set_num_threads(before)


_COMPUTE_THREAD_FIRST = """
import torch
from agentcore import _compute as compute
from agentcore.core import native
compute.use_threads(2)  # what Engine.load(threads=2) does; every other thread gets one
ops = compute.run(native.decode_ops)  # loads the module: its check runs the kernel's loop
q, k = torch.randn(1, 2, 3, 64), torch.randn(1, 2, 600, 64)
compute.run(lambda: ops.decode_attention(q, k, k, None, 600))
print(compute.threads(), compute.run(native.threads_used))
"""


def test_the_kernels_leave_the_compute_threads_count_alone() -> None:
    """at::parallel_for's lazy set-up, inlined into the module with a per-thread flag of its
    own, set the compute thread's count to the process-wide one (1) on the module's first
    loop there: the model ran on one core of two from its first native op (fresh process)."""
    kernel()
    out = subprocess.run(
        [sys.executable, "-c", _COMPUTE_THREAD_FIRST], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["2", "2"]


_THREADS_AFTER_LOADING = """
import os, sys, torch
from agentcore import _compute as compute
from agentcore.core import native
if sys.argv[1] == "main":
    native.decode_ops(), native.int8_linear_bf16()  # loaded by the program's own thread
else:
    compute.run(native.decode_ops), compute.run(native.int8_linear_bf16)
x = torch.randn(8, 4096)
compute.run(lambda: (x @ x.T).sum())  # the compute thread's team, as a decode step starts it
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_loading_the_module_from_another_thread_starts_no_second_team() -> None:
    """The module's load checks run its kernels in parallel; run by whichever thread loaded
    it (a program's main thread, a test), they gave that thread an OpenMP team beside the
    compute thread's: more OpenMP threads than CPUs, and libgomp woke its workers through the
    kernel for every parallel region (decode steps 2.4x slower). Fresh processes: loaded from
    the main thread, the process holds no more threads than loaded on the compute thread."""
    kernel()
    counts = [
        int(
            subprocess.run(
                [sys.executable, "-c", _THREADS_AFTER_LOADING, where],
                capture_output=True, text=True, check=True,
            ).stdout.split()[-1]
        )
        for where in ("main", "compute")
    ]  # fmt: skip
    assert counts[0] == counts[1]


def test_kernel_reads_a_strided_batch_and_rejects_bad_input() -> None:
    run = kernel()
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 80, generator=gen)[:, :64]  # not contiguous: copied, same answer
    q = torch.randint(-127, 128, (16, 64), generator=gen, dtype=torch.int8)
    scale = torch.rand(16, generator=gen) / 50
    want = x.double() @ (q.double() * scale.double()[:, None]).T
    assert torch.allclose(run(x, q, scale).double(), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="x has 32 inputs, q 64"):
        run(torch.randn(2, 32), q, scale)
    with pytest.raises(RuntimeError, match="x must be a 2-D float32 tensor"):
        run(x.bfloat16(), q, scale)
    with pytest.raises(RuntimeError, match="15 scales for 16 rows"):
        run(x, q, scale[:15])


@pytest.mark.parametrize("rows", [1, NATIVE_ROWS, NATIVE_ROWS + 1, 40])
def test_int8_weight_runs_float32_activations_on_the_native_kernel(rows: int) -> None:
    kernel()
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(48, 96, generator=gen)
    x = torch.randn(1, rows, 96, generator=gen)
    bias = torch.randn(48, generator=gen)
    packed = Int8Weight(w)
    assert packed.dense_nbytes() == 0
    out = linear(x, packed, bias)
    ref = F.linear(x, packed.dequantize(torch.float32), bias)
    assert out.shape == (1, rows, 48) and out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=1e-4)
    # more rows than the kernel takes run on a float32 copy, built once and counted
    assert packed.dense_nbytes() == (0 if rows <= NATIVE_ROWS else 48 * 96 * 4)


def test_int8_core_on_float32_stays_with_the_float_core(make_llama: Any) -> None:
    kernel()
    ref = CoreModel(make_llama(seed=3))
    core = CoreModel(make_llama(seed=3))
    core.quantize_int8()
    assert core.weights == "int8" and core.dtype == torch.float32
    ids = torch.randint(0, 258, (1, 90), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=40, chunk_size=20)
    cache, ref_cache = core.new_cache(cfg), ref.new_cache(cfg)
    ours = core.prefill(ids, cache, "all")
    expected = ref.prefill(ids, ref_cache, "all")
    # per-row int8 rounding: close to the float core, and the same choices where it is sure
    assert (ours - expected).abs().max() < 0.05 * expected.abs().max()
    margin = expected.topk(2, dim=-1).values.diff(dim=-1).abs()[..., 0]
    sure = margin > 0.05
    assert bool(sure.any())
    assert torch.equal(ours.argmax(-1)[sure], expected.argmax(-1)[sure])
    for i in range(12):  # decode steps: one row each, the kernel itself
        step = core.forward(ids[:, i : i + 1], cache)
        ref_step = ref.forward(ids[:, i : i + 1], ref_cache)
        assert (step - ref_step).abs().max() < 0.05 * ref_step.abs().max()


def test_auto_picks_int8_for_float32_where_the_kernel_runs() -> None:
    kernel()
    assert int8_float32_available()
    assert choose_weights(CPU, torch.float32, "int8") == "int8"
    assert choose_weights(CPU, torch.float32, None) == "int8"


def test_turned_off_the_loader_keeps_float32_weights(
    fresh_native: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(native.ENV, "0")
    assert native.int8_linear() is None
    assert native.decode_ops() is None  # the model core and the cache keep PyTorch's ops
    assert native.threads_used() == 0
    assert native.status() == "turned off (AGENTCORE_NATIVE=0)"
    assert not int8_float32_available()
    assert choose_weights(CPU, torch.float32, None) in ("packed", "float")
    with pytest.raises(ValueError, match=r"native kernel: turned off \(AGENTCORE_NATIVE=0\)"):
        choose_weights(CPU, torch.float32, "int8")
    # an int8 weight still computes with float32 activations, on PyTorch's kernel
    w, x = torch.randn(16, 32), torch.randn(3, 32)
    packed = Int8Weight(w)
    assert torch.allclose(packed(x), x @ packed.dequantize(torch.float32).T, atol=1e-4)


def test_a_cpu_without_avx2_is_told_apart(
    fresh_native: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    monkeypatch.setattr(native.platform, "machine", lambda: "x86_64")
    assert native.int8_linear() is None
    assert native.status() == "needs AVX2 and FMA; PyTorch reports CPU capability DEFAULT"
    monkeypatch.setattr(native.platform, "machine", lambda: "aarch64")
    native._load.cache_clear()
    assert native.status() == "x86-64 only, this is aarch64"


def test_a_failed_build_leaves_pytorchs_path(
    fresh_native: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if native._unsupported() is not None:
        pytest.skip("no build is tried on this machine")
    broken = tmp_path / "int8_linear.cpp"
    broken.write_text("#error this source does not compile\n")
    monkeypatch.setattr(native, "SOURCES", (*native.SOURCES[:-1], broken))
    monkeypatch.setenv("AGENTCORE_CACHE", str(tmp_path / "cache"))
    assert native.int8_linear() is None
    assert native.status().startswith("could not be built: ")
    assert native.build_dir().parent == tmp_path / "cache" / "kernels"


def reference(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The kernel's product in plain PyTorch (a scale per row, or per group of inputs)."""
    groups = scale.reshape(q.shape[0], -1)
    weight = q.float().view(q.shape[0], groups.shape[1], -1) * groups[..., None]
    return x @ weight.view(q.shape).T


def test_a_kernel_with_a_wrong_result_is_not_used() -> None:
    def off_by_one(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return reference(x, q, scale) + 1

    def per_row_only(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x @ (q.float() * scale.reshape(q.shape[0], -1)[:, :1]).T  # ignores groups

    assert "its result differs from PyTorch's" in (native._check(off_by_one) or "")
    assert "(5x96 by 7" in (native._check(per_row_only) or "")
    assert native._check(reference) is None


@pytest.mark.parametrize("rows", [1, 3, 4, 8])
@pytest.mark.parametrize("n_in,groups", [(576, 18), (1536, 48), (64, 2), (96, 1)])
def test_kernel_with_a_scale_per_group(rows: int, n_in: int, groups: int) -> None:
    gen = torch.Generator().manual_seed(rows + n_in)
    n_out = 24
    x = torch.randn(rows, n_in, generator=gen)
    q = torch.randint(-127, 128, (n_out, n_in), generator=gen, dtype=torch.int8)
    scale = torch.rand(n_out, groups, generator=gen) / 50
    weight = (q.double().view(n_out, groups, -1) * scale.double()[..., None]).view(n_out, n_in)
    got = kernel()(x, q, scale)
    assert torch.allclose(got.double(), x.double() @ weight.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="each group must hold a multiple of 16 inputs"):
        kernel()(x, q, torch.rand(n_out, n_in // 8))


def test_int8_weight_per_group_rounds_each_group_on_its_own_step() -> None:
    kernel()
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(40, 128, generator=gen) * 0.02
    w[:, 5] = 3.0  # one large weight per row: per row it would set every weight's step
    per_row, per_group = Int8Weight(w), Int8Weight(w, group_size=32)
    assert per_group.scale.shape == (40, 4) and per_group.group_size == 32
    err_row = (per_row.dequantize(torch.float32) - w).abs()[:, 32:].max()
    err_group = (per_group.dequantize(torch.float32) - w).abs()
    assert bool((err_group <= per_group.scale.repeat_interleave(32, dim=1) / 2 + 1e-7).all())
    assert err_group[:, 32:].max() < err_row / 20  # the groups without the large weight
    assert per_group.nbytes() == 40 * 128 + 40 * 4 * 4
    x = torch.randn(4, 5, 128, generator=gen)
    ref = F.linear(x, per_group.dequantize(torch.float32))
    assert NATIVE_ROWS < 20
    assert torch.allclose(per_group(x), ref, atol=1e-5)  # the float32 copy: 20 rows
    assert torch.allclose(per_group(x[:, :2]), ref[:, :2], atol=1e-5)  # the kernel: 8 rows
    assert torch.allclose(per_group(x.bfloat16()).float(), ref, atol=0.1)  # dequantized


@pytest.mark.parametrize("group", [0, -16, 24, 40, 192])
def test_a_group_size_that_cannot_be_used_is_named(group: int) -> None:
    with pytest.raises(ValueError, match=f"group_size={group}: int8 groups need a float32"):
        Int8Weight(torch.randn(8, 96), group_size=group)
    with pytest.raises(ValueError, match="group_size=32: int8 groups need a float32 weight"):
        Int8Weight(torch.randn(8, 96).bfloat16(), group_size=32)


def test_core_quantized_per_group_keeps_a_row_scale_where_the_group_does_not_divide(
    make_llama: Any,
) -> None:
    kernel()
    ref = CoreModel(make_llama(seed=3))
    core = CoreModel(make_llama(seed=3))
    core.quantize_int8(group_size=32)
    for layer in core.layers:
        for name in core._PROJECTIONS:
            w = vars(layer)[name]
            assert w.group_size == (32 if w.shape[1] % 32 == 0 else None)
    ids = torch.randint(0, 258, (1, 30), generator=torch.Generator().manual_seed(0))
    cfg = StreamingConfig(n_sink=4, window=40, chunk_size=20)
    ours = core.prefill(ids, core.new_cache(cfg), "all")
    expected = ref.prefill(ids, ref.new_cache(cfg), "all")
    assert (ours - expected).abs().max() < 0.05 * expected.abs().max()
