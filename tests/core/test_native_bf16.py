"""agentcore's int8 kernel for bf16 activations (``native/int8_bf16.cpp``, AVX512-BF16): its
result against the float product, every row computed as alone, bad input, the check that keeps
a wrong kernel out, and :class:`Int8Weight` holding its values as tiles for it."""

from __future__ import annotations

import pytest
import torch

from agentcore.core import native
from agentcore.core.quant import TILE_ROWS, Int8Weight, int8_tiles, linear


def bf16_kernel() -> native.Int8Linear:
    """The kernel; where the native module runs and the CPU has AVX512-BF16 its absence is a
    failure, not a skip."""
    module = native.decode_ops()
    if module is None:
        pytest.skip(f"the native module cannot run here: {native.status()}")
    if not module.int8_bf16_supported():
        pytest.skip("this CPU has no AVX512-BF16")
    found = native.int8_linear_bf16()
    assert found is not None, "the CPU has AVX512-BF16 but the kernel failed its check"
    return found


def operands(rows: int, n_out: int, n_in: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, n_in, generator=gen).bfloat16()
    q = torch.randint(-127, 128, (n_out, n_in), generator=gen, dtype=torch.int8)
    scale = (torch.rand(n_out, generator=gen) / 50 + 1e-3).bfloat16()
    return x, q, scale


