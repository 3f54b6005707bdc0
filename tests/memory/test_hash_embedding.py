"""The hash embedding function: deterministic, unit-norm, word-overlap aware, registered."""

from __future__ import annotations

import numpy as np
import pytest
from chromadb.utils.embedding_functions import (
    config_to_embedding_function,
    known_embedding_functions,
)

from agentcore.memory import HashEmbeddingFunction


def test_vectors_are_deterministic_unit_float32() -> None:
    ef = HashEmbeddingFunction(dim=64)
    first = ef(["the cat sat on the mat", "an unrelated sentence"])
    second = HashEmbeddingFunction(dim=64)(["the cat sat on the mat", "an unrelated sentence"])
    for a, b in zip(first, second, strict=True):
        assert a.dtype == np.float32
        assert a.shape == (64,)
        assert np.allclose(np.linalg.norm(a), 1.0, atol=1e-6)
        assert np.array_equal(a, b)


def test_shared_words_mean_closer_vectors() -> None:
    ef = HashEmbeddingFunction()
    query, near, far = ef(
        [
            "where does alice keep her bike",
            "alice keeps her bike in the shed",
            "stock prices fell sharply today",
        ]
    )
    assert float(query @ near) > float(query @ far) + 0.2


def test_text_without_words_still_embeds() -> None:
    (vector,) = HashEmbeddingFunction()(["!!! ???"])
    assert np.isclose(np.linalg.norm(vector), 1.0)


def test_registered_and_rebuilt_from_config() -> None:
    ef = HashEmbeddingFunction(dim=32)
    assert known_embedding_functions[HashEmbeddingFunction.name()] is HashEmbeddingFunction
    rebuilt = config_to_embedding_function({"name": ef.name(), "config": ef.get_config()})
    assert isinstance(rebuilt, HashEmbeddingFunction)
    assert rebuilt.dim == 32
    assert np.array_equal(rebuilt(["x y"])[0], ef(["x y"])[0])
    assert ef.default_space() == "cosine"
    assert not ef.is_legacy()


def test_bad_dimension_rejected() -> None:
    with pytest.raises(ValueError, match=r"dim=2: expected an integer of at least 8"):
        HashEmbeddingFunction(dim=2)
    with pytest.raises(ValueError, match="dim='x'"):
        HashEmbeddingFunction.build_from_config({"dim": "x"})
