"""Retrieval scoring: relevance, recency and importance folded into one number.

Owns ``RetrievalWeights`` (the weights, the recency half-life, min-max normalisation and the
candidate pool size, with named presets) and ``score_candidates``, a pure numpy function over
the candidates a vector search returned. Never queries a store, never embeds text.

The Generative Agents recipe (Park et al., 2023): score = a*recency + b*importance +
c*relevance, each term min-max normalised over the candidates; the paper sets all weights
to 1, the released code uses relevance 3, importance 2, recency 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ComponentScores", "RetrievalWeights", "score_candidates"]

FloatArray = npt.NDArray[np.float64]


# Generative Agents decays recency by 0.995 per game hour: a half-life of ln 0.5 / ln 0.995.
GA_HALF_LIFE_HOURS = math.log(0.5) / math.log(0.995)  # ~138.3


@dataclass(frozen=True)
class RetrievalWeights:
    """How search ranks candidates; ``candidates`` is the vector-search pool per collection.

    The defaults are the shipped mix (``default()``): Generative Agents' released-code
    weights (relevance 3, importance 2, recency 0.5, their 0.995-per-hour decay) over a
    20-candidate pool. On bench/memory.py's long-conversation suite they beat relevance-only
    retrieval when importance is rated sensibly; see docs/benchmarks/memory.md for how much,
    and for what a useless importance rater costs.
    """

    relevance: float = 3.0
    recency: float = 0.5
    importance: float = 2.0
    half_life_hours: float = GA_HALF_LIFE_HOURS
    normalize: bool = True
    candidates: int = 20

    def __post_init__(self) -> None:
        for name in ("relevance", "recency", "importance"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"RetrievalWeights.{name}={value!r}: expected a finite weight >= 0"
                )
        if self.relevance + self.recency + self.importance <= 0:
            raise ValueError("RetrievalWeights: expected at least one positive weight, got all 0")
        if not math.isfinite(self.half_life_hours) or self.half_life_hours <= 0:
            raise ValueError(
                f"RetrievalWeights.half_life_hours={self.half_life_hours!r}: "
                "expected a positive number of hours"
            )
        if self.candidates < 1:
            raise ValueError(
                f"RetrievalWeights.candidates={self.candidates!r}: expected a positive integer"
            )

    @classmethod
    def relevance_only(cls) -> RetrievalWeights:
        """Plain vector search: rank by cosine similarity alone."""
        return cls(relevance=1.0, recency=0.0, importance=0.0, normalize=False)

    @classmethod
    def generative_agents_paper(cls) -> RetrievalWeights:
        """Park et al. 2023 as published: 1/1/1 after min-max normalisation."""
        return cls(relevance=1.0, recency=1.0, importance=1.0, candidates=50)

    @classmethod
    def generative_agents_code(cls) -> RetrievalWeights:
        """Park et al.'s released code: relevance 3, importance 2, recency 0.5."""
        return cls(relevance=3.0, recency=0.5, importance=2.0, candidates=50)

    @classmethod
    def default(cls) -> RetrievalWeights:
        """The shipped mix: Generative Agents' code weights over 20 candidates per collection
        (docs/benchmarks/memory.md)."""
        return cls()


@dataclass(frozen=True)
class ComponentScores:
    """Per-candidate terms (after normalisation if enabled) and the weighted total."""

    total: FloatArray  # [N]
    relevance: FloatArray  # [N]
    recency: FloatArray  # [N]
    importance: FloatArray  # [N]


def _min_max(values: FloatArray) -> FloatArray:
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.full_like(values, 0.5)
    return (values - low) / (high - low)


def score_candidates(
    similarity: FloatArray,
    age_hours: FloatArray,
    importance: FloatArray,
    weights: RetrievalWeights,
) -> ComponentScores:
    """Score N candidates.

    similarity: [N] cosine similarity to the query; age_hours: [N] hours since each memory
    (negative ages count as 0); importance: [N] in [0, 1].
    """
    relevance = np.asarray(similarity, dtype=np.float64)
    recency = np.power(
        0.5, np.maximum(np.asarray(age_hours, dtype=np.float64), 0.0) / weights.half_life_hours
    )
    imp = np.asarray(importance, dtype=np.float64)
    if weights.normalize:
        relevance, recency, imp = _min_max(relevance), _min_max(recency), _min_max(imp)
    total = weights.relevance * relevance + weights.recency * recency + weights.importance * imp
    return ComponentScores(total=total, relevance=relevance, recency=recency, importance=imp)
