"""Int8 and int4 weights for CPU decoding: the model core's projections stored quantized.

Owns the int8 and int4 forms of one linear weight and the ``linear`` call the model core uses
for every projection. On a CPU a decode step is bound by memory bandwidth (each token reads
every weight once), so fewer weight bytes is what makes decoding fast; see
``docs/benchmarks/dtype.md`` for the bytes per token, the speed and the perplexity cost. Only
weights are quantized; activations stay in the model's dtype. Small batches (decode steps) use
PyTorch's CPU kernels; large ones (chunked prefill) run one dense matmul, which is faster
there: on the bf16 copy below where it is kept, else on the weight dequantized for the call. A
float weight passes through ``F.linear`` untouched.

- :class:`Int8Weight`: symmetric, one scale per output row, ``torch._weight_int8pack_mm``
  (vectorized for bf16 activations). That kernel reads the weight once per row of activations,
  so a batch of decode steps (many sessions stepping together) costs it nearly rows times one
  step; with ``dense_rows`` set (a CPU with native bf16 matmuls, see ``Engine.load``) batches
  of that many rows or more run a dense bf16 matmul (oneDNN, weight pre-packed) on the int8
  values held as bf16 (exact: every int8 value is a bf16 value) and apply the per-row scale
  after it, so each weight read serves every row; a prompt's chunks (more rows) run on it
  too. The bf16 copy is made on the first such call (a batch, or a prompt of ``dense_rows``
  tokens or more) and holds 2 bytes per weight on top of the int8 byte (SmolLM2-135M: +269
  MB). Its result differs from the kernel's by rounding (the product is rounded to bf16 before
  the scale): greedy decoding agrees on 99% of real tokens, see
  ``docs/benchmarks/concurrency.md``. On a CPU with AVX512-BF16 agentcore's own kernel
  (:func:`native.int8_linear_bf16`, ``native/int8_bf16.cpp``) replaces both for calls of up to
  :data:`TILE_ROWS` rows: it holds the int8 values in tiles of 16 outputs, widens them to bf16
  in registers and reads each once for up to 16 rows, every row summed as it would be alone
  (SmolLM2's projections, 2 threads: 4.8 ms a pass at 1 row against PyTorch's 9.0, 11.6 at 16
  rows against the copy's 17.7); the bf16 copy is then made for longer calls only (a prompt's
  chunks).
- :class:`Int4Weight`: asymmetric min/max per group of 32 inputs, ``q`` in 0..15 and
  ``w = (q - 8) * scale + zero`` with bf16 ``scale`` and ``zero``, the convention of
  ``torch.ops.aten._weight_int4pack_mm_for_cpu`` (checked against a dequantized reference in
  ``tests/core/test_quant_int4.py``). That is GGUF's Q4_1 block (``w = d * q + m``, 32
  weights) with ``scale = d``, ``zero = m + 8 d``: a Q4_1 tensor, dequantized to float by the
  loader, requantizes to the same ``q`` (SmolLM2's projections: within 0.073 of a step, the
  bf16 rounding of ``d`` and ``m``). The kernel's vectorized forms (AVX512, AVX2) take bf16
  activations and compute in float32, so float32 activations are cast to bf16 for it and the
  path needs no bf16 hardware: it is the one that cuts the bytes on AVX2-only CPUs, where the
  model otherwise runs float32 (0.625 bytes per weight against 4).

Measured (``bench/dtype.py``, 1 thread, interleaved rounds on a shared 2-core Xeon, load 3-7;
docs/benchmarks/dtype*.md). SmolLM2-135M reads 513 MiB of weights per decode step in float32,
129 MiB with int8 and 90 MiB with int4 (int8 LM head); perplexity on 4096 book tokens 24.776
(float32), 24.860 (bf16 + int8), 24.887 (bf16 + int4), 24.781 (float32 + int4); decode
1.38x int8's speed with bf16 activations and 1.9x float32's with float32 activations, prefill
0.81x and 0.88x (chunks dequantized then; on the bf16 copy, since session 36, bf16 + int8
prefills at 1.03x bf16's: ``docs/benchmarks/prefill-dense/``). With AVX2 kernels forced
(``ATEN_CPU_CAPABILITY=avx2``, oneDNN and MKL capped to AVX2; not a real AVX2-only CPU):
float32 + int4 decodes 1.71x float32 (prefill 0.89x). Qwen2.5-Coder-0.5B, whose GGUF
projections are 5/6/8-bit, loses 4.7% to int4 (:func:`int4_exact` tells the two cases
apart). int4 is asked for by name (``weights="int4"``); auto (``loader.choose_weights``) keeps
int8 / float, see there.

- :class:`Int8Weight` with float32 activations (a CPU without bf16 dot products, AVX2 only):
  PyTorch's int8 kernel is not vectorized for float32, so calls of up to ``NATIVE_ROWS`` rows
  (decode steps, small batches) run agentcore's own kernel (:mod:`agentcore.core.native`,
  compiled at setup; float32 math on the dequantized weight, up to the order of the sums) and
  longer ones (prompt chunks, batches of many sessions) a float32 copy of the weight, packed
  for oneDNN, built on first use. ``Engine.load`` holds them with a scale per ``INT8_GROUP``
  inputs, and auto picks them on such CPUs (``loader.choose_weights``): SmolLM2 on a 2-core
  AVX2 EPYC, 2 threads, decodes after 4K tokens 1.55x packed float32's speed, perplexity
  +0.19%; Qwen2.5-Coder-0.5B 1.45x, -0.01% (``docs/benchmarks/dtype-avx2-native/``; a scale
  per row was as fast but failed a real-model test). The copy makes the weights 1.2x packed
  float32's in RAM (SmolLM2 765 MiB against 621).
- :class:`PackedWeight`: not quantized: float32 in oneDNN's blocked layout, what auto picks
  for float32 on the CPU where the native int8 kernel does not run, where it decodes 1.24x (SmolLM2) and 1.61x
  (Qwen2.5-Coder-0.5B) plain ``F.linear`` with two threads (``docs/benchmarks/dtype-avx2*.md``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from agentcore.core import native as native_module
from agentcore.core.native import Int8Linear, int8_tiles
from agentcore.core.native import call as native_call

__all__ = [
    "DENSE_ROWS",
    "INT4_GROUP",
    "INT8_GROUP",
    "NATIVE_ROWS",
    "TILE_ROWS",
    "Int4Weight",
    "Int8Weight",
    "PackedWeight",
    "int4_available",
    "int4_exact",
    "int4_fits",
    "int8_available",
    "int8_float32_available",
    "int8_tiles",
    "linear",
    "packed_float_available",
]

INT8_GROUP = 32  # inputs per scale of float32 int8 weights (the native kernel): a GGUF block
NATIVE_ROWS = 16  # up to this many rows of float32 activations the native int8 kernel runs;
# more (a longer prompt's chunk, a batch of many sessions) use a float32 copy of the weight:
# SmolLM2's shapes, 2 threads, AVX2 EPYC, ms per pass int8 vs packed float32: 6.0 vs 24.6 at 1
# row, 20.2 vs 36.4 at 8, 42.7 vs 49.8 at 16, 73.1 vs 62.6 at 24 (oneDNN's GEMM wins once the
# rows make it compute-bound)
_KERNEL_ROWS = 32  # up to this many rows the int8 kernel beats dequantize + dense (measured:
# decode batches of 16 sessions ran 3.4x slower dequantizing; bench/concurrency.py)
_KERNEL_INPUTS = 8  # PyTorch's int8 kernel takes a multiple of this many inputs (it crashed the
# process on 33, 34 or 36: torch 2.13, CPU)
DENSE_ROWS = 4  # from this many rows the bf16 copy (oneDNN-packed) beats the int8 kernel (1
# thread, SmolLM2's shapes: all its linears cross over at 3-4 rows; 16 rows: 26 vs 109 ms a step)
TILE_ROWS = 64  # up to this many rows of bf16 activations agentcore's bf16 kernel runs (where
# the CPU has AVX512-BF16), longer calls the bf16 copy: SmolLM2's shapes, 2 threads, AMD EPYC,
# ms per pass kernel vs copy: 4.8 vs 12.9 at 1 row, 11.6 vs 17.7 at 16, 41.9 vs 45.1 at 64,
# 82.4 vs 80.8 at 128 (PyTorch's int8 kernel: 9.0 at 1 row, 36.8 at 16)
_PACK_ROWS = 16  # the batch size oneDNN lays the packed weight out for (any batch runs on it)


def int8_available() -> bool:
    """Whether this PyTorch build has the CPU int8-weight matmul kernel."""
    return hasattr(torch, "_weight_int8pack_mm")


class Int8Weight:
    """A ``[n_out, n_in]`` weight as int8 values and one scale per output row, or with
    ``group_size`` one per group of that many inputs of a row (float32 only, on agentcore's
    native kernel: a row's few large weights then set the step of their own group, not the
    whole row's; 4 more bytes per group).

    Calling it computes ``x @ W.T`` for ``x: [..., n_in]`` in the activation dtype. With
    ``kernel_dtype`` the scale is held in that dtype and the kernel runs on activations cast to
    it (the int4 path's LM head: PyTorch's int8 kernel is vectorized for bf16 only, so float32
    activations go through it as bf16). With ``dense_rows`` (bf16 only) calls of that many rows
    or more multiply by the int8 values held as bf16 and scale the product (see the module
    docstring); the result differs from the kernel's by the rounding of the bf16 product.

    ``tiled``: held as tiles for agentcore's bf16 kernel (bf16 scales, one per row, a multiple
    of 16 outputs and an even number of inputs, on a CPU with AVX512-BF16), which then runs
    every call of up to :data:`TILE_ROWS` rows, whatever ``dense_rows`` says: it reads each
    int8 weight once for all the rows and computes every row as it would alone.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        *,
        kernel_dtype: torch.dtype | None = None,
        dense_rows: int | None = None,
        group_size: int | None = None,
    ) -> None:
        if weight.device.type != "cpu":
            raise ValueError(f"int8 weights run on the CPU only, got a weight on {weight.device}")
        n_out, n_in = (int(d) for d in weight.shape)
        if group_size is not None and (
            weight.dtype != torch.float32
            or kernel_dtype is not None
            or group_size % 16
            or group_size <= 0
            or n_in % group_size
        ):
            raise ValueError(
                f"group_size={group_size}: int8 groups need a float32 weight, no kernel_dtype, "
                f"and a positive multiple of 16 that divides the {n_in} inputs (weight "
                f"{weight.dtype}, kernel_dtype {kernel_dtype})"
            )
        self.group_size = group_size
        g = group_size or n_in
        w = weight.detach().float().view(n_out, n_in // g, g)
        scale = (w.abs().amax(dim=2, keepdim=True) / 127.0).clamp(min=1e-12)
        q = torch.round(w / scale).clamp(-127, 127).to(torch.int8).view(n_out, n_in)
        # [n_out] per row, [n_out, groups] per group
        scale = scale[..., 0] if group_size else scale[:, 0, 0]
        self.scale = scale.to(kernel_dtype or weight.dtype).contiguous()
        self.shape = (n_out, n_in)
        self.cast = kernel_dtype is not None
        self.dense_rows = dense_rows if self.scale.dtype == torch.bfloat16 else None
        # the int8 values: as tiles for agentcore's bf16 kernel where it runs them, else plain
        self._tiles_kernel = _bf16_kernel(self.scale.dtype, group_size, n_out, n_in)
        self._q = int8_tiles(q) if self.tiled else q.contiguous()
        self._dense: torch.Tensor | None = None  # [n_out, n_in] bf16 int values, built on demand
        self._float: torch.Tensor | PackedWeight | None = None  # float32 weight, on demand

    @property
    def tiled(self) -> bool:
        """Whether the int8 values are held as tiles for agentcore's bf16 kernel."""
        return self._tiles_kernel is not None

    @property
    def q(self) -> torch.Tensor:
        """The int8 values, ``[n_out, n_in]`` (a copy where they are held as tiles)."""
        if self.tiled:
            n_out, n_in = self.shape
            return self._q.permute(0, 2, 1, 3).reshape(n_out, n_in)
        return self._q

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The weight this layer computes with, as a dense tensor."""
        dt = dtype or self.scale.dtype
        if self.group_size:
            n, k = self.shape
            grouped = self.q.view(n, k // self.group_size, self.group_size).to(dt)
            return (grouped * self.scale.to(dt)[..., None]).view(n, k)
        return self.q.to(dt) * self.scale.to(dt)[:, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])  # [rows, n_in]
        rows = flat.shape[0]
        native = _native_kernel(x.dtype, self.scale.dtype)
        kernel = self._tiles_kernel
        if kernel is not None and rows <= TILE_ROWS and (self.cast or x.dtype == torch.bfloat16):
            a = flat if x.dtype == torch.bfloat16 else flat.to(torch.bfloat16)
            out = native_call("int8_linear_bf16", kernel, a, self._q, self.scale)
            if x.dtype != torch.bfloat16:
                out = out.to(x.dtype)
        elif native is not None:
            if rows <= NATIVE_ROWS:
                out = native_call("int8_linear", native, flat, self.q, self.scale)
            else:
                out = linear(flat, self._float_values())
        elif (
            (rows <= _KERNEL_ROWS or self.dense_rows is not None)
            and not self.group_size
            and self.shape[1] % _KERNEL_INPUTS == 0
            and (self.cast or x.dtype == self.scale.dtype)
        ):
            same = x.dtype == self.scale.dtype
            # a decode step's rows are already bf16 and contiguous: no casts to dispatch
            a = flat if same and flat.is_contiguous() else flat.to(self.scale.dtype).contiguous()
            if self.dense_rows is not None and rows >= self.dense_rows:
                # any longer call too (a prompt's chunk): dequantizing the weight for every
                # chunk cost more than the product (SmolLM2, 2 threads: all projections of a
                # 512-token chunk 353 ms dequantizing, 276 on the copy; 64 tokens 63 vs 42)
                out = _dense_linear(a, self._dense_values()) * self.scale
            else:
                out = torch._weight_int8pack_mm(a, self.q, self.scale)
            if not same:
                out = out.to(x.dtype)
        else:
            out = F.linear(flat, self.dequantize(x.dtype))
        return out.view(*x.shape[:-1], self.shape[0])

    def _float_values(self) -> torch.Tensor | PackedWeight:
        """The dequantized float32 weight (oneDNN-packed where it runs) for calls of more than
        ``NATIVE_ROWS`` rows on the native path, kept once built."""
        if self._float is None:
            plain = self.dequantize(torch.float32)
            self._float = PackedWeight(plain) if packed_float_available() else plain
        return self._float

    def _dense_values(self) -> torch.Tensor:
        """The int8 values as a bf16 ``[n_out, n_in]`` weight (exact), kept once built."""
        if self._dense is None:
            self._dense = _pack_bf16(self.q.to(torch.bfloat16))
        return self._dense

    def nbytes(self) -> int:
        """Bytes of the int8 form (the bf16 copy for batches is counted by :meth:`dense_nbytes`)."""
        return self._q.numel() + self.scale.numel() * self.scale.element_size()

    def dense_nbytes(self) -> int:
        """Bytes of the copy held for larger calls (0 until built): bf16 for batches of
        ``dense_rows`` or more, float32 for calls of more than ``NATIVE_ROWS`` on the native
        path."""
        return (0 if self._dense is None else self._q.numel() * 2) + (
            0 if self._float is None else self._q.numel() * 4
        )


def _bf16_kernel(
    scale_dtype: torch.dtype, group_size: int | None, n_out: int, n_in: int
) -> Int8Linear | None:
    """agentcore's bf16 int8 kernel where it serves a weight of this form (bf16 scales, one per
    row, whole tiles, and a CPU with AVX512-BF16: :func:`native.int8_linear_bf16`), else None."""
    if scale_dtype != torch.bfloat16 or group_size or n_out % 16 or n_in % 2:
        return None
    return native_module.int8_linear_bf16()


def _native_kernel(x_dtype: torch.dtype, scale_dtype: torch.dtype) -> Int8Linear | None:
    """agentcore's int8 kernel where it serves this call (float32 activations and scales, and
    the kernel built and checked on this machine: :mod:`agentcore.core.native`), else None."""
    if x_dtype != torch.float32 or scale_dtype != torch.float32:
        return None
    return native_module.int8_linear()


def int8_float32_available() -> bool:
    """Whether int8 weights run fast with float32 activations here (agentcore's native kernel:
    an x86 CPU with AVX2 and FMA and a C++ compiler; see :mod:`agentcore.core.native`)."""
    return native_module.int8_linear() is not None


def _onednn_linear_runs(dtype: torch.dtype) -> bool:
    """Whether oneDNN's packed linear runs here for ``dtype`` (tried once on a tiny weight).

    PyTorch's CPU builds have it, but on x86 its bf16 path needs AVX512 (BW, VL, DQ) or
    AVX-NE-CONVERT, so an AVX2-only CPU raises on first use; its float32 path runs on AVX2."""
    ops = torch.ops.mkldnn
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    ):
        return False
    try:
        w = ops._reorder_linear_weight(torch.ones(8, 8, dtype=dtype), _PACK_ROWS)
        out = ops._linear_pointwise(torch.ones(2, 8, dtype=dtype), w, None, "none", [], "")
    except RuntimeError:
        return False
    return bool(torch.all(out == 8.0))


@functools.cache
def _onednn() -> bool:
    """Whether bf16 batches of int8 weights use the packed bf16 linear (else plain ``F.linear``);
    tried on first use, not on import (an import must not start PyTorch's thread pool on the
    importing thread: :mod:`agentcore._compute`)."""
    return _onednn_linear_runs(torch.bfloat16)


@functools.cache
def packed_float_available() -> bool:
    """Whether oneDNN's packed float32 linear (:class:`PackedWeight`) runs here."""
    return _onednn_linear_runs(torch.float32)


