"""The ASGI layers in front of the routes: the access log, the API key check and JSON bodies
sent untyped.

Owns :class:`AccessLogMiddleware` (every request gets an id, sent back as ``x-request-id``,
and one log line on ``agentcore.server.access`` with method, route, status and duration; a
500's traceback is logged under the same id; an OpenTelemetry SERVER span per request), :class:`APIKeyMiddleware` (with a key configured, every request but ``GET /health`` and
CORS preflights needs ``Authorization: Bearer <key>``; others get 401 in OpenAI's error shape)
and :class:`JsonBodyMiddleware` (a body sent with no content type or another one than JSON,
as ``curl -d`` does, is read as JSON; the type it was sent with is kept in the scope, under
:data:`SENT_CONTENT_TYPE`, so an error can name it). CORS is Starlette's middleware, added by
the app when origins are configured. Never parses bodies and never runs handlers.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from agentcore import _tracing as tracing
from agentcore.server._errors import SENT_CONTENT_TYPE, ErrorReply, current_request_id, json_bytes

__all__ = ["APIKeyMiddleware", "AccessLogMiddleware", "JsonBodyMiddleware"]

log = logging.getLogger("agentcore.server.access")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # an x-request-id a client may choose
_OPEN_PATHS = frozenset({"/health"})  # liveness probes need no key
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


async def _send_error(send: Send, err: ErrorReply, headers: list[Any] | None = None) -> None:
    payload = json_bytes(err.body())
    head: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": head})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class AccessLogMiddleware:
    """One log line per HTTP request: ``METHOD route status duration [request id]``.

    The id is the client's ``x-request-id`` when it is a short token, else a fresh one; it is
    sent back in ``x-request-id`` and is the id a 500's logged traceback carries. ``route`` is
    the matched path template (``/v1/sessions/{sid}``) when there is one, so session names do
    not reach the log. Bodies are never logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = (_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = sent if _CLIENT_ID.fullmatch(sent) else uuid.uuid4().hex[:16]
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering
        method = scope.get("method", "")
        span = tracing.start_request(method, scope.get("path", ""), request_id)

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            with tracing.current(span):  # the job a request starts carries it to its worker
                await self.app(scope, receive, send_with_id)
        except BaseException:
            raise  # the id stays set: the server's 500 handler, outside this layer, logs with it
        else:
            current_request_id.reset(token)
        finally:
            template = getattr(scope.get("route"), "path", None)
            route = template or scope.get("path", "")
            tracing.end_request(span, method, template, status, request_id)
            log.info(
                "%s %s %d %.1f ms [request id %s]",
                method,
                route,
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


class APIKeyMiddleware:
    """Refuse requests without ``Authorization: Bearer <api_key>`` (401)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") == "OPTIONS"
            or scope.get("path") in _OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        sent = _header(scope, b"authorization")
        if sent is not None and hmac.compare_digest(sent.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        if sent is None:
            message = (
                "no API key: this server needs the header 'Authorization: Bearer <key>' "
                "(the key it was started with: --api-key or $AGENTCORE_API_KEY)"
            )
        else:
            message = "incorrect API key provided in the Authorization header"
        err = ErrorReply(401, message, code="invalid_api_key", type="invalid_request_error")
        await _send_error(send, err, [(b"www-authenticate", b"Bearer")])


class JsonBodyMiddleware:
    """Read request bodies as JSON whatever content type they were sent with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in _BODY_METHODS:
            sent = _header(scope, b"content-type")
            if sent is None or not _is_json(sent):
                scope = dict(scope)
                scope[SENT_CONTENT_TYPE] = "" if sent is None else sent.decode("latin-1")
                others = [
                    (k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"
                ]
                scope["headers"] = [*others, (b"content-type", b"application/json")]
        await self.app(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )
