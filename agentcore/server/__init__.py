"""The model server: an OpenAI-compatible HTTP API with persistent long-memory sessions.

``create_app(backend, config)`` builds the FastAPI app (chat and text completions, streaming,
tools, JSON Schema output, scoring, ``/v1/sessions``); ``agentcore serve`` (:func:`main`) loads
the model (CUDA + bf16 when present) and runs it under uvicorn. Never holds agent logic: the
client side is :mod:`agentcore.client` and the http backend.
"""

from agentcore.server._app import create_app
from agentcore.server._completions import TextCompletion, TokenLogprob, complete_text
from agentcore.server._config import ServerConfig, default_sessions_dir
from agentcore.server._errors import APIError
from agentcore.server._main import add_serve_arguments, main, run_serve
from agentcore.server._service import ModelService

__all__ = [
    "APIError",
    "ModelService",
    "ServerConfig",
    "TextCompletion",
    "TokenLogprob",
    "add_serve_arguments",
    "complete_text",
    "create_app",
    "default_sessions_dir",
    "main",
    "run_serve",
]
