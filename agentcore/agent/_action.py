"""Action selection: one model turn choosing a reply or a tool call among permitted tools.

Owns :class:`ActionSelector`, which sends the turn's new messages to the backend session (one
:class:`~agentcore.backends.ChatRequest` to ``complete``) with ``tools`` only the tools the
safety filter permits now (a local backend decodes under the grammar of exactly those tools, so
a call to anything else cannot be written) and ``tool_choice`` forcing a plan task's tool when
there is one. A call whose arguments the registry refuses (a pydantic validator, a rule the
grammar cannot enforce) is decoded once more with the validation error as its result; one retry
at most. The blocking backend call runs on a worker thread; reply text streams out as it is
generated (tool-call text never does) and ``should_stop`` ends generation early; the turn's last
item is its :class:`Turn` (the completion, and the call refused before the retry, if any). Never
runs tools and never decides whether a call is allowed (the safety filter does).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import Span

from agentcore import _tracing as tracing
from agentcore.agent._grounding import ground_tool
from agentcore.backends import ChatRequest, Completion, Message, ModelBackend, ToolChoice, Usage
from agentcore.core.params import SamplingParams
from agentcore.tools import TOOL_CALL_OPEN, ToolArgumentError, ToolError, ToolRegistry

__all__ = ["ActionSelector", "RefusedCall", "Turn", "TurnRequest"]

log = logging.getLogger("agentcore.agent")


class TurnRequest:
    """One model turn's input: messages, permitted tools, the tool choice, grounding text."""

    def __init__(
        self,
        messages: Sequence[Message],
        tools: list[str],
        tool_choice: ToolChoice = "auto",
        *,
        step: str | None = None,
        results: Sequence[str] = (),
    ) -> None:
        self.messages = list(messages)
        self.tools = tools
        self.tool_choice: ToolChoice = tool_choice if tools else "none"
        self.step = step  # ground string arguments in this text (and ``results``)
        self.results = list(results)


@dataclasses.dataclass(frozen=True)
class RefusedCall:
    """A call whose arguments the registry refused; the model was asked once more."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    error: str


@dataclasses.dataclass(frozen=True)
class Turn:
    """What one model turn came to: the completion (usage summed over a retry) and the call
    refused before the retry, if there was one (it never ran, but is audited)."""

    completion: Completion
    refused: RefusedCall | None = None


class _CallTextFilter:
    """Passes reply text, swallows a tool call's text (which starts with ``<tool_call>``)."""

    def __init__(self) -> None:
        self.held = ""
        self.decided: bool | None = None  # True: text reply, False: tool call

    def feed(self, piece: str) -> str:
        if self.decided is True:
            return piece
        if self.decided is False:
            return ""
        self.held += piece
        head = self.held.lstrip()
        if head.startswith(TOOL_CALL_OPEN):
            self.decided = False
            return ""
        if TOOL_CALL_OPEN.startswith(head):
            return ""  # could still become a call
        self.decided = True
        out, self.held = self.held, ""
        return out

    def flush(self) -> str:
        if self.decided is None and not self.held.lstrip().startswith(TOOL_CALL_OPEN[:1]):
            out, self.held = self.held, ""
            return out
        return ""


