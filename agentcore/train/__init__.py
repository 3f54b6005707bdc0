"""Training of the long-memory extensions (``agentcore train ...``).

Public surface: :class:`MemoryTrainConfig` and its :data:`PRESETS`, :func:`train_memory`,
the differentiable :func:`segment_forward`, and the document generator
:class:`DocumentMaker`. The command line lives in ``_cli``.

The names of ``_memory`` load on first use: they need torch, and ``agentcore --help`` builds
the ``train`` options (``_cli``, through this package) without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentcore.train._data import Document, DocumentMaker, passkey_prompt

if TYPE_CHECKING:
    from agentcore.train._memory import (
        PRESETS,
        LowRankQKV,
        MemoryTrainConfig,
        default_adapter_path,
        evaluate,
        segment_forward,
        train_memory,
    )

__all__ = [
    "PRESETS",
    "Document",
    "DocumentMaker",
    "LowRankQKV",
    "MemoryTrainConfig",
    "default_adapter_path",
    "evaluate",
    "passkey_prompt",
    "segment_forward",
    "train_memory",
]

_MEMORY = frozenset(
    {
        "PRESETS",
        "LowRankQKV",
        "MemoryTrainConfig",
        "default_adapter_path",
        "evaluate",
        "segment_forward",
        "train_memory",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MEMORY:
        raise AttributeError(f"module 'agentcore.train' has no attribute {name!r}")
    value = getattr(importlib.import_module("agentcore.train._memory"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
