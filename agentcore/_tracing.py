"""OpenTelemetry spans for agent runs, steps, model calls and tool calls.

Owns the agentcore tracer and the helpers its call sites use in one line each, following the
OpenTelemetry GenAI semantic conventions (development status; the names below are those of
semantic-conventions 1.37+):

- ``invoke_agent {agent}`` (INTERNAL): one run of :meth:`Agent.stream`; ``gen_ai.operation.name``
  ``invoke_agent``, ``gen_ai.agent.name``, ``gen_ai.conversation.id`` (the model session),
  ``gen_ai.request.model``, the run's token totals and ``agentcore.run.*`` (id, steps, stop
  reason, success);
- ``step {n}`` (INTERNAL, agentcore's own): one model turn and the tool calls it chose;
- ``chat {model}`` (CLIENT): one backend call; ``gen_ai.request.*`` sampling parameters,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.response.finish_reasons``;
- ``execute_tool {tool}`` (INTERNAL): ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
  ``gen_ai.tool.type``; a failing tool sets ERROR status, ``error.type`` and an ``exception``
  event; a call the safety filter refuses never ran: it gets ``agentcore.safety.decision`` /
  ``agentcore.safety.rule``, an ``agentcore.safety.refused`` event and ERROR status, never an
  exception.

Only ``opentelemetry-api`` is used here: every span is a no-op until the application installs
an SDK tracer provider (its own, or :func:`configure` behind ``agentcore ... --trace``, which
needs the ``[otel]`` extra). Prompts, replies, tool arguments and results are never recorded by
default; with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` a tool call's
arguments are, as the caller redacted them. Exception text is recorded only after the
caller's redaction. Never decides anything about a run: it only describes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentcore._extras import require_extra
from agentcore._version import __version__

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "Exporter",
    "add_trace_argument",
    "capture_content",
    "configure",
    "configure_from",
    "current",
    "end",
    "end_chat",
    "end_interrupted",
    "end_request",
    "fail",
    "refuse",
    "start_agent",
    "start_chat",
    "start_request",
    "start_step",
    "start_tool",
    "tool_failed",
]

log = logging.getLogger(__name__)

Exporter = Literal["console", "otlp"]
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
PROVIDER = "agentcore"  # gen_ai.provider.name: no well-known value fits a local model core

_tracer = trace.get_tracer("agentcore", __version__)  # a proxy: follows a provider set later


def capture_content() -> bool:
    """Whether the user opted in to recording (redacted) tool arguments on spans."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def _start(name: str, parent: Span | None, kind: SpanKind, attributes: Mapping[str, Any]) -> Span:
    context = trace.set_span_in_context(parent) if parent is not None else None
    attrs = {k: v for k, v in attributes.items() if v is not None}
    return _tracer.start_span(name, context=context, kind=kind, attributes=attrs)


# ---------------------------------------------------------------------- spans, parent first


def start_agent(agent: str, *, run_id: str, session: str, model: str, source: str) -> Span:
    """The ``invoke_agent`` span of one run; its parent is whatever span is current."""
    return _tracer.start_span(
        f"invoke_agent {agent}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.agent.name": agent,
            "gen_ai.conversation.id": session,
            "gen_ai.request.model": model,
            "agentcore.run.id": run_id,
            "agentcore.run.source": source,
        },
    )


def start_step(parent: Span, number: int, *, task: str | None = None) -> Span:
    """One step of a run: a model turn and the tool calls it chose."""
    attributes = {"agentcore.step.number": number, "agentcore.task.id": task}
    return _start(f"step {number}", parent, SpanKind.INTERNAL, attributes)


def start_chat(parent: Span | None, *, model: str, params: Any = None) -> Span:
    """One backend call (``params``: the call's :class:`SamplingParams`, when known)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": model,
    }
    if params is not None:
        attributes["gen_ai.request.max_tokens"] = getattr(params, "max_tokens", None)
        attributes["gen_ai.request.temperature"] = getattr(params, "temperature", None)
        attributes["gen_ai.request.top_p"] = getattr(params, "top_p", None)
        attributes["gen_ai.request.seed"] = getattr(params, "seed", None)
    return _start(f"chat {model}", parent, SpanKind.CLIENT, attributes)


def end_chat(span: Span, result: Any) -> None:
    """Record what a model call returned and end its span: a backend's :class:`Completion`
    (``usage``, ``tool_calls``) or the core's :class:`GenerationResult` (``prompt_tokens``,
    ``token_ids``)."""
    if span.is_recording():
        usage = getattr(result, "usage", None)
        if usage is not None:
            input_tokens, output_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            input_tokens, output_tokens = result.prompt_tokens, len(result.token_ids)
        span.set_attribute("gen_ai.usage.input_tokens", int(input_tokens))
        span.set_attribute("gen_ai.usage.output_tokens", int(output_tokens))
        span.set_attribute("gen_ai.response.finish_reasons", [str(result.finish_reason)])
        calls = getattr(result, "tool_calls", None)
        if calls is not None:
            span.set_attribute("agentcore.response.tool_calls", len(calls))
    span.end()


def end_interrupted(span: Span, exc: BaseException) -> None:
    """End a span its work left by ``exc``: an error (its type only: a backend's message can
    quote the request), or a cancellation (``agentcore.cancelled``), which is not one."""
    if isinstance(exc, Exception):
        tool_failed(span, type(exc).__qualname__, "")
    else:
        span.set_attribute("agentcore.cancelled", True)
    span.end()


def start_tool(
    parent: Span | None,
    name: str,
    call_id: str,
    *,
    description: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Span:
    """An ``execute_tool`` span. ``arguments`` (already redacted by the caller) are recorded
    only when :func:`capture_content` is on."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": description,
    }
    if arguments is not None and capture_content():
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments, default=str)
    return _start(f"execute_tool {name}", parent, SpanKind.INTERNAL, attributes)


