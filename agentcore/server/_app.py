"""The HTTP routes: an OpenAI-compatible API with persistent sessions, on FastAPI.

Owns :func:`create_app`: ``GET /v1/models``, ``POST /v1/chat/completions`` and
``POST /v1/completions`` (JSON or server-sent events ending with ``data: [DONE]``), and
``/v1/sessions`` (list, create, inspect, delete), and OpenAI's Responses API (``/v1/responses``:
a response chain on a persistent session, see ``_responses_api``). A body field
``"session": "<id>"`` appends the request to that persistent session; without it a request is
stateless. Each request runs in a
worker thread; text streams to the client as it is generated, and a client that disconnects
(while queued, mid-generation or mid-stream) stops its generation at the next token and frees
its session. In front of the routes (see ``_middleware``): opt-in CORS, an optional API key,
JSON bodies read whatever content type they came with, and the body-size limit. Never touches
tensors: :class:`~agentcore.server._service.ModelService` drives the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response, StreamingResponse

from agentcore._version import __version__
from agentcore.backends._protocol import Completion, ModelBackend
from agentcore.paths import validate_name
from agentcore.server._completions import TextCompletion
from agentcore.server._config import ServerConfig
from agentcore.server._errors import ErrorReply, install_error_handlers, json_response
from agentcore.server._jobs import Job, JobEvent
from agentcore.server._lifecycle import (
    SSE_HEADERS,
    error_payload,
    failed,
    respond,
)
from agentcore.server._limits import BodyLimitMiddleware
from agentcore.server._middleware import (
    AccessLogMiddleware,
    APIKeyMiddleware,
    JsonBodyMiddleware,
)
from agentcore.server._responses import (
    SSE_DONE,
    ChatStreamShaper,
    Ids,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    finish_reason,
    sse,
    usage_json,
)
from agentcore.server._responses_api import install_responses_routes
from agentcore.server._schemas import ChatRequest, CompletionRequest, SessionCreate
from agentcore.server._service import ModelService

__all__ = ["create_app"]

log = logging.getLogger("agentcore.server")


def create_app(backend: ModelBackend, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI app serving ``backend`` (a LocalBackend in production; any ModelBackend works
    for chat, e.g. the scripted fake in tests)."""
    cfg = config or ServerConfig()
    service = ModelService(backend, cfg)

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

    @app.get("/health")
    async def health() -> Response:
        return json_response(
            {
                "status": "ok",
                "model": service.model_name,
                "active_requests": service.runner.active,
                **service.counters,
            }
        )

    @app.get("/v1/models")
    async def models() -> Response:
        return json_response({"object": "list", "data": [service.model_card()]})

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> Response:
        service.check_model(model_id)
        return json_response(service.model_card())

    # ------------------------------------------------------------------ chat
    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
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
                _chat_events(job, first, ids, shaper, include_usage, body),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )

        return await respond(
            service, body.session, fn, request, stream=body.stream, whole=whole, streamed=streamed
        )

    async def _chat_events(
        job: Job[Completion],
        first: JobEvent,
        ids: Ids,
        shaper: ChatStreamShaper,
        include_usage: bool,
        body: ChatRequest,
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

    # ------------------------------------------------------------------ completions
    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
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
                _completion_events(job, first, ids, include_usage, body.session),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )

        return await respond(
            service, body.session, fn, request, stream=body.stream, whole=whole, streamed=streamed
        )

    async def _completion_events(
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
            job.cancel()

    # ------------------------------------------------------------------ sessions
    @app.get("/v1/sessions")
    async def list_sessions() -> Response:
        return json_response({"object": "list", "data": await service.list_sessions()})

    @app.post("/v1/sessions")
    async def create_session(body: SessionCreate) -> Response:
        try:
            return json_response(await service.create_session(body.id), 201)
        except Exception as exc:
            return failed(service, exc)

    @app.get("/v1/sessions/{sid}")
    async def get_session(sid: str) -> Response:
        try:
            _valid_session(sid)
            return json_response(await service.session_info(sid))
        except Exception as exc:
            return failed(service, exc)

    @app.delete("/v1/sessions/{sid}")
    async def delete_session(sid: str) -> Response:
        try:
            _valid_session(sid)
            return json_response(await service.delete_session(sid))
        except Exception as exc:
            return failed(service, exc)

    # ------------------------------------------------------------------ responses
    app.state.responses = install_responses_routes(app, service)
    return app


def _valid_session(sid: str) -> None:
    try:
        validate_name(sid)
    except ValueError as exc:
        raise ErrorReply(400, str(exc), param="session") from None
