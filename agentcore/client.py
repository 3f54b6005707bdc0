"""An httpx client for OpenAI-compatible model servers, agentcore's own server included.

Owns :class:`Client` (sync) and :class:`AsyncClient` (async): chat and text completions,
plain or streamed (server-sent events, read until ``data: [DONE]`` by a small parser of the
WHATWG event-stream rules, :class:`_SSE`), the model list and, on an
agentcore server, the ``/v1/sessions`` endpoints. Timeouts suit long generations (a generous
read timeout, short connect timeout; see :class:`ClientConfig`), and a request is retried only
when the connection could not be made, so it can never be delivered twice. Error responses
raise :class:`APIError` with the server's message. Never keeps conversation state: the http
backend (:mod:`agentcore.backends._http`) does.

Works against this project's server and any OpenAI-compatible one (vLLM, llama.cpp, Ollama)::

    with Client("http://127.0.0.1:8000") as client:
        reply = client.chat([{"role": "user", "content": "hi"}], session="notes")
        for chunk in client.stream_chat([{"role": "user", "content": "more"}], session="notes"):
            ...
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import json
import re
import time
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping, Sequence
from typing import Any

import httpx

__all__ = ["APIError", "AsyncClient", "Client", "ClientConfig", "ConnectionFailedError"]

Body = dict[str, Any]
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """Timeouts (seconds) and retry policy. ``read`` bounds the wait for the next bytes of a
    response: for a non-streamed request that is the whole generation."""

    connect: float = 10.0
    read: float = 900.0
    write: float = 60.0
    pool: float = 60.0
    retries: int = 3  # extra attempts when the connection cannot be made
    backoff: float = 0.25  # first wait between attempts; doubles each time

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ClientConfig.{name}={getattr(self, name)!r}: expected > 0")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError(
                f"ClientConfig retries={self.retries!r}, backoff={self.backoff!r}: expected >= 0"
            )

    @classmethod
    def long_generations(cls) -> ClientConfig:
        """The default: 15 minutes of read timeout for slow CPU generations."""
        return cls()

    @classmethod
    def interactive(cls) -> ClientConfig:
        """Short timeouts for health checks and tests."""
        return cls(connect=2.0, read=60.0, write=10.0, pool=10.0, retries=2, backoff=0.1)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class APIError(Exception):
    """The server answered with an error (or an error event inside a stream)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code


class ConnectionFailedError(ConnectionError):
    """No connection could be made to the server, after every retry."""


def _api_error(status: int, payload: bytes) -> APIError:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        text = payload.decode("utf-8", "replace").strip()
        return APIError(status, text or f"HTTP {status} with an empty body")
    return _error_from_json(status, data)


def _error_from_json(status: int, data: Any) -> APIError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return APIError(
            status,
            str(err.get("message") or err),
            type=err.get("type"),
            param=err.get("param"),
            code=None if err.get("code") is None else str(err.get("code")),
        )
    if isinstance(err, str):  # llama.cpp / Ollama style {"error": "..."}
        return APIError(status, err)
    if isinstance(data, dict) and "detail" in data:
        return APIError(status, str(data["detail"]))
    return APIError(status, json.dumps(data)[:500])


_NEWLINE = re.compile(r"\r\n|\r|\n")


