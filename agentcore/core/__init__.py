"""The long-memory model core: loader, streaming cache, forward pass, sessions, sampling, state.

Knows token ids, tensors and text; never knows about agents, tools or UIs.
"""

from agentcore.core.cache import StreamingCache, StreamingConfig
from agentcore.core.engine import Engine, EngineInfo
from agentcore.core.loader import LoadedModel, ModelNotFoundError, load_model
from agentcore.core.sampling import Sampler, SamplingParams
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
