"""Errors as the OpenAI API reports them: ``{"error": {"message", "type", "param", "code"}}``.

Owns :class:`ErrorReply` (raised by handlers with the HTTP status and a message that says what was
wrong and what to do), the translation of request-validation failures into one readable 400
message naming the field, the value and what was expected, and the JSON rendering every
response of the server uses. Never decides *whether* a request is valid: the schemas and the
service do.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = [
    "SENT_CONTENT_TYPE",
    "ErrorReply",
    "current_request_id",
    "describe_validation_errors",
    "error_response",
    "install_error_handlers",
    "json_bytes",
    "json_response",
]

log = logging.getLogger("agentcore.server")

SENT_CONTENT_TYPE = "agentcore.sent_content_type"  # scope key: a body's type, when not JSON
# the id the access log gives the request being handled (set by AccessLogMiddleware)
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentcore_request_id", default=None
)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    499: "client_closed_request",
}


class ErrorReply(Exception):
    """The error reply a request gets: raised by handlers, rendered as OpenAI's error object.

    The client's side of the same reply is :class:`agentcore.client.APIError` (what
    ``Client`` raises when it reads one); the server never raises that one.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "error")

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to ASCII escapes when text holds lone surrogates."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_bytes(obj), status_code=status, media_type="application/json", headers=headers
    )


def error_response(err: ErrorReply) -> Response:
    return json_response(err.body(), err.status)


def _path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    previous: Any = None
    for p in parts:
        if p == previous and isinstance(p, str):
            continue  # a discriminated union repeats its tag before the field of the same name
        previous = p
        if isinstance(p, int):
            out += f"[{p}]"
        elif isinstance(p, str) and p in {"str", "int", "float", "bool", "list", "dict", "none"}:
            continue  # pydantic names the union branch it tried; the field path is enough
        elif isinstance(p, str) and (
            "[" in p or p[:1].isupper() or p.startswith(("function-", "tagged-union"))
        ):
            continue  # union branches named by type (fields are lower_snake_case)
        else:
            out += f".{p}" if out else str(p)
    return out


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_validation_errors(errors: Sequence[Any]) -> tuple[str, str | None]:
    """Pydantic/FastAPI errors -> (one message, the first offending field).

    Errors of one field (one per branch of a union type) are merged into one sentence.
    """
    if not errors:
        return "the request body is invalid", None
    by_path: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for err in errors:
        kind = str(err.get("type", ""))
        path = _path(err.get("loc", ()))
        blamed = getattr((err.get("ctx") or {}).get("error"), "param", None)
        if isinstance(blamed, str):  # a check across fields names the field it refuses
            path = f"{path}.{blamed}" if path else blamed
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            loc = err.get("loc", ())
            where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            return f"the body is not valid JSON ({ctx.get('error', 'decode error')}{where})", None
        if kind == "missing" and not path:
            return "the request body is missing: send a JSON object", None
        if kind in ("model_type", "model_attributes_type", "dict_type") and not path:
            return f"the body must be a JSON object, got {_shown(err.get('input'))}", None
        if kind == "extra_forbidden":
            field = path.rsplit(".", 1)[-1]
            where = path.rsplit(".", 1)[0] if "." in path else "the body"
            text = f"unknown field {field!r} in {where}"
            by_path.setdefault(f"{path}#extra", []).append(text)
            continue
        msg = str(err.get("msg", "invalid value"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if kind == "missing":
            msg = "this field is required"
        elif kind != "value_error":
            msg = msg[:1].lower() + msg[1:]
            shown.setdefault(path, _shown(err.get("input")))
        reasons = by_path.setdefault(path, [])
        if msg not in reasons:
            reasons.append(msg)
    messages: list[str] = []
    for key, reasons in by_path.items():
        if key.endswith("#extra"):
            messages.extend(reasons)
            continue
        got = f"got {shown[key]}; " if key in shown else ""
        text = got + " or ".join(reasons)
        named = key and not text.startswith(key.rsplit(".", 1)[-1])  # "n=2 is ..." names n
        messages.append(f"{key}: {text}" if named else text)
    first_param = next((k.removesuffix("#extra") for k in by_path if k), None)
    more = len(messages) - 3
    text = "; ".join(messages[:3]) + (f" (and {more} more problems)" if more > 0 else "")
    return text, first_param


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_validation_errors(exc.errors())
    sent = request.scope.get(SENT_CONTENT_TYPE)
    if sent is not None and any(e.get("type") == "json_invalid" for e in exc.errors()):
        how = f"as Content-Type: {sent}" if sent else "without a Content-Type"
        message += (
            f"; the body was sent {how}, and this API reads JSON: send a JSON object with "
            "Content-Type: application/json"
        )
    return error_response(ErrorReply(400, message, param=param, code="invalid_request"))


async def _on_error_reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ErrorReply)
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/responses, /v1/sessions"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    err = ErrorReply(exc.status_code, message)
    return json_response(err.body(), exc.status_code, headers=headers)


def internal_error(exc: BaseException, what: str) -> ErrorReply:
    """A 500 for a server bug: the traceback goes to the log under the request's id (the access
    log's, else a fresh one), the client gets that id and nothing of the exception (its text may
    hold paths, prompts or secrets)."""
    request_id = current_request_id.get() or uuid.uuid4().hex[:16]
    log.error("%s [request id %s]", what, request_id, exc_info=exc)
    return ErrorReply(
        500,
        f"internal server error (request id {request_id}; the server log has the details)",
        code=f"request_{request_id}",
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    return error_response(
        internal_error(exc, f"internal error on {request.method} {request.url.path}")
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ErrorReply, _on_error_reply)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
