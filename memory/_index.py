"""HNSW index settings for the long-term memory collections.

Owns ``IndexConfig``: the graph-build and search breadth chromadb's HNSW index gets when
``LongTermMemory`` creates a collection (``ef_search`` is also applied to existing ones).
chromadb's own defaults (16 neighbours, ef 100) lose answers on conversational memory, which
repeats itself ("thanks!", "ok"): on bench/memory.py's recall suite they missed up to a
quarter of answers that exact search ranks in the top 5, varying from build to build; the
shipped defaults missed none in repeated builds, at about twice the insert cost. Never
touches a collection itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from chromadb.api.collection_configuration import CreateHNSWConfiguration

__all__ = ["IndexConfig"]


@dataclass(frozen=True)
class IndexConfig:
    """HNSW parameters: ``max_neighbors`` (M) and ``ef_construction`` are fixed when a
    collection is created; ``ef_search`` can change at any open."""

    ef_construction: int = 400
    max_neighbors: int = 32
    ef_search: int = 400

    def __post_init__(self) -> None:
        for name in ("ef_construction", "max_neighbors", "ef_search"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"IndexConfig.{name}={value!r}: expected an integer >= 2")

    @classmethod
    def chroma_default(cls) -> IndexConfig:
        """chromadb's own settings: faster inserts, noticeably lower recall."""
        return cls(ef_construction=100, max_neighbors=16, ef_search=100)

    def hnsw(self) -> CreateHNSWConfiguration:
        """The ``hnsw`` section of a chromadb collection configuration (cosine space)."""
        return CreateHNSWConfiguration(
            space="cosine",
            ef_construction=self.ef_construction,
            max_neighbors=self.max_neighbors,
            ef_search=self.ef_search,
        )
