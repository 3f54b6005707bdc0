"""``/v1/sessions``: list, create, inspect and delete persistent sessions.

Owns the session routes and the check of a session name in a path. Never touches session files
or locks itself: :class:`~agentcore.server._service.ModelService` does, under the session's lock.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agentcore.paths import validate_name
from agentcore.server._errors import ErrorReply, json_response
from agentcore.server._lifecycle import failed
from agentcore.server._schemas import SessionCreate
from agentcore.server._service import ModelService

__all__ = ["sessions_router"]


def sessions_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/sessions")
    async def list_sessions() -> Response:
        return json_response({"object": "list", "data": await service.list_sessions()})

    @router.post("/v1/sessions")
    async def create_session(body: SessionCreate) -> Response:
        try:
            return json_response(await service.create_session(body.id), 201)
        except Exception as exc:
            return failed(service, exc)

    @router.get("/v1/sessions/{sid}")
    async def get_session(sid: str) -> Response:
        try:
            _valid_session(sid)
            return json_response(await service.session_info(sid))
        except Exception as exc:
            return failed(service, exc)

    @router.delete("/v1/sessions/{sid}")
    async def delete_session(sid: str) -> Response:
        try:
            _valid_session(sid)
            return json_response(await service.delete_session(sid))
        except Exception as exc:
            return failed(service, exc)

    return router


def _valid_session(sid: str) -> None:
    try:
        validate_name(sid)
    except ValueError as exc:
        raise ErrorReply(400, str(exc), param="session") from None
