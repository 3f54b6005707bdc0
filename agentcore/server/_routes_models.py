"""``GET /v1/models`` and ``GET /v1/models/{id}``: the one model the server serves, as OpenAI lists it.

Owns the model routes only. Never loads or describes the model itself: the card comes from
:meth:`~agentcore.server._service.ModelService.model_card`.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agentcore.server._errors import json_response
from agentcore.server._service import ModelService

__all__ = ["models_router"]


def models_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    async def models() -> Response:
        return json_response({"object": "list", "data": [service.model_card()]})

    @router.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> Response:
        service.check_model(model_id)
        return json_response(service.model_card())

    return router
