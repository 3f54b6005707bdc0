"""A deterministic hash embedding function: the fake embedder for fast unit tests.

Owns ``HashEmbeddingFunction``: words and word bigrams are hashed (blake2b) into signed
buckets of a fixed-size vector, then L2-normalised, so texts sharing words land close under
cosine distance. Same text, same vector, in every process. It implements chromadb's
embedding-function protocol and is registered like the real one. Never loads a model; it
knows nothing about meaning beyond shared words.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

__all__ = ["HashEmbeddingFunction"]

_WORD = re.compile(r"[a-z0-9]+")


@register_embedding_function
class HashEmbeddingFunction(EmbeddingFunction[Documents]):
    """Feature-hashed bag of words and bigrams; unit-norm float32 vectors of ``dim`` entries."""

    def __init__(self, dim: int = 384) -> None:
        if not isinstance(dim, int) or dim < 8:
            raise ValueError(f"dim={dim!r}: expected an integer of at least 8")
        self.dim = dim

    def embed(self, text: str) -> npt.NDArray[np.float32]:
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        vector = np.zeros(self.dim, dtype=np.float32)
        for feature in features or [text]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            weight = 1.0 if " " not in feature else 0.5
            vector[value % self.dim] += weight if (value >> 63) & 1 else -weight
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # every feature cancelled out: fall back to one fixed bucket
            vector[0] = 1.0
            return vector
        return vector / norm

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed(text) for text in input]

    @staticmethod
    def name() -> str:
        return "agentcore-hash"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashEmbeddingFunction:
        dim = config.get("dim", 384)
        if not isinstance(dim, int):
            raise ValueError(f"dim={dim!r}: expected an integer")
        return HashEmbeddingFunction(dim=dim)
