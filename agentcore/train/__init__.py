"""Training of the long-memory extensions (``agentcore train ...``).

Public surface: :class:`MemoryTrainConfig` and its :data:`PRESETS`, :func:`train_memory`,
the differentiable :func:`segment_forward`, and the document generator
:class:`DocumentMaker`. The command line lives in ``_cli``.
"""

from agentcore.train._data import Document, DocumentMaker, passkey_prompt
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
