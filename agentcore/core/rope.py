"""Rotary position embeddings as complex rotations, with angles computed in float64.

Owns the frequency table of a model and the rotation of query/key vectors at arbitrary
integer positions. Never decides *which* position a token gets: that is the cache's job
(:mod:`agentcore.core.cache`).

Layout: the model core permutes the rows of ``q_proj``/``k_proj`` at load time so that each
rotary pair ``(i, i + D/2)`` of the Hugging Face layout sits side by side ``(2i, 2i + 1)``.
Dot products between queries and keys are unchanged by a permutation applied to both, and
the rotation becomes one complex multiply. Angles are computed in float64 so positions in
the millions keep full precision.
"""

from __future__ import annotations

import torch

__all__ = ["Rotary", "interleave_permutation"]


def interleave_permutation(head_dim: int) -> torch.Tensor:
    """Index that maps HF rotate-half layout ``[x0..x{h-1}, y0..y{h-1}]`` to ``[x0,y0,x1,y1,..]``."""
    half = head_dim // 2
    idx = torch.empty(head_dim, dtype=torch.long)
    idx[0::2] = torch.arange(half)
    idx[1::2] = torch.arange(half) + half
    return idx


class Rotary:
    """Rotary tables for one model: ``freqs(positions)`` and ``rotate(x, freqs)``."""

    def __init__(self, inv_freq: torch.Tensor, attention_scaling: float = 1.0) -> None:
        # inv_freq: [D/2]
        self.inv_freq = inv_freq.detach().to(torch.float64).cpu()
        self.scaling = float(attention_scaling)

    def freqs(self, positions: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Complex unit rotations for ``positions`` ([T] int64) -> [T, D/2] complex64."""
        angles = positions.detach().to("cpu", torch.float64)[:, None] * self.inv_freq[None, :]
        rot = torch.polar(torch.full_like(angles, self.scaling), angles)
        return rot.to(torch.complex64).to(device)

    @staticmethod
    def rotate(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` [..., T, D] (interleaved layout) by ``freqs`` [T, D/2] (broadcast on the left)."""
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * freqs).flatten(-2).to(x.dtype)
