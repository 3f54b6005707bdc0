"""Retrieval scoring: weights, normalisation, recency decay and presets."""

from __future__ import annotations

import numpy as np
import pytest

from agentcore.memory import RetrievalWeights
from agentcore.memory._scoring import score_candidates


def _score(sim: list[float], age: list[float], imp: list[float], w: RetrievalWeights) -> np.ndarray:
    return score_candidates(np.array(sim), np.array(age), np.array(imp), w).total


def test_relevance_only_ranks_by_similarity() -> None:
    total = _score(
        [0.2, 0.9, 0.5], [0, 1000, 5], [1.0, 0.0, 0.5], RetrievalWeights.relevance_only()
    )
    assert list(np.argsort(-total)) == [1, 2, 0]
    assert np.allclose(total, [0.2, 0.9, 0.5])


def test_recency_halves_every_half_life() -> None:
    w = RetrievalWeights(relevance=0, recency=1, importance=0, half_life_hours=10, normalize=False)
    terms = score_candidates(np.zeros(4), np.array([0.0, 10.0, 20.0, -5.0]), np.zeros(4), w)
    assert np.allclose(terms.recency, [1.0, 0.5, 0.25, 1.0])


def test_min_max_normalisation_and_constant_columns() -> None:
    w = RetrievalWeights.generative_agents_paper()
    terms = score_candidates(
        np.array([0.1, 0.3, 0.2]), np.array([1.0, 1.0, 1.0]), np.array([0.2, 0.8, 0.5]), w
    )
    assert np.allclose(terms.relevance, [0.0, 1.0, 0.5])
    assert np.allclose(terms.recency, [0.5, 0.5, 0.5])  # all equal: the midpoint
    assert np.allclose(terms.importance, [0.0, 1.0, 0.5])
    assert np.allclose(terms.total, terms.relevance + terms.recency + terms.importance)


def test_importance_can_outrank_relevance() -> None:
    sim, age, imp = [0.60, 0.58, 0.10], [1.0, 1.0, 1.0], [0.1, 0.9, 0.5]
    assert np.argmax(_score(sim, age, imp, RetrievalWeights.relevance_only())) == 0
    assert np.argmax(_score(sim, age, imp, RetrievalWeights.generative_agents_code())) == 1


def test_presets_follow_generative_agents() -> None:
    code = RetrievalWeights.generative_agents_code()
    assert (code.relevance, code.importance, code.recency) == (3.0, 2.0, 0.5)
    paper = RetrievalWeights.generative_agents_paper()
    assert (paper.relevance, paper.importance, paper.recency, paper.normalize) == (1, 1, 1, True)
    assert RetrievalWeights.default().relevance > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relevance": -1.0}, r"RetrievalWeights.relevance=-1.0: expected a finite weight >= 0"),
        ({"recency": float("inf")}, r"RetrievalWeights.recency=inf"),
        ({"relevance": 0.0, "recency": 0.0, "importance": 0.0}, "at least one positive weight"),
        ({"half_life_hours": 0.0}, r"half_life_hours=0.0: expected a positive number"),
        ({"candidates": 0}, r"candidates=0: expected a positive integer"),
    ],
)
def test_bad_weights_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrievalWeights(**kwargs)  # type: ignore[arg-type]
