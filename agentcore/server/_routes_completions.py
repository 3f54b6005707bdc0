"""``POST /v1/completions``: a text completion as one ``text_completion`` or as its SSE chunks.

Owns the text-completion route and its event stream: ``text_completion`` chunks (the text as it
comes, the finish chunk, the usage chunk when ``stream_options.include_usage`` asks) ending with
``data: [DONE]``. The job's path from the session queue to the reply is
:func:`~agentcore.server._lifecycle.respond`'s. Never tokenizes or runs the model:
:meth:`ModelService.completion_job` builds the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from agentcore.server._completions import TextCompletion
from agentcore.server._errors import json_response
from agentcore.server._jobs import Job, JobEvent
from agentcore.server._lifecycle import SSE_HEADERS, error_payload, respond
from agentcore.server._responses import (
    SSE_DONE,
    Ids,
    completion_chunk,
    completion_response,
    sse,
    usage_json,
)
from agentcore.server._schemas import CompletionBody
from agentcore.server._service import ModelService

__all__ = ["completions_router"]


def completions_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/completions")
    async def completions(body: CompletionBody, request: Request) -> Response:
        service.check_model(body.model)
        fn = service.completion_job(body)
        ids = Ids("cmpl", service.model_name)

        def whole(value: TextCompletion) -> Response:
            return json_response(
                completion_response(value, ids, echo=body.echo, session=body.session)
            )

        def streamed(job: Job[TextCompletion], first: JobEvent) -> Response:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                _completion_events(service, job, first, ids, include_usage, body.session),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )

        return await respond(
            service, body.session, fn, request, stream=body.stream, whole=whole, streamed=streamed
        )

    return router


async def _completion_events(
    service: ModelService,
    job: Job[TextCompletion],
    first: JobEvent,
    ids: Ids,
    include_usage: bool,
    session: str | None,
) -> AsyncIterator[bytes]:
    try:
        event = first
        while True:
            if event.kind == "text":
                yield sse(completion_chunk(ids, event.value))
            elif event.kind == "done":
                tc: TextCompletion = event.value
                yield sse(completion_chunk(ids, "", tc.finish_reason))
                if include_usage:
                    usage = usage_json(
                        tc.prompt_tokens,
                        tc.completion_tokens,
                        tc.session_tokens if session else None,
                    )
                    yield sse(completion_chunk(ids, None, usage=usage))
                yield SSE_DONE
                return
            else:
                yield sse(error_payload(service, event.value))
                yield SSE_DONE
                return
            event = await job.next_event()
    finally:
        job.cancel()  # no-op when finished; stops the generation when the client left