class _SSE:
    """Server-sent events -> JSON payloads, fed the response's bytes as they arrive.

    Follows the WHATWG event-stream rules: the stream is UTF-8 (whatever the headers say) and
    its lines end at ``\r\n``, ``\r`` or ``\n`` only, also when a chunk ends between the
    two halves of a ``\r\n`` or inside a character. (Not httpx's ``iter_lines``: it also breaks
    lines at U+2028, U+2029 and U+0085, which JSON may carry unescaped: agentcore's own server
    sends model text so.) A leading byte-order mark is dropped, ``:`` lines
    (comments, keep-alive pings) are skipped, a field's value loses one leading space, ``data``
    lines are joined with ``\n`` and a blank line dispatches the event, ``event`` names it;
    ``id`` and ``retry`` are read and let go (the client never reconnects: an OpenAI-style
    generation cannot be resumed), and other fields are ignored. An ``error`` event, or a
    payload that is an error object, raises :class:`APIError`; ``data: [DONE]`` ends the stream.

    Two leniencies, for servers seen in the wild: a ``data`` line that is a whole JSON document
    on its own is an event at once (some servers put no blank line between events), and an
    event still open when the stream ends is dispatched (the spec drops it; the last chunk of
    a chat stream carries the finish reason and usage). An event whose data is blank is no
    event.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""  # the start of a line whose end has not arrived
        self._data: list[str] = []
        self._event = ""
        self._started = False
        self.done = False

    def feed(self, chunk: bytes) -> Iterator[Any]:
        """The events that ``chunk`` completes (none after ``data: [DONE]``)."""
        text = self._text + self._decoder.decode(chunk)
        start = 0
        lines: list[str] = []
        for match in _NEWLINE.finditer(text):
            if match.end() == len(text) and match.group() == "\r":
                break  # perhaps the first half of a \r\n: wait for the next chunk
            lines.append(text[start : match.start()])
            start = match.end()
        self._text = text[start:]
        yield from self._lines(lines)

    def end(self) -> Iterator[Any]:
        """The stream ended: its last line and the event still open (see above)."""
        text = self._text + self._decoder.decode(b"", final=True)
        self._text = ""
        yield from self._lines([text.removesuffix("\r")] if text else [])
        last = None if self.done else self._dispatch()
        if last is not None:
            yield last

    def _lines(self, lines: list[str]) -> Iterator[Any]:
        for line in lines:
            if self.done:
                return
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> Any | None:
        """One line of the stream; returns a parsed event when the line completes one."""
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            if not self._data and value.strip() == "[DONE]":
                self.done = True
            elif not self._data and (whole := _json_or_none(value)) is not None:
                return self._emit(whole)
            else:
                self._data.append(value)
        return None

    def _dispatch(self) -> Any | None:
        data = "\n".join(self._data)
        self._data = []
        if not data.strip():
            self._event = ""
            return None
        if data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise APIError(
                200,
                f"the server sent an event whose data is not JSON ({exc.msg}): {data[:200]!r}",
                type="invalid_event",
            ) from None
        return self._emit(parsed)

    def _emit(self, event: Any) -> Any:
        kind, self._event = self._event, ""
        if kind == "error":
            raise _error_from_json(200, event if _is_error(event) else {"error": event})
        if _is_error(event) and "choices" not in event:
            raise _error_from_json(200, event)
        return event


def _json_or_none(text: str) -> Any | None:
    """``text`` as JSON when it is one whole JSON document, else None."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _is_error(event: Any) -> bool:
    return isinstance(event, dict) and "error" in event


