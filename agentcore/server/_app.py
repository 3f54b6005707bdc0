"""The ASGI app: an OpenAI-compatible API with persistent sessions, on FastAPI.

Owns :func:`create_app`, which builds the :class:`~agentcore.server._service.ModelService`, the
error handlers, the middleware and the lifespan (the service closes when the app stops), and
includes one router per route group, each in its own module:

- ``_routes_health``: ``GET /health``;
- ``_routes_models``: ``GET /v1/models``, ``GET /v1/models/{id}``;
- ``_routes_chat``: ``POST /v1/chat/completions``;
- ``_routes_completions``: ``POST /v1/completions``;
- ``_routes_sessions``: ``/v1/sessions`` (list, create, inspect, delete);
- ``_routes_responses``: OpenAI's Responses API (``/v1/responses``: a response chain on a
  persistent session).

A body field ``"session": "<id>"`` appends the request to that persistent session; without it a
request is stateless. Each generating request runs in a worker thread and takes one path from
its job to its reply (:func:`~agentcore.server._lifecycle.respond`): text streams to the client
as it is generated (JSON, or server-sent events ending with ``data: [DONE]``), and a client that
disconnects (while queued, mid-generation or mid-stream) stops its generation at the next token
and frees its session. In front of the routes (see ``_middleware``): opt-in CORS, an optional
API key, JSON bodies read whatever content type they came with, and the body-size limit. Never
holds a route itself, and never touches tensors: the service drives the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from agentcore._version import __version__
from agentcore.backends._protocol import ModelBackend
from agentcore.server._config import ServerConfig
from agentcore.server._errors import install_error_handlers
from agentcore.server._limits import BodyLimitMiddleware
from agentcore.server._middleware import (
    AccessLogMiddleware,
    APIKeyMiddleware,
    JsonBodyMiddleware,
)
from agentcore.server._response_store import ResponseStore
from agentcore.server._routes_chat import chat_router
from agentcore.server._routes_completions import completions_router
from agentcore.server._routes_health import health_router
from agentcore.server._routes_models import models_router
from agentcore.server._routes_responses import responses_router
from agentcore.server._routes_sessions import sessions_router
from agentcore.server._service import ModelService

__all__ = ["create_app"]


def create_app(backend: ModelBackend, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI app serving ``backend`` (a LocalBackend in production; any ModelBackend works
    for chat, e.g. the scripted fake in tests)."""
    cfg = config or ServerConfig()
    service = ModelService(backend, cfg)
    # the Responses records live next to the sessions (in memory when the backend has no folder)
    responses = ResponseStore(getattr(service.backend, "sessions_dir", None))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.close)

    app = FastAPI(
        title="agentcore",
        version=__version__,
        description="OpenAI-compatible model server with persistent long-memory sessions.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.responses = responses
    install_error_handlers(app)
    # the last added runs first: the access log, CORS (answers preflights, marks every reply,
    # 401s included), then the API key, then bodies read as JSON, then the size limit
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.max_body_bytes)
    app.add_middleware(JsonBodyMiddleware)
    if cfg.api_key is not None:
        app.add_middleware(APIKeyMiddleware, api_key=cfg.api_key)
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(AccessLogMiddleware)  # outermost: every reply is logged, 401s included

    app.include_router(health_router(service))
    app.include_router(models_router(service))
    app.include_router(chat_router(service))
    app.include_router(completions_router(service))
    app.include_router(sessions_router(service))
    app.include_router(responses_router(service, responses))
    return app
