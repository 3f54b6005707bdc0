"""Int8 weights for CPU decoding: the model core's projections stored as per-row int8.

Owns the int8 form of one linear weight and the ``linear`` call the model core uses for every
projection. On a CPU a decode step is bound by memory bandwidth (each token reads every weight
once), so halving the bytes of bf16 weights again is what makes decoding fast; see
``docs/benchmarks/dtype.md`` for the speed and the perplexity cost. Only the weights are
quantized (symmetric, one scale per output row); activations stay bf16, so the result stays
close to the bf16 model. Small batches (decode steps) use PyTorch's int8-weight matmul kernel;
large ones (chunked prefill) dequantize the weight for one dense matmul, which is faster there.
A float weight passes through ``F.linear`` untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["Int8Weight", "int8_available", "linear"]

_KERNEL_ROWS = 8  # up to this many rows the int8 kernel beats dequantize + dense (measured)


def int8_available() -> bool:
    """Whether this PyTorch build has the CPU int8-weight matmul kernel."""
    return hasattr(torch, "_weight_int8pack_mm")


class Int8Weight:
    """A ``[n_out, n_in]`` weight as int8 values and one scale per output row.

    Calling it computes ``x @ W.T`` for ``x: [..., n_in]`` in the activation dtype.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        if weight.device.type != "cpu":
            raise ValueError(f"int8 weights run on the CPU only, got a weight on {weight.device}")
        w = weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        self.q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        self.scale = scale.to(weight.dtype).contiguous()
        self.shape = (int(w.shape[0]), int(w.shape[1]))

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The weight this layer computes with, as a dense tensor."""
        dt = dtype or self.scale.dtype
        return self.q.to(dt) * self.scale.to(dt)[:, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] <= _KERNEL_ROWS and x.dtype == self.scale.dtype:
            out = torch._weight_int8pack_mm(flat.contiguous(), self.q, self.scale)
        else:
            out = F.linear(flat, self.dequantize(x.dtype))
        return out.view(*x.shape[:-1], self.shape[0])

    def nbytes(self) -> int:
        return self.q.numel() + self.scale.numel() * self.scale.element_size()


def linear(
    x: torch.Tensor, weight: torch.Tensor | Int8Weight, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.linear`` for a float weight; the int8 matmul (plus ``bias``) for an :class:`Int8Weight`."""
    if isinstance(weight, Int8Weight):
        out = weight(x)
        return out if bias is None else out + bias
    return F.linear(x, weight, bias)
