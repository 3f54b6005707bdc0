"""Block scoring in fixed-size slices equals scoring every key at once."""

from __future__ import annotations

import pytest
import torch

from agentcore.core import recall
from agentcore.core.recall import EvictedStore


def _whole(keys: torch.Tensor, q: torch.Tensor, block: int) -> torch.Tensor:
    scores = torch.matmul(q, keys.transpose(1, 2)).float()
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    h, nq, n = scores.shape
    return (scores.view(h, nq, n // block, block).amax(dim=-1) - lse).amax(dim=(0, 1))


@pytest.mark.parametrize("slice_blocks", [1, 7, 64, 1000])
def test_sliced_scoring_equals_one_matrix(
    monkeypatch: pytest.MonkeyPatch, slice_blocks: int
) -> None:
    torch.manual_seed(0)
    block, n_blocks = 16, 45
    keys = torch.randn(3, n_blocks * block, 8)
    q = torch.randn(3, 12, 8) * 2
    monkeypatch.setattr(recall, "_SLICE_BLOCKS", slice_blocks)
    got = EvictedStore._block_weight(keys, q, block)
    assert got.shape == (n_blocks,)
    torch.testing.assert_close(got, _whole(keys, q, block), atol=1e-5, rtol=0)
    assert got.argsort().tolist() == _whole(keys, q, block).argsort().tolist()


def test_no_keys_score_no_blocks() -> None:
    assert EvictedStore._block_weight(torch.zeros(3, 0, 8), torch.randn(3, 4, 8), 16).numel() == 0
