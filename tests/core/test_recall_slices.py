"""Key scoring in fixed-size slices equals scoring every key at once."""

from __future__ import annotations

import pytest
import torch

from agentcore.core import recall
from agentcore.core.recall import EvictedStore


def _whole(keys: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per key, the largest log attention probability any head and query gives it."""
    scores = torch.matmul(q, keys.transpose(1, 2)).float()
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    return (scores - lse).amax(dim=(0, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("slice_keys", [16, 7 * 16, 100, 64 * 16, 10_000])
def test_sliced_scoring_equals_one_matrix(
    monkeypatch: pytest.MonkeyPatch, slice_keys: int, dtype: torch.dtype
) -> None:
    """In either dtype scoring multiplies in (bfloat16 where the CPU has bf16 dot products,
    ``recall._score_dtype``), whatever this machine's: the slices give the one matrix's scores."""
    torch.manual_seed(0)
    block, n = 16, 45 * 16
    keys = torch.randn(3, n, 8)
    q = torch.randn(3, 12, 8) * 2
    monkeypatch.setattr(recall, "_SLICE_KEYS", slice_keys)
    monkeypatch.setattr(recall, "_score_dtype", lambda: dtype)
    expected = _whole(keys.to(dtype), q.to(dtype))
    per_key = EvictedStore._token_weight(keys, q)
    assert per_key.shape == (n,)
    torch.testing.assert_close(per_key, expected, atol=1e-5, rtol=0)
    if dtype == torch.float32:  # bfloat16 logits tie often: the order among ties is arbitrary
        assert per_key.argsort().tolist() == expected.argsort().tolist()
    # a block's weight is its best key's, in one pass over the keys
    per_block = EvictedStore._block_weight(keys, q, block)
    torch.testing.assert_close(per_block, expected.view(-1, block).amax(-1), atol=1e-5, rtol=0)


def test_no_keys_score_nothing() -> None:
    empty, q = torch.zeros(3, 0, 8), torch.randn(3, 4, 8)
    assert EvictedStore._token_weight(empty, q).numel() == 0
    assert EvictedStore._block_weight(empty, q, 16).numel() == 0
