"""The chromadb embedding function on the offline all-MiniLM-L6-v2 model.

Owns ``MiniLMEmbeddingFunction``: chromadb's current embedding-function protocol
(``__call__``, ``name``, ``get_config``, ``build_from_config``, cosine space) over
``embed_texts``, registered with chromadb so a collection reopened by name rebuilds this
function and never falls back to chromadb's default ONNX model (which would download).
Never downloads anything, never touches a collection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from agentcore.memory._model import EMBEDDING_DIM, embed_texts

__all__ = ["MiniLMEmbeddingFunction"]


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """384-d unit-norm embeddings from the bundled all-MiniLM-L6-v2; the model loads on first use."""

    dim = EMBEDDING_DIM

    def __init__(self, device: str | None = None, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
        self.device = device
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        vectors = embed_texts(list(input), device=self.device, batch_size=self.batch_size)
        return [np.asarray(row, dtype=np.float32) for row in vectors]

    @staticmethod
    def name() -> str:
        return "agentcore-minilm-l6-v2"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"device": self.device, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        device = config.get("device")
        batch_size = config.get("batch_size", 64)
        if device is not None and not isinstance(device, str):
            raise ValueError(f"device={device!r}: expected a torch device string or None")
        if not isinstance(batch_size, int):
            raise ValueError(f"batch_size={batch_size!r}: expected an integer")
        return MiniLMEmbeddingFunction(device=device, batch_size=batch_size)
