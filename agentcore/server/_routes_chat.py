"""``POST /v1/chat/completions``: a chat turn as one ``chat.completion`` or as its SSE chunks.

Owns the chat route and its event stream: ``chat.completion.chunk`` objects (an opening
assistant delta, text or ``tool_calls`` deltas through
:class:`~agentcore.server._responses.ChatStreamShaper`, the finish chunk with the logprobs, the
usage chunk when ``stream_options.include_usage`` asks) ending with ``data: [DONE]``. The job's
path from the session queue to the reply is :func:`~agentcore.server._lifecycle.respond`'s.
Never renders prompts or runs the model: :meth:`ModelService.chat_job` builds the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from agentcore.backends._protocol import Completion
from agentcore.server._errors import json_response
from agentcore.server._jobs import Job, JobEvent
from agentcore.server._lifecycle import SSE_HEADERS, error_payload, respond
from agentcore.server._responses import (
    SSE_DONE,
    ChatStreamShaper,
    Ids,
    chat_chunk,
    chat_response,
    finish_reason,
    sse,
    usage_json,
)
from agentcore.server._schemas import ChatCompletionBody
from agentcore.server._service import ModelService

__all__ = ["chat_router"]


def chat_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionBody, request: Request) -> Response:
        service.check_model(body.model)
        fn = service.chat_job(body)
        ids = Ids("chatcmpl", service.model_name)

        def whole(value: Completion) -> Response:
            logprobs = service.chat_logprobs(body, value)
            return json_response(chat_response(value, ids, logprobs, legacy=body.legacy_functions))

        def streamed(job: Job[Completion], first: JobEvent) -> Response:
            active, forced = service.tool_mode(body)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            shaper = ChatStreamShaper(active, forced, body.legacy_functions)
            return StreamingResponse(
                _chat_events(service, job, first, ids, shaper, include_usage, body),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )

        return await respond(
            service, body.session, fn, request, stream=body.stream, whole=whole, streamed=streamed
        )

    return router


async def _chat_events(
    service: ModelService,
    job: Job[Completion],
    first: JobEvent,
    ids: Ids,
    shaper: ChatStreamShaper,
    include_usage: bool,
    body: ChatCompletionBody,
) -> AsyncIterator[bytes]:
    try:
        yield sse(chat_chunk(ids, {"role": "assistant", "content": ""}))
        event = first
        while True:
            if event.kind == "text":
                for delta in shaper.feed(event.value):
                    yield sse(chat_chunk(ids, delta))
            elif event.kind == "done":
                c: Completion = event.value
                for delta in shaper.finish(c):
                    yield sse(chat_chunk(ids, delta))
                logprobs = service.chat_logprobs(body, c)  # all in the last chunk
                yield sse(
                    chat_chunk(
                        ids,
                        {},
                        finish_reason(c, shaper.legacy),
                        session=c.session,
                        logprobs=logprobs,
                    )
                )
                if include_usage:
                    u = c.usage
                    usage = usage_json(
                        u.prompt_tokens,
                        u.completion_tokens,
                        u.session_tokens if c.session else None,
                    )
                    yield sse(chat_chunk(ids, None, usage=usage))
                yield SSE_DONE
                return
            else:
                yield sse(error_payload(service, event.value))
                yield SSE_DONE
                return
            event = await job.next_event()
    finally:
        job.cancel()  # no-op when finished; stops the generation when the client left