class ActionSelector:
    """Runs model turns for one agent session."""

    def __init__(
        self,
        backend: ModelBackend,
        registry: ToolRegistry,
        *,
        session: str,
        params: SamplingParams,
        hints: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.session = session
        self.params = params
        self.hints = hints or {}
        self._cache: dict[str, dict[str, Any]] = {}

    def openai_tools(self, names: list[str]) -> list[dict[str, Any]]:
        """The OpenAI entries of ``names``, with the decoding hints applied."""
        out = []
        for name in names:
            if name not in self._cache:
                self._cache[name] = hinted_tool(
                    self.registry.get(name).openai_tool(),
                    {**self.hints.get("*", {}), **self.hints.get(name, {})},
                )
            out.append(self._cache[name])
        return out

    async def turn(
        self,
        request: TurnRequest,
        should_stop: Callable[[], bool],
        *,
        parent: Span | None = None,
    ) -> AsyncIterator[str | Turn]:
        """Yield reply text pieces as they are generated, then the :class:`Turn` as the last
        item. A call whose arguments the registry refuses is decoded once more,
        with the validation error as the call's result (never twice: not when the backend
        retried already). Cancelling the consumer stops generation and waits for the worker,
        so the session is never left mid-write. Each backend call gets a ``chat`` span under
        ``parent``."""
        tools = self.openai_tools(request.tools) if request.tools else None
        if tools and request.step is not None:
            tools = [ground_tool(t, request.step, request.results) for t in tools]
        first: Completion | None = None
        async for item in self._chat(request.messages, tools, request, should_stop, parent):
            if isinstance(item, Completion):
                first = item
            else:
                yield item
        assert first is not None
        refused = self._refused(first) if first.argument_retries == 0 else None
        if refused is None:
            yield Turn(first)
            return
        call_id, name, error = refused
        log.info("tool call %r has invalid arguments; asking the model once more", name)
        arguments = next(dict(c.arguments) for c in first.tool_calls if c.id == call_id)
        note = {"role": "tool", "tool_call_id": call_id, "name": name, "content": error}
        second: Completion | None = None
        async for item in self._chat([note], tools, request, should_stop, parent):
            if isinstance(item, Completion):
                second = item
            else:
                yield item
        assert second is not None
        u1, u2 = first.usage, second.usage
        usage = Usage(
            u1.prompt_tokens + u2.prompt_tokens,
            u1.completion_tokens + u2.completion_tokens,
            u2.session_tokens,
        )
        retried = dataclasses.replace(second, usage=usage, argument_retries=1)
        yield Turn(retried, RefusedCall(call_id, name, arguments, error))

    def _refused(self, completion: Completion) -> tuple[str, str, str] | None:
        """(call id, tool, the validation error) of the first call the registry refuses."""
        for call in completion.tool_calls:
            try:
                self.registry.validate(call.name, dict(call.arguments))
            except ToolArgumentError as exc:
                return call.id, call.name, str(exc)
            except ToolError:
                continue  # an unknown tool: the safety filter's to refuse
        return None

    async def _chat(
        self,
        messages: Sequence[Message],
        tools: list[dict[str, Any]] | None,
        request: TurnRequest,
        should_stop: Callable[[], bool],
        parent: Span | None,
    ) -> AsyncIterator[str | Completion]:
        """One backend call (``complete``) on a worker thread, its reply text streamed, its
        completion the last item. The call runs inside its ``chat`` span (the worker thread
        inherits it, so an instrumented HTTP client nests its spans under it)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        text_filter = _CallTextFilter()
        cancelled = False

        def on_token(piece: str) -> None:
            shown = text_filter.feed(piece)
            if shown:
                loop.call_soon_threadsafe(queue.put_nowait, shown)

        def stop() -> bool:
            return cancelled or should_stop()

        chat = ChatRequest(
            messages,
            session=self.session,
            params=self.params,
            tools=tools,
            tool_choice=request.tool_choice if tools else "auto",
        )
        span = tracing.start_chat(parent, model=self.backend.name, params=self.params)
        with tracing.current(span):  # the worker's task copies the context here
            work = asyncio.ensure_future(
                asyncio.to_thread(self.backend.complete, chat, on_token=on_token, should_stop=stop)
            )
        ended = False
        getter: asyncio.Future[str] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                finished, _ = await asyncio.wait(
                    {work, getter}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in finished:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                break
            completion = work.result()
            tracing.end_chat(span, completion)
            ended = True
            rest = text_filter.flush()
            if rest and not completion.tool_calls:
                yield rest
            yield completion
        except BaseException as exc:
            cancelled = True
            if getter is not None:
                getter.cancel()
            if not work.done():
                await asyncio.shield(asyncio.wait({work}))
            if not ended:
                tracing.end_interrupted(span, exc)
            raise


def hinted_tool(entry: dict[str, Any], hints: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``entry`` with extra keywords merged into its string arguments' schemas. A hint only
    applies to a string property, and ``maxLength`` only ever gets smaller."""
    if not hints:
        return entry
    entry = copy.deepcopy(entry)
    props = entry.get("function", {}).get("parameters", {}).get("properties", {})
    for arg, extra in hints.items():
        schema = props.get(arg)
        if not isinstance(schema, dict) or schema.get("type") != "string":
            continue
        for key, value in extra.items():
            if key == "maxLength" and "maxLength" in schema:
                schema[key] = min(int(schema[key]), int(value))
            elif key == "pattern" and "pattern" in schema:
                continue  # the tool's own pattern stays (two patterns cannot be merged)
            else:
                schema[key] = value
    return entry
