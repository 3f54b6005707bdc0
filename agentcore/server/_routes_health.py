"""``GET /health``: whether the server is up, the model it serves and its request counters.

Owns the health route only. Never starts a job and never reads a session: it reports what
:class:`~agentcore.server._service.ModelService` already counts.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agentcore.server._errors import json_response
from agentcore.server._service import ModelService

__all__ = ["health_router"]


def health_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> Response:
        return json_response(
            {
                "status": "ok",
                "model": service.model_name,
                "active_requests": service.runner.active,
                **service.counters,
            }
        )

    return router
