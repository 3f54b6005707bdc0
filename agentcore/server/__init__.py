"""The model server: an OpenAI-compatible HTTP API with persistent long-memory sessions.

``create_app(backend, config)`` builds the FastAPI app (chat and text completions, streaming,
tools, JSON Schema output, scoring, ``/v1/sessions``, and the Responses API with chains on
sessions); ``agentcore serve`` (:func:`run_serve`) loads the model (CUDA + bf16 when present)
and runs it under uvicorn. Never holds agent logic: the client side is :mod:`agentcore.client`
and the http backend.

Names load on first use, so ``agentcore --help`` does not import torch or FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcore.server._app import create_app
    from agentcore.server._completions import TextCompletion, TokenLogprob, complete_text
    from agentcore.server._config import ServerConfig, default_sessions_dir
    from agentcore.server._errors import ErrorReply
    from agentcore.server._main import add_serve_arguments, bind_socket, main, run_serve
    from agentcore.server._service import ModelService

__all__ = [
    "ErrorReply",
    "ModelService",
    "ServerConfig",
    "TextCompletion",
    "TokenLogprob",
    "add_serve_arguments",
    "bind_socket",
    "complete_text",
    "create_app",
    "default_sessions_dir",
    "main",
    "run_serve",
]

_HOMES = {
    "ErrorReply": "_errors",
    "ModelService": "_service",
    "ServerConfig": "_config",
    "TextCompletion": "_completions",
    "TokenLogprob": "_completions",
    "add_serve_arguments": "_main",
    "bind_socket": "_main",
    "complete_text": "_completions",
    "create_app": "_app",
    "default_sessions_dir": "_config",
    "main": "_main",
    "run_serve": "_main",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'agentcore.server' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"agentcore.server.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