def start_request(method: str, path: str, request_id: str) -> Span | None:
    """A SERVER span for one HTTP request of the model server, or None when one is current
    already (FastAPI 0.12x and later trace their requests themselves: the request id goes on
    theirs)."""
    outer = trace.get_current_span()
    if outer.is_recording():
        outer.set_attribute("agentcore.request.id", request_id)
        return None
    attributes = {"http.request.method": method, "url.path": path}
    return _tracer.start_span(f"{method}", kind=SpanKind.SERVER, attributes=attributes)


def end_request(
    span: Span | None, method: str, route: str | None, status: int, request_id: str
) -> None:
    """Name our span after the route template (``POST /v1/chat/completions``), record the
    status (ERROR for a 5xx) and end it (None: the framework's span, nothing to do)."""
    if span is None:
        return
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("agentcore.request.id", request_id)
    if status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
    span.end()


# ---------------------------------------------------------------------- outcomes


def refuse(span: Span, decision: str, rule: str, reason: str) -> None:
    """Mark a call the safety filter refused (it never ran: an event, not an exception).
    ``reason`` must already be redacted."""
    span.set_attribute("agentcore.safety.decision", decision)
    span.set_attribute("agentcore.safety.rule", rule)
    span.set_attribute("error.type", "agentcore.refused")
    span.add_event("agentcore.safety.refused", {"agentcore.safety.rule": rule, "reason": reason})
    span.set_status(Status(StatusCode.ERROR, f"refused by the safety filter ({rule})"))


def tool_failed(span: Span, error_type: str, message: str) -> None:
    """Mark a tool that ran and failed; ``message`` must already be redacted."""
    span.set_attribute("error.type", error_type)
    span.add_event("exception", {"exception.type": error_type, "exception.message": message})
    span.set_status(Status(StatusCode.ERROR, error_type))


def fail(span: Span, exc: BaseException, redact: Callable[[str], str]) -> None:
    """Mark ``span`` failed by ``exc``; its message goes through ``redact`` (exception text can
    quote prompts, paths and secrets), so no stack trace is attached."""
    error_type = type(exc).__qualname__
    tool_failed(span, error_type, redact(str(exc))[:500])


def end(span: Span | None, **attributes: Any) -> None:
    """Set the attributes that are not None and end ``span`` (None: nothing to end)."""
    if span is None:
        return
    if span.is_recording():
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, value)
    span.end()


@contextlib.contextmanager
def current(span: Span | None) -> Iterator[None]:
    """Make ``span`` the current span for the block, so work started inside it (a worker
    thread, a task, an instrumented HTTP client) nests under it. Never put a ``yield`` of an
    async generator inside: the span would leak into the consumer's context."""
    if span is None:
        yield
        return
    with trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        yield


# ---------------------------------------------------------------------- the command line


def add_trace_argument(parser: Any, choices: Sequence[Exporter] = ("console", "otlp")) -> None:
    """``--trace console|otlp`` on a command that runs agents or the model."""
    parser.add_argument(
        "--trace",
        choices=tuple(choices),
        default=None,
        help="emit OpenTelemetry spans: 'console' prints them to stderr, 'otlp' sends them "
        "over HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT (needs the [otel] extra)",
    )


def configure_from(namespace: Any) -> None:
    """:func:`configure` for a parsed command line with :func:`add_trace_argument`'s option."""
    exporter = getattr(namespace, "trace", None)
    if exporter is not None:
        configure(exporter)


def configure(exporter: Exporter, *, service: str = "agentcore") -> Any:
    """Install an SDK tracer provider exporting to ``exporter`` and return it.

    ``console`` writes each span as JSON to stderr; ``otlp`` sends batches over HTTP to
    ``$OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``). Raises
    :class:`~agentcore._extras.MissingExtraError` naming the ``[otel]`` extra when the SDK or
    the exporter is not installed. Spans still open at exit are flushed by the SDK's exit hook.
    """
    modules: Sequence[str] = ("opentelemetry.sdk",)
    if exporter == "otlp":
        modules = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    require_extra("otel", *modules, feature=f"--trace {exporter}")
    # the SDK is an optional extra: imported only when tracing is asked for
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanProcessor,
    )

    attributes = {"service.version": __version__}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:  # the standard variables name the service when they are set
        attributes["service.name"] = service
    provider = TracerProvider(resource=Resource.create(attributes))
    processor: SpanProcessor
    if exporter == "console":  # stderr: stdout stays the command's own output
        processor = SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        raise ValueError(f"exporter={exporter!r}: expected 'console' or 'otlp'")
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    log.info("OpenTelemetry tracing on: %s exporter", exporter)
    return provider
