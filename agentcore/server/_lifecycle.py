"""One request's job, from the session queue to its last event, shared by every generating route.

Owns :class:`DisconnectWatch` (completes when the client goes), :func:`start_job` (wait for the
session, start the worker, wait for its first event), :func:`run_to_end`, :func:`respond` (the
path from a job to a whole or streamed reply that every generating route takes), and the error
replies of a job (:func:`failed`, :func:`client_gone`, :func:`error_payload`). Never shapes a
reply: the routes (``_routes_chat``, ``_routes_completions``, ``_routes_responses``) hand
``respond`` the functions that do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from agentcore.server._errors import ErrorReply, error_response, internal_error
from agentcore.server._jobs import Job, JobEvent
from agentcore.server._service import ClientGoneError, ModelService, error_reply_for

__all__ = [
    "SSE_HEADERS",
    "DisconnectWatch",
    "client_gone",
    "error_payload",
    "failed",
    "next_or_gone",
    "respond",
    "run_to_end",
    "start_job",
]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class DisconnectWatch:
    """Completes when the client disconnects (reads the ASGI receive channel until then)."""

    def __init__(self, request: Request) -> None:
        self.task: asyncio.Task[None] = asyncio.ensure_future(self._watch(request))

    @staticmethod
    async def _watch(request: Request) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def client_gone(service: ModelService) -> Response:
    service.counters["cancelled"] += 1
    err = ErrorReply(499, "the client closed the connection before the reply was ready")
    return error_response(err)


def failed(service: ModelService, exc: BaseException) -> Response:
    return error_response(_error_reply(service, exc, "request failed"))


def error_payload(service: ModelService, exc: BaseException) -> dict[str, Any]:
    """The OpenAI error body of a job that failed after its stream began."""
    return _error_reply(service, exc, "streaming request failed").body()


def _error_reply(service: ModelService, exc: BaseException, what: str) -> ErrorReply:
    err = error_reply_for(exc)
    if err is None:
        service.counters["errors"] += 1
        err = internal_error(exc, what)
    return err


async def next_or_gone(job: Job[Any], watch: DisconnectWatch) -> JobEvent | None:
    """The job's next event, or None when the client disconnects first (the job is cancelled)."""
    get = asyncio.ensure_future(job.next_event())
    done, _ = await asyncio.wait({get, watch.task}, return_when=asyncio.FIRST_COMPLETED)
    if get in done:
        return get.result()
    get.cancel()
    job.cancel()
    return None


async def start_job(
    service: ModelService, session: str | None, fn: Any, request: Request
) -> tuple[Job[Any] | None, JobEvent | None, DisconnectWatch]:
    """Queue for the session, start the job and wait for its first event (or the end)."""
    watch = DisconnectWatch(request)
    try:
        job = await service.start(session, fn, watch.task)
    except ClientGoneError:
        return None, None, watch
    except BaseException:
        await watch.stop()
        raise
    first = await next_or_gone(job, watch)
    return job, first, watch


async def run_to_end(job: Job[Any], first: JobEvent, watch: DisconnectWatch) -> JobEvent | None:
    """The job's last event (``done`` or ``error``; None: the client left first)."""
    event: JobEvent | None = first
    while event is not None and event.kind == "text":
        event = await next_or_gone(job, watch)
    return event


async def respond(
    service: ModelService,
    session: str | None,
    fn: Any,
    request: Request,
    *,
    stream: bool,
    whole: Callable[[Any], Response],
    streamed: Callable[[Job[Any], JobEvent], Response],
) -> Response:
    """Run ``fn`` as the request's job and reply: ``whole(value)`` with the job's result, or
    ``streamed(job, first)`` once its first event is there; a failure to start, an error and a
    client that left get the same replies on every route."""
    try:
        job, first, watch = await start_job(service, session, fn, request)
    except Exception as exc:
        return failed(service, exc)
    if job is None or first is None:
        await watch.stop()
        return client_gone(service)
    if not stream:
        last = await run_to_end(job, first, watch)
        await watch.stop()
        if last is None:
            return client_gone(service)
        if last.kind == "error":
            return failed(service, last.value)
        return whole(last.value)
    await watch.stop()  # from here the streaming response watches the connection
    if first.kind == "error":
        return failed(service, first.value)
    return streamed(job, first)