class PackedWeight:
    """A float32 ``[n_out, n_in]`` weight in oneDNN's blocked layout, packed once at load.

    The float32 path of a CPU without bf16 dot products (AVX2 only), where ``F.linear`` on a
    plain weight runs MKL's GEMM. On a 2-core AVX2 EPYC with two threads, SmolLM2 decodes 1.24x
    as fast on packed weights after 4K tokens of context (``docs/benchmarks/dtype-avx2.md``;
    with one thread the two are alike), and batched steps of many sessions gain more
    (``docs/benchmarks/concurrency-avx2.md``). The math is float32 as before, summed in another
    order: logits differ by ~1e-5, perplexity is unchanged. The plain weight is not kept;
    :meth:`dequantize` gives it back exactly (the packed product with the identity: every
    output is one weight times 1).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        if weight.device.type != "cpu" or weight.dtype != torch.float32:
            raise ValueError(
                f"packed weights are float32 on the CPU, got {weight.dtype} on {weight.device}"
            )
        self.shape = (int(weight.shape[0]), int(weight.shape[1]))
        plain = weight.detach().contiguous()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(plain, _PACK_ROWS)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])  # [rows, n_in]
        if flat.dtype != torch.float32:
            flat = flat.float()
        out = torch.ops.mkldnn._linear_pointwise(
            flat.contiguous(), self.packed, None, "none", [], ""
        )
        return out.to(x.dtype).view(*x.shape[:-1], self.shape[0])

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The weight as a plain ``[n_out, n_in]`` tensor (exact)."""
        eye = torch.eye(self.shape[1], dtype=torch.float32)
        w = self(eye).T.contiguous()
        return w if dtype is None else w.to(dtype)

    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * 4