def _v1(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def _chat_body(
    messages: Sequence[Mapping[str, Any]],
    model: str,
    session: str | None,
    stream: bool,
    fields: Mapping[str, Any],
) -> Body:
    body: Body = {"model": model, "messages": [dict(m) for m in messages], **fields}
    if session is not None:
        body["session"] = session
    if stream:
        body["stream"] = True
    return body


def _completion_body(
    prompt: str | Sequence[int],
    model: str,
    session: str | None,
    stream: bool,
    fields: Mapping[str, Any],
) -> Body:
    body: Body = {
        "model": model,
        "prompt": prompt if isinstance(prompt, str) else list(prompt),
        **fields,
    }
    if session is not None:
        body["session"] = session
    if stream:
        body["stream"] = True
    return body


class _Base:
    def __init__(self, base_url: str, api_key: str | None, config: ClientConfig | None) -> None:
        self.base_url = _v1(base_url)
        self.config = config or ClientConfig()
        self.headers = {"Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._model: str | None = None

    def _give_up(
        self, request: httpx.Request, attempts: int, exc: Exception
    ) -> ConnectionFailedError:
        return ConnectionFailedError(
            f"could not connect to {request.url} after {attempts} attempts ({exc}); "
            "is the server running? (agentcore serve --port ...)"
        )


class Client(_Base):
    """Synchronous client; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        config: ClientConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, config)
        self._http = httpx.Client(
            timeout=self.config.timeout(), headers=self.headers, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport
    def _send(self, method: str, path: str, body: Body | None, stream: bool) -> httpx.Response:
        request = self._http.build_request(method, f"{self.base_url}{path}", json=body)
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                response = self._http.send(request, stream=stream)
            except _RETRYABLE as exc:
                if attempt + 1 == attempts:
                    raise self._give_up(request, attempts, exc) from exc
                time.sleep(self.config.backoff * 2**attempt)
                continue
            if response.status_code >= 400:
                payload = response.read()
                response.close()
                raise _api_error(response.status_code, payload)
            return response
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Body | None = None) -> Any:
        """One JSON request to ``/v1{path}``; returns the decoded JSON body."""
        response = self._send(method, path, body, stream=False)
        return response.json()

    def _events(self, path: str, body: Body) -> Generator[Any, None, None]:
        response = self._send("POST", path, body, stream=True)
        try:
            sse = _SSE()
            for chunk in response.iter_bytes():
                yield from sse.feed(chunk)
                if sse.done:
                    return
            yield from sse.end()
        finally:
            response.close()  # leaving early disconnects: the server stops generating

    # ------------------------------------------------------------------ API
    def models(self) -> list[dict[str, Any]]:
        data = self.request("GET", "/models")
        return list(data.get("data", [])) if isinstance(data, dict) else []

    def default_model(self) -> str:
        """The first model the server lists (cached)."""
        if self._model is None:
            models = self.models()
            if not models:
                raise APIError(404, f"{self.base_url}/models lists no model")
            self._model = str(models[0]["id"])
        return self._model

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``POST /v1/chat/completions``; ``fields`` are any other body fields."""
        body = _chat_body(messages, model or self.default_model(), session, False, fields)
        result: dict[str, Any] = self.request("POST", "/chat/completions", body)
        return result

    def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> Generator[dict[str, Any], None, None]:
        """Streamed chat: yields ``chat.completion.chunk`` objects until ``[DONE]``."""
        body = _chat_body(messages, model or self.default_model(), session, True, fields)
        yield from self._events("/chat/completions", body)

    def complete(
        self,
        prompt: str | Sequence[int],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``POST /v1/completions`` (``echo=True, logprobs=k, max_tokens=0`` scores text)."""
        body = _completion_body(prompt, model or self.default_model(), session, False, fields)
        result: dict[str, Any] = self.request("POST", "/completions", body)
        return result

    def stream_complete(
        self,
        prompt: str | Sequence[int],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> Generator[dict[str, Any], None, None]:
        body = _completion_body(prompt, model or self.default_model(), session, True, fields)
        yield from self._events("/completions", body)

    # ------------------------------------------------------------------ sessions (agentcore)
    def sessions(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/sessions").get("data", []))

    def session(self, sid: str) -> dict[str, Any] | None:
        """A session's token count and memory sizes, or None when the server has no such one."""
        try:
            result: dict[str, Any] = self.request("GET", f"/sessions/{sid}")
        except APIError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def create_session(self, sid: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/sessions", {"id": sid} if sid else {})
        return result

    def delete_session(self, sid: str) -> bool:
        try:
            self.request("DELETE", f"/sessions/{sid}")
        except APIError as exc:
            if exc.status == 404:
                return False
            raise
        return True


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (same methods, awaited; streams are async)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, config)
        self._http = httpx.AsyncClient(
            timeout=self.config.timeout(), headers=self.headers, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, body: Body | None, stream: bool
    ) -> httpx.Response:
        request = self._http.build_request(method, f"{self.base_url}{path}", json=body)
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                response = await self._http.send(request, stream=stream)
            except _RETRYABLE as exc:
                if attempt + 1 == attempts:
                    raise self._give_up(request, attempts, exc) from exc
                await asyncio.sleep(self.config.backoff * 2**attempt)
                continue
            if response.status_code >= 400:
                payload = await response.aread()
                await response.aclose()
                raise _api_error(response.status_code, payload)
            return response
        raise AssertionError("unreachable")

    async def request(self, method: str, path: str, body: Body | None = None) -> Any:
        response = await self._send(method, path, body, stream=False)
        return response.json()

    async def _events(self, path: str, body: Body) -> AsyncGenerator[Any, None]:
        response = await self._send("POST", path, body, stream=True)
        try:
            sse = _SSE()
            async for chunk in response.aiter_bytes():
                for event in sse.feed(chunk):
                    yield event
                if sse.done:
                    return
            for event in sse.end():
                yield event
        finally:
            await response.aclose()

    async def models(self) -> list[dict[str, Any]]:
        data = await self.request("GET", "/models")
        return list(data.get("data", [])) if isinstance(data, dict) else []

    async def default_model(self) -> str:
        if self._model is None:
            models = await self.models()
            if not models:
                raise APIError(404, f"{self.base_url}/models lists no model")
            self._model = str(models[0]["id"])
        return self._model

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        body = _chat_body(messages, model or await self.default_model(), session, False, fields)
        result: dict[str, Any] = await self.request("POST", "/chat/completions", body)
        return result

    async def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> AsyncGenerator[dict[str, Any], None]:
        body = _chat_body(messages, model or await self.default_model(), session, True, fields)
        async for event in self._events("/chat/completions", body):
            yield event

    async def complete(
        self,
        prompt: str | Sequence[int],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        body = _completion_body(prompt, model or await self.default_model(), session, False, fields)
        result: dict[str, Any] = await self.request("POST", "/completions", body)
        return result

    async def stream_complete(
        self,
        prompt: str | Sequence[int],
        *,
        model: str | None = None,
        session: str | None = None,
        **fields: Any,
    ) -> AsyncGenerator[dict[str, Any], None]:
        body = _completion_body(prompt, model or await self.default_model(), session, True, fields)
        async for event in self._events("/completions", body):
            yield event

    async def sessions(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/sessions")).get("data", []))

    async def session(self, sid: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", f"/sessions/{sid}")
        except APIError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_session(self, sid: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/sessions", {"id": sid} if sid else {})
        return result

    async def delete_session(self, sid: str) -> bool:
        try:
            await self.request("DELETE", f"/sessions/{sid}")
        except APIError as exc:
            if exc.status == 404:
                return False
            raise
        return True
