"""``POST /v1/responses`` and ``GET``/``DELETE /v1/responses/{id}``: OpenAI's Responses API.

Owns the three routes: finding the response a request continues (404 when the store has none),
naming the chain's session, and the event stream's loop. The translation of a request into the
chat job and of its result into a Response object or its events is ``_responses_api``'s; the
job's path from the session queue to the reply is :func:`~agentcore.server._lifecycle.respond`'s.
Never reads or writes the records' files: :class:`~agentcore.server._response_store.ResponseStore`
does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from agentcore.server._errors import ErrorReply, json_response
from agentcore.server._jobs import Job, JobEvent
from agentcore.server._lifecycle import SSE_HEADERS, error_payload, failed, respond
from agentcore.server._response_store import ResponseStore, StoredResponse
from agentcore.server._responses import ChatStreamShaper
from agentcore.server._responses_api import Answer, ResponseEvents, ResponseShape, responses_job
from agentcore.server._responses_schemas import FunctionChoice, ResponsesBody
from agentcore.server._service import ModelService

__all__ = ["responses_router"]


def responses_router(service: ModelService, store: ResponseStore) -> APIRouter:
    """The Responses routes; ``store`` keeps the records (next to the backend's sessions, or in
    memory when it has no folder)."""
    router = APIRouter()

    def plan(body: ResponsesBody) -> tuple[ResponseShape, StoredResponse | None]:
        previous = None
        if body.previous_response_id is not None:
            previous = store.get(body.previous_response_id)
            if previous is None:
                raise ErrorReply(
                    404,
                    f"previous_response_id {body.previous_response_id!r}: no stored response has "
                    "this id (it was made with store=false, deleted, or never made here)",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
        if previous is not None:
            session: str | None = previous.session
        else:
            session = None
        shape = ResponseShape(body, service.model_name, session)
        if previous is None and body.store:
            shape.session = shape.id  # a new chain: its session is named by its first response
        return shape, previous

    @router.post("/v1/responses")
    async def create_response(body: ResponsesBody, request: Request) -> Response:
        service.check_model(body.model)
        try:
            shape, previous = plan(body)
            fn = responses_job(service, store, body, shape, previous)
        except Exception as exc:
            return failed(service, exc)

        def streamed(job: Job[Answer], first: JobEvent) -> Response:
            active = bool(body.function_tools) and body.tool_choice != "none"
            forced = active and (
                body.tool_choice == "required" or isinstance(body.tool_choice, FunctionChoice)
            )
            events = ResponseEvents(shape, ChatStreamShaper(active, forced))
            return StreamingResponse(
                _response_events(service, job, first, events),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )

        return await respond(
            service,
            shape.session,
            fn,
            request,
            stream=body.stream,
            whole=lambda answer: json_response(answer.response),
            streamed=streamed,
        )

    @router.get("/v1/responses/{rid}")
    async def get_response(rid: str) -> Response:
        record = store.get(rid)
        if record is None:
            raise _no_response(rid)
        return json_response(record.response)

    @router.delete("/v1/responses/{rid}")
    async def delete_response(rid: str) -> Response:
        if not store.delete(rid):
            raise _no_response(rid)
        return json_response({"id": rid, "object": "response", "deleted": True})

    return router


async def _response_events(
    service: ModelService, job: Job[Answer], first: JobEvent, events: ResponseEvents
) -> AsyncIterator[bytes]:
    try:
        for chunk in events.begin():
            yield chunk
        event = first
        while True:
            if event.kind == "text":
                chunks = events.feed(event.value)
            elif event.kind == "done":
                chunks = events.finish(event.value)
            else:
                chunks = events.failed(error_payload(service, event.value))
            for chunk in chunks:
                yield chunk
            if event.kind != "text":
                return
            event = await job.next_event()
    finally:
        job.cancel()  # no-op when finished; stops the generation when the client left


def _no_response(rid: str) -> ErrorReply:
    return ErrorReply(
        404,
        f"no stored response {rid!r} (made with store=false, deleted, or never made here)",
        param="response_id",
        code="response_not_found",
    )