def _pack_bf16(w: torch.Tensor) -> torch.Tensor:
    """``w: [n_out, n_in]`` bf16 in oneDNN's blocked layout where it can be (a plain ``F.linear``
    re-lays the weight out on every call: 2-4x slower at 16 rows), else as it is."""
    if _onednn():
        return torch.ops.mkldnn._reorder_linear_weight(w, _PACK_ROWS)
    return w


def _dense_linear(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``a @ w.T`` for ``a: [rows, n_in]`` bf16 and a weight from :func:`_pack_bf16`."""
    if _onednn():
        return torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    return F.linear(a, w)


# ---------------------------------------------------------------------------------- int4

INT4_GROUP = 32  # weights per (scale, zero) group along the input dim: a GGUF Q4_0/Q4_1 block
_INT4_KERNEL_ROWS = 32  # up to this many rows the int4 kernel beats dequantize + dense
_INT4_GROUPS = (32, 64, 128, 256)  # the group sizes PyTorch's CPU int4 kernel takes


def int4_available() -> bool:
    """Whether this PyTorch build has the CPU int4-weight matmul and its packing is understood."""
    ops = torch.ops.aten
    if not (
        hasattr(ops, "_convert_weight_to_int4pack_for_cpu")
        and hasattr(ops, "_weight_int4pack_mm_for_cpu")
    ):
        return False
    try:
        _int4_layout()
    except RuntimeError:
        return False
    return True


def _unpack_int4(packed: torch.Tensor, n: int, k: int, layout: tuple[int, bool]) -> torch.Tensor:
    """The ``[n, k]`` uint8 values 0..15 packed by ``_convert_weight_to_int4pack_for_cpu``.

    The kernel packs rows in blocks of ``block`` (64 on AVX512, 32 on AVX2), each block
    ``[k, block/2]`` bytes, one after another. In a full block with ``split`` each byte holds
    row ``d`` (low nibble) and row ``d + block/2`` (high nibble) of one column; a partial last
    block (and every block without ``split``) holds rows ``2j`` and ``2j+1``.
    """
    block, split = layout
    flat = packed.reshape(-1)
    full = n // block * block
    parts = []
    if full:
        b = flat[: full * k // 2].view(full // block, k, block // 2)  # [blocks, k, block/2]
        if split:
            rows = torch.cat([b & 15, b >> 4], dim=2)  # [blocks, k, block]
        else:
            rows = torch.stack([b & 15, b >> 4], dim=3).reshape(full // block, k, block)
        parts.append(rows.transpose(1, 2).reshape(full, k))
    if full < n:
        b = flat[full * k // 2 :].view(k, (n - full) // 2)
        parts.append(torch.stack([b & 15, b >> 4], dim=2).reshape(k, n - full).t())
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@functools.cache
def _int4_layout() -> tuple[int, bool]:
    """How this build packs int4 rows (see :func:`_unpack_int4`), found by packing a probe."""
    n, k = 80, 64  # one 64-row block and a partial one; two 32-row blocks and a partial one
    q = torch.randint(0, 16, (n, k), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    for layout in [(64, True), (32, True), (16, True), (64, False), (32, False), (16, False)]:
        if packed.shape == (n, k // 2) and torch.equal(
            _unpack_int4(packed, n, k, layout), q.byte()
        ):
            return layout
    raise RuntimeError("unknown int4 packing in this PyTorch build")


class Int4Weight:
    """A ``[n_out, n_in]`` weight as 4-bit values with a scale and a zero per group of inputs.

    Each group of ``group_size`` consecutive inputs of a row holds ``q`` in 0..15 and the
    weight is ``(q - 8) * scale + zero`` (PyTorch's int4 kernel convention; ``scale`` and
    ``zero`` in bf16). Quantization is asymmetric min/max per group, as GGUF's Q4_1, so a
    Q4_1 tensor dequantized to float comes back to the same ``q`` (only ``scale`` and ``zero``
    round to bf16). Calling it computes ``x @ W.T`` for ``x: [..., n_in]`` in ``x``'s dtype:
    the kernel runs on bf16 activations (float32 ones are rounded to bf16 for it), so it needs
    no bf16 hardware. ``n_out`` must be a multiple of 16 and ``n_in`` of ``group_size``.
    """

    def __init__(self, weight: torch.Tensor, group_size: int = INT4_GROUP) -> None:
        if weight.device.type != "cpu":
            raise ValueError(f"int4 weights run on the CPU only, got a weight on {weight.device}")
        n, k = int(weight.shape[0]), int(weight.shape[1])
        if not int4_fits(n, k, group_size):
            raise ValueError(
                f"int4 weights need n_out a multiple of 16 and n_in of the group size "
                f"{group_size} (one of {_INT4_GROUPS}), got a [{n}, {k}] weight"
            )
        w = weight.detach().float().reshape(n, k // group_size, group_size)
        lo, hi = w.amin(dim=2), w.amax(dim=2)  # [n, groups]
        scale = ((hi - lo) / 15).bfloat16()
        zero = (lo + 8 * scale.float()).bfloat16()  # the value of q = 8
        s, z = scale.float()[..., None], zero.float()[..., None]
        q = torch.round((w - z) / torch.where(s > 0, s, 1.0)) + 8
        q = q.clamp(0, 15).to(torch.int32).reshape(n, k)
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), 1)
        # scales_zeros: [groups, n_out, 2] (scale, zero), the kernel's layout
        self.scales_zeros = torch.stack([scale, zero], dim=2).transpose(0, 1).contiguous()
        self.group_size = group_size
        self.shape = (n, k)

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The weight this layer computes with, as a dense tensor (float32 unless ``dtype``).

        In float32 it is exact; bf16 (the prefill path of a bf16 model) computes in bf16,
        five times faster, within 0.1 of a quantization step of the float32 values.
        """
        n, k = self.shape
        g = self.group_size
        q = _unpack_int4(self.packed, n, k, _int4_layout()).view(n, k // g, g)
        sz = self.scales_zeros.float().transpose(0, 1)  # [n, groups, 2]
        scale = sz[..., 0:1]
        offset = sz[..., 1:2] - 8 * scale  # w = (q - 8) * scale + zero = q * scale + offset
        if dtype == torch.bfloat16:
            w = q.to(dtype).mul_(scale.to(dtype)).add_(offset.to(dtype))
            return w.view(n, k)
        w = torch.addcmul(offset, q.float(), scale)
        return w.reshape(n, k).to(dtype or torch.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] <= _INT4_KERNEL_ROWS:
            a = flat.to(torch.bfloat16).contiguous()
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(
                a, self.packed, self.group_size, self.scales_zeros
            ).to(x.dtype)
        else:
            out = F.linear(flat, self.dequantize(x.dtype))
        return out.view(*x.shape[:-1], self.shape[0])

    def nbytes(self) -> int:
        return self.packed.numel() + self.scales_zeros.numel() * self.scales_zeros.element_size()


def int4_exact(weight: torch.Tensor, tolerance: float = 0.25) -> bool:
    """Whether ``weight: [n_out, n_in]`` already sits on a 4-bit grid of groups of 32: int4
    holds it within ``tolerance`` of a step (a GGUF Q4_0/Q4_1 tensor dequantized to float comes
    back within 0.1 of a step; 8-bit, 5-bit or float weights are off by up to half a step)."""
    if not int4_fits(*weight.shape):
        return False
    packed = Int4Weight(weight)
    step = packed.scales_zeros[..., 0].float().t().repeat_interleave(packed.group_size, dim=1)
    err = (packed.dequantize() - weight.detach().float()).abs()
    return bool((err <= tolerance * step + 1e-12).all())


def int4_fits(n_out: int, n_in: int, group_size: int = INT4_GROUP) -> bool:
    """Whether a ``[n_out, n_in]`` weight has a shape the int4 kernel takes."""
    return group_size in _INT4_GROUPS and n_out % 16 == 0 and n_in % group_size == 0


def linear(
    x: torch.Tensor,
    weight: torch.Tensor | Int8Weight | Int4Weight | PackedWeight,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.linear`` for a float weight; the int8 / int4 / packed matmul (plus ``bias``) for an
    :class:`Int8Weight` / :class:`Int4Weight` / :class:`PackedWeight`."""
    if isinstance(weight, (Int8Weight, Int4Weight, PackedWeight)):
        out = weight(x)
        return out if bias is None else out + bias
    return F.linear(x, weight, bias)
