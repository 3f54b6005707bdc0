"""The long-memory model core: loader, streaming cache, forward pass, sessions, sampling, state.

Knows token ids, tensors and text; never knows about agents, tools or UIs.

Names load on first use: the model core needs torch, and ``agentcore.core.params`` (sampling
parameters) and ``agentcore.core.models`` (the model registry) are imported by torch-free code
(the HTTP backend, an agent over a remote model), which runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentcore.core.params import SamplingParams

if TYPE_CHECKING:
    from agentcore.core.cache import StreamingCache, StreamingConfig
    from agentcore.core.engine import Engine, EngineInfo
    from agentcore.core.loader import LoadedModel, ModelNotFoundError, load_model
    from agentcore.core.sampling import Sampler
    from agentcore.core.session import GenerationResult, Session, SessionConfig, TokenEvent
    from agentcore.core.state import SessionStateError

__all__ = [
    "Engine",
    "EngineInfo",
    "GenerationResult",
    "LoadedModel",
    "ModelNotFoundError",
    "Sampler",
    "SamplingParams",
    "Session",
    "SessionConfig",
    "SessionStateError",
    "StreamingCache",
    "StreamingConfig",
    "TokenEvent",
    "load_model",
]

_HOMES = {
    "Engine": "engine",
    "EngineInfo": "engine",
    "GenerationResult": "session",
    "LoadedModel": "loader",
    "ModelNotFoundError": "loader",
    "Sampler": "sampling",
    "Session": "session",
    "SessionConfig": "session",
    "SessionStateError": "state",
    "StreamingCache": "cache",
    "StreamingConfig": "cache",
    "TokenEvent": "session",
    "load_model": "loader",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'agentcore.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"agentcore.core.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
