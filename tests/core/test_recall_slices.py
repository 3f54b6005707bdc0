"""Key scoring in fixed-size slices equals scoring every key at once."""

from __future__ import annotations

import pytest
import torch

from agentcore.core import recall
from agentcore.core.recall import EvictedStore


def _whole(keys: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    scores = torch.matmul(q, keys.transpose(1, 2)).float()
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    return (scores - lse).amax(dim=(0, 1))


@pytest.mark.parametrize("slice_keys", [16, 7 * 16, 64 * 16, 10_000])
def test_sliced_scoring_equals_one_matrix(monkeypatch: pytest.MonkeyPatch, slice_keys: int) -> None:
    torch.manual_seed(0)
    n = 45 * 16
    keys = torch.randn(3, n, 8)
    q = torch.randn(3, 12, 8) * 2
    monkeypatch.setattr(recall, "_SLICE_KEYS", slice_keys)
    got = EvictedStore._token_weight(keys, q)
    assert got.shape == (n,)
    torch.testing.assert_close(got, _whole(keys, q), atol=1e-5, rtol=0)
    assert got.argsort().tolist() == _whole(keys, q).argsort().tolist()


def test_no_keys_score_nothing() -> None:
    assert EvictedStore._token_weight(torch.zeros(3, 0, 8), torch.randn(3, 4, 8)).numel() == 0
