"""The request-size guard: bodies over the configured size get 413 before any handler runs.

Owns :class:`BodyLimitMiddleware`, a pure ASGI middleware that checks ``Content-Length`` and,
for bodies sent without one (chunked), counts bytes as they arrive. The body it accepted is
replayed to the app, and later ``receive`` calls pass through, so handlers still see client
disconnects. Never parses the body.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentcore.server._errors import ErrorReply, json_bytes

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Refuse HTTP request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            if message["type"] != "http.request":
                continue
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send, None)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        got = f"{declared} bytes" if declared is not None else "more than that"
        err = ErrorReply(
            413,
            f"the request body is too large: {got}, this server accepts at most "
            f"{self.max_bytes} bytes (start it with a larger --max-body-bytes to raise the limit)",
            code="request_too_large",
        )
        payload = json_bytes(err.body())
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