def exact_product(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x.double() @ (q.double() * scale.double()[:, None]).T


@pytest.mark.parametrize("rows", [1, 2, 5, 15, 16, 17, 33, 64])
@pytest.mark.parametrize("n_out,n_in", [(16, 2), (48, 576), (1536, 576), (32, 1538)])
def test_bf16_kernel_equals_the_product_rounded_to_bf16(rows: int, n_out: int, n_in: int) -> None:
    x, q, scale = operands(rows, n_out, n_in, seed=rows * 7 + n_in)
    got = bf16_kernel()(x, int8_tiles(q), scale)
    assert got.dtype == torch.bfloat16 and got.shape == (rows, n_out)
    want = exact_product(x, q, scale)
    # float32 sums of bf16 products, then one rounding to bf16 (8 bits): within ~2 of its steps
    err = (got.double() - want).abs()
    assert (err <= want.abs() * 2**-7 + 1e-3).all(), err.max()


def test_bf16_kernel_computes_every_row_as_it_would_alone() -> None:
    """A session's decode step must not depend on which sessions share its batch: the rows of
    one call of 40 (a block of 16, another, 8 more) equal each row computed alone, bit for bit."""
    run = bf16_kernel()
    x, q, scale = operands(40, 96, 576, seed=3)
    tiles = int8_tiles(q)
    batch = run(x, tiles, scale)
    for row in range(40):
        assert torch.equal(run(x[row : row + 1], tiles, scale), batch[row : row + 1]), row
    assert torch.equal(run(x[5:21], tiles, scale), batch[5:21])


def test_bf16_kernel_reads_a_strided_batch_and_rejects_bad_input() -> None:
    run = bf16_kernel()
    x, q, scale = operands(4, 32, 64, seed=4)
    tiles = int8_tiles(q)
    wide = torch.zeros(4, 80, dtype=torch.bfloat16)
    wide[:, :64] = x
    assert torch.equal(run(wide[:, :64], tiles, scale), run(x, tiles, scale))  # copied, same answer
    assert run(x[:0], tiles, scale).shape == (0, 32)
    with pytest.raises(RuntimeError, match="x has 66 inputs, the weight 64"):
        run(torch.zeros(2, 66, dtype=torch.bfloat16), tiles, scale)
    with pytest.raises(RuntimeError, match="x must be a 2-D bf16 tensor"):
        run(x.float(), tiles, scale)
    with pytest.raises(
        RuntimeError, match=r"tiles must be a contiguous int8 \[n / 16, k / 2, 16, 2\]"
    ):
        run(x, q, scale)  # the plain [n, k] layout
    with pytest.raises(RuntimeError, match=r"scale must be a contiguous bf16 \[32\] tensor"):
        run(x, tiles, scale.float())
    with pytest.raises(RuntimeError, match=r"scale must be a contiguous bf16 \[32\] tensor"):
        run(x, tiles, scale[:16])


def test_a_bf16_kernel_with_a_wrong_result_is_not_used() -> None:
    def right(x: torch.Tensor, tiles: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        n_out, n_in = tiles.shape[0] * 16, tiles.shape[1] * 2
        q = tiles.permute(0, 2, 1, 3).reshape(n_out, n_in)
        return exact_product(x, q, scale).bfloat16()

    def plain_layout(x: torch.Tensor, tiles: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        q = tiles.reshape(tiles.shape[0] * 16, tiles.shape[1] * 2)  # reads the tiles untransposed
        return exact_product(x, q, scale).bfloat16()

    assert native._check_bf16(right) is None
    assert "its bf16 result differs from PyTorch's" in (native._check_bf16(plain_layout) or "")


def test_int8_tiles_lay_out_16_outputs_by_2_inputs() -> None:
    q = torch.arange(32 * 6, dtype=torch.int32).remainder(251).sub(125).to(torch.int8).view(32, 6)
    tiles = int8_tiles(q)
    assert tiles.shape == (2, 3, 16, 2) and tiles.is_contiguous()
    for n in range(32):
        for k in range(6):
            assert tiles[n // 16, k // 2, n % 16, k % 2] == q[n, k]


@pytest.mark.parametrize("rows", [1, 9, TILE_ROWS, TILE_ROWS + 1])
def test_int8_weight_runs_bf16_activations_on_its_tiles(rows: int) -> None:
    """Up to TILE_ROWS rows run on the tiles whatever dense_rows says (no bf16 copy is made);
    longer calls (a prompt's chunks) on the bf16 copy. ``q`` still reads [n_out, n_in]."""
    bf16_kernel()
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(64, 96, generator=gen).bfloat16()
    weight = Int8Weight(w, dense_rows=4)
    assert weight.tiled and weight.nbytes() == 64 * 96 + 64 * 2  # no second int8 copy
    scale = w.float().abs().amax(dim=1) / 127
    assert torch.equal(
        weight.q, torch.round(w.float() / scale[:, None]).clamp(-127, 127).to(torch.int8)
    )
    x = torch.randn(1, rows, 96, generator=gen).bfloat16()
    out = linear(x, weight)
    assert out.shape == (1, rows, 64) and out.dtype == torch.bfloat16
    want = x[0].double() @ weight.dequantize(torch.float32).double().T
    torch.testing.assert_close(out[0].double(), want, atol=0.05, rtol=0.02)
    assert weight.dense_nbytes() == (0 if rows <= TILE_ROWS else 64 * 96 * 2)
    if rows <= TILE_ROWS:
        assert torch.equal(out[0, :1], linear(x[:, :1], weight)[0])  # row 0 as alone


def test_weights_the_tiles_cannot_hold_stay_plain() -> None:
    bf16_kernel()
    gen = torch.Generator().manual_seed(1)
    for w in (
        torch.randn(40, 32, generator=gen).bfloat16(),
        torch.randn(32, 33, generator=gen).bfloat16(),
    ):
        weight = Int8Weight(w)  # 40 outputs: not whole tiles; 33 inputs: not pairs
        assert not weight.tiled
        x = torch.randn(3, w.shape[1], generator=gen).bfloat16()
        torch.testing.assert_close(
            linear(x, weight).float(),
            x.float() @ weight.dequantize(torch.float32).T,
            atol=0.05,
            rtol=0.02,
        )
    # float32 scales: the AVX2 kernel's
    assert not Int8Weight(torch.randn(32, 32, generator=gen)).tiled
    float_acts = Int8Weight(torch.randn(32, 32, generator=gen), kernel_dtype=torch.bfloat16)
    assert float_acts.tiled  # float32 activations cast to bf16 for it (the int4 path's LM head)
    x = torch.randn(2, 32, generator=gen)
    out = linear(x, float_acts)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, x @ float_acts.dequantize(torch.float32).T, atol=0.05, rtol=0.02
    )
