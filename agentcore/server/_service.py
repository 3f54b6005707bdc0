"""The model service behind the HTTP routes: requests in, jobs on the backend out.

Owns the translation of validated request bodies into backend requests (a chat body becomes one
:class:`~agentcore.backends.ChatRequest` for ``complete``: sampling parameters, limits, tools,
response formats), per-session serialisation (one :class:`asyncio.Lock` per session in use,
waited on in the event loop so a queued request holds no thread and a client that leaves while
queued never touches the session; the lock is released when the worker returns, whatever
happened to the request, and dropped when nobody holds or awaits it), session
listing/inspection/creation/deletion, and the mapping of backend exceptions to error replies.
Sessions are saved atomically after every request by the local backend. Never speaks HTTP: the
routes live in the ``_routes_*`` modules, the SSE framing in ``_responses``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from agentcore import _tracing as tracing
from agentcore.backends._continuation import SessionConflictError
from agentcore.backends._limits import SessionLimitError
from agentcore.backends._protocol import (
    ChatRequest,
    Completion,
    Described,
    ModelBackend,
    Scorer,
    SessionLister,
    SessionStore,
)
from agentcore.core.params import SamplingParams
from agentcore.core.session import Session
from agentcore.core.state import SessionStateError, session_files
from agentcore.server._completions import TextCompletion, complete_text
from agentcore.server._config import ServerConfig
from agentcore.server._errors import ErrorReply
from agentcore.server._jobs import Emit, Job, JobRunner, ShouldStop, ShuttingDownError
from agentcore.server._responses import chat_logprobs_json
from agentcore.server._schemas import ChatCompletionBody, CompletionBody, NamedToolChoice
from agentcore.server._session_locks import AsyncSessionLocks
from agentcore.tools import ToolError

__all__ = ["ClientGoneError", "ModelService", "UnknownSessionError", "error_reply_for"]

log = logging.getLogger("agentcore.server")

_GREEDY_BELOW = 1e-5  # temperatures below this decode greedily (as vLLM does)


class UnknownSessionError(LookupError):
    """A request names a session the server does not have (and may not create)."""

    def __init__(self, sid: str) -> None:
        super().__init__(sid)
        self.sid = sid


class ClientGoneError(Exception):
    """The client disconnected before its request started."""


def error_reply_for(exc: BaseException) -> ErrorReply | None:
    """The API error a backend exception stands for (None: a server bug, answered with 500)."""
    if isinstance(exc, ErrorReply):
        return exc
    if isinstance(exc, UnknownSessionError):
        return ErrorReply(
            404,
            f"no session {exc.sid!r}: create it with POST /v1/sessions, or list the sessions "
            "with GET /v1/sessions",
            param="session",
            code="session_not_found",
        )
    if isinstance(exc, ShuttingDownError):
        return ErrorReply(503, str(exc), code="shutting_down", type="server_unavailable")
    if isinstance(exc, SessionStateError):
        return ErrorReply(409, str(exc), param="session", code="session_unreadable")
    if isinstance(exc, SessionConflictError):
        return ErrorReply(409, str(exc), param=exc.param, code="session_conflict")
    if isinstance(exc, SessionLimitError):
        return ErrorReply(
            507, str(exc), param="session", code="session_limit", type="insufficient_storage"
        )
    if isinstance(exc, ToolError | ValueError):
        param = getattr(exc, "param", None)  # e.g. ToolDeclarationError: "tools[2]..."
        return ErrorReply(
            400,
            str(exc) or type(exc).__name__,
            param=param if isinstance(param, str) else None,
            code="invalid_request",
        )
    return None


class ModelService:
    """One backend served over HTTP."""

    def __init__(self, backend: ModelBackend, config: ServerConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ServerConfig()
        self.runner = JobRunner(self.config.workers)
        self.started = time.time()
        self._locks = AsyncSessionLocks()  # one per session in use, dropped when released
        self.counters = {"requests": 0, "cancelled": 0, "errors": 0}

    # ------------------------------------------------------------------ model
    @property
    def model_name(self) -> str:
        return self.backend.name

    def model_card(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"sessions": True, "backend": type(self.backend).__name__}
        if isinstance(self.backend, Described):
            extra.update(self.backend.model_details())
        return {
            "id": self.model_name,
            "object": "model",
            "created": int(self.started),
            "owned_by": "agentcore",
            "agentcore": extra,
        }

    def check_model(self, model: str | None) -> None:
        if model is None or model in (self.model_name, "default", "agentcore"):
            return
        raise ErrorReply(
            404,
            f"model {model!r} is not served here; this server serves {self.model_name!r} "
            "(see GET /v1/models)",
            param="model",
            code="model_not_found",
        )

    # ------------------------------------------------------------------ parameters
    def sampling(
        self,
        req: ChatCompletionBody | CompletionBody,
        requested: int | None,
        default: int,
        *,
        chat: bool = False,
    ) -> SamplingParams:
        """The request's sampling parameters. A chat request that names no penalty at all
        (repetition, presence, frequency) gets the server's ``reply_penalty`` on its reply's own
        tokens, digits exempt (:meth:`SamplingParams.reply`); a raw completion gets none."""
        limit = self.config.max_tokens_limit
        max_tokens = min(default, limit) if requested is None else requested
        if max_tokens > limit:
            raise ErrorReply(
                400,
                f"max_tokens={max_tokens} is more than this server generates per request "
                f"({limit}); ask for fewer tokens or start the server with a larger "
                "--max-tokens-limit",
                param="max_tokens",
                code="max_tokens_too_large",
            )
        try:
            stops = req.stop_list()
        except ValueError as exc:
            raise ErrorReply(400, str(exc), param="stop") from None
        if len(stops) > self.config.max_stop_strings:
            raise ErrorReply(
                400,
                f"stop has {len(stops)} strings; this server accepts at most "
                f"{self.config.max_stop_strings}",
                param="stop",
            )
        temperature = req.temperature if req.temperature is not None else 0.0
        top_p = req.top_p if req.top_p is not None else 1.0
        if temperature < _GREEDY_BELOW or top_p == 0:
            temperature = 0.0  # logits / 1e-40 overflow float32; the limit of sampling is greedy
            top_p = 1.0  # top_p=0 keeps only the most likely token: greedy too
        penalties = (req.repetition_penalty, req.presence_penalty, req.frequency_penalty)
        if chat and all(p is None for p in penalties):  # the reply penalty, digits exempt
            reply = SamplingParams.reply(repetition_penalty=self.config.reply_penalty)
            repetition = reply.repetition_penalty
            scope = req.repetition_scope or reply.repetition_scope
            digits = reply.penalize_digits if req.penalize_digits is None else req.penalize_digits
        else:  # what the request names: OpenAI's and transformers' meaning
            repetition = req.repetition_penalty or 1.0
            scope = req.repetition_scope or "context"
            digits = req.penalize_digits is not False
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=req.top_k or 0,
            repetition_penalty=repetition,
            repetition_scope=scope,
            penalize_digits=digits,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            stop=stops,
            stop_token_ids=() if req.ignore_eos else _stop_ids(req.stop_token_ids),
            seed=req.seed,
        )

    # ------------------------------------------------------------------ jobs
    def chat_job(
        self, req: ChatCompletionBody, *, create: bool = False
    ) -> Callable[[Emit, ShouldStop], Completion]:
        """The blocking call that answers ``req``; ``create``: the server names the session
        (a response chain's) and creates it whatever ``auto_create_sessions`` says."""
        params = self.sampling(
            req, req.requested_max_tokens(), self.config.chat_max_tokens, chat=True
        )
        messages = [m.wire() for m in req.messages]
        tools = [t.model_dump(exclude_none=True, by_alias=True) for t in req.tools or ()]
        choice = req.tool_choice_value()
        schema = req.json_schema()
        sid = req.session
        backend = self.backend
        top = req.logprobs_wanted()
        if top is not None and not isinstance(backend, Scorer):
            raise ErrorReply(
                400,
                f"logprobs need a backend that scores tokens (the local model); this server "
                f"runs {type(backend).__name__}",
                param="logprobs",
            )
        reset = req.session_reset

        def run(emit: Emit, should_stop: ShouldStop) -> Completion:
            if not create:
                self._check_exists(sid)
            if reset and sid is not None:
                backend.delete_session(sid)  # start over: the request opens an empty session
            span = tracing.start_chat(None, model=backend.name, params=params)
            try:
                request = ChatRequest(
                    messages,
                    session=sid,
                    params=params,
                    tools=tools or None,
                    tool_choice=choice,
                    json_schema=schema,
                    logprobs=top,
                    parallel_tool_calls=req.parallel_tool_calls is not False,
                )
                completion = backend.complete(request, on_token=emit, should_stop=should_stop)
            except BaseException as exc:
                tracing.end_interrupted(span, exc)
                raise
            tracing.end_chat(span, completion)
            return completion

        return run

    def chat_logprobs(self, req: ChatCompletionBody, c: Completion) -> dict[str, Any] | None:
        """``choices[0].logprobs`` of a chat reply (None when the request did not ask)."""
        backend = self.backend
        if not req.logprobs or not isinstance(backend, Scorer):
            return None
        return chat_logprobs_json(c, backend.codec.decode, backend.codec.stop_ids)

    @staticmethod
    def tool_mode(req: ChatCompletionBody) -> tuple[bool, bool]:
        """(the answer may be a tool call, it must be one)."""
        active = bool(req.tools) and req.tool_choice != "none"
        forced = active and (
            req.tool_choice == "required" or isinstance(req.tool_choice, NamedToolChoice)
        )
        return active, forced

    def completion_job(self, req: CompletionBody) -> Callable[[Emit, ShouldStop], TextCompletion]:
        backend = self.backend
        if not isinstance(backend, SessionStore):
            raise ErrorReply(
                400,
                f"POST /v1/completions needs a backend that keeps sessions in process (the "
                f"local model); this server runs "
                f"{type(backend).__name__} (use POST /v1/chat/completions)",
            )
        params = self.sampling(req, req.max_tokens, self.config.completion_max_tokens)
        prompt = req.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            prompt = prompt[0]
        assert isinstance(prompt, str | list)
        sid = req.session

        def run(emit: Emit, should_stop: ShouldStop) -> TextCompletion:
            def go(session: Session) -> TextCompletion:
                return complete_text(
                    session,
                    prompt,  # type: ignore[arg-type]
                    params,
                    echo=req.echo,
                    logprobs=req.logprobs,
                    on_text=emit,
                    should_stop=should_stop,
                )

            if sid is None:
                with backend.get_session(None) as session:  # stateless: nothing outlives it
                    return go(session)
            self._check_exists(sid)
            if req.session_reset:
                backend.delete_session(sid)
            with backend.lock(sid):
                out = go(backend.get_session(sid))
                backend.save(sid)
                return out

        return run

    def _check_exists(self, sid: str | None) -> None:
        creatable = self.config.auto_create_sessions
        if sid is not None and not creatable and self.backend.session_info(sid) is None:
            raise UnknownSessionError(sid)

    async def _acquire(self, sid: str, gone: asyncio.Future[Any] | None) -> asyncio.Lock:
        """Wait for ``sid``'s lock (raises ClientGoneError when ``gone`` completes first); the
        caller releases it with :meth:`_release`."""
        lock = self._locks.enter(sid)
        try:
            await self._wait_for(lock, gone)
        except BaseException:
            self._locks.leave(sid)
            raise
        return lock

    def _release(self, sid: str, lock: asyncio.Lock) -> None:
        lock.release()
        self._locks.leave(sid)

    @staticmethod
    async def _wait_for(lock: asyncio.Lock, gone: asyncio.Future[Any] | None) -> None:
        acquire = asyncio.ensure_future(lock.acquire())
        waits: set[asyncio.Future[Any]] = {acquire}
        if gone is not None:
            waits.add(gone)
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if acquire in done:
            return
        acquire.cancel()
        try:
            await acquire
        except asyncio.CancelledError:
            pass
        else:
            lock.release()  # it was acquired just before the cancel landed
        raise ClientGoneError

    async def start(
        self,
        sid: str | None,
        fn: Callable[[Emit, ShouldStop], Any],
        gone: asyncio.Future[Any] | None = None,
    ) -> Job[Any]:
        """Start ``fn`` in a worker once the session is free (raises ClientGoneError when the
        ``gone`` future completes first). The session stays locked until the worker returns."""
        self.counters["requests"] += 1
        if sid is None:
            return self.runner.start(fn)
        lock = await self._acquire(sid, gone)
        try:
            job = self.runner.start(fn)
        except BaseException:
            self._release(sid, lock)
            raise
        job.on_finished(lambda: self._release(sid, lock))
        return job

    async def locked_call(self, sid: str, fn: Callable[[], Any]) -> Any:
        """Run a short blocking call on one session while holding its lock."""
        async with self._locks.hold(sid):
            return await self.runner.call(fn)

    # ------------------------------------------------------------------ sessions
    async def list_sessions(self) -> list[dict[str, Any]]:
        backend = self.backend
        names: list[str] = []
        if isinstance(backend, SessionLister):
            names = backend.list_sessions()
        out = []
        for name in names:
            out.append({"id": name, "object": "session", "saved_bytes": self._saved_bytes(name)})
        return out

    async def session_info(self, sid: str) -> dict[str, Any]:
        info = await self.locked_call(sid, lambda: self.backend.session_info(sid))
        if info is None:
            raise UnknownSessionError(sid)
        return {"object": "session", **info, "id": sid, "saved_bytes": self._saved_bytes(sid)}

    def _saved_bytes(self, sid: str) -> int:
        """Bytes of the session's files (base, journal, history; not its recall folder)."""
        backend = self.backend
        folder = backend.sessions_dir if isinstance(backend, SessionStore) else None
        if folder is None:
            return 0
        total = 0
        for part in session_files(folder / f"{sid}.session"):
            try:
                total += int(part.stat().st_size)
            except OSError:
                pass
        return total

    async def delete_session(self, sid: str) -> dict[str, Any]:
        found = await self.locked_call(sid, lambda: self.backend.delete_session(sid))
        if not found:
            raise UnknownSessionError(sid)
        return {"id": sid, "object": "session.deleted", "deleted": True}

    async def create_session(self, sid: str | None) -> dict[str, Any]:
        backend = self.backend
        if not isinstance(backend, SessionStore):
            raise ErrorReply(
                400,
                f"this server's backend ({type(backend).__name__}) creates sessions on their "
                "first request only",
            )
        name = sid or f"s-{uuid.uuid4().hex[:16]}"

        def create() -> bool:
            if backend.session_info(name) is not None:
                return False
            with backend.lock(name):
                backend.get_session(name)
                backend.save(name)
            return True

        if not await self.locked_call(name, create):
            raise ErrorReply(
                409,
                f"session {name!r} already exists (GET /v1/sessions/{name} shows it)",
                param="id",
                code="session_exists",
            )
        return await self.session_info(name)

    def close(self) -> None:
        self.runner.close()


def _stop_ids(ids: list[int] | None) -> tuple[int, ...] | None:
    return None if ids is None else tuple(ids)
