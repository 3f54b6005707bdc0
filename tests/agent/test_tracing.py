"""OpenTelemetry spans of agent runs on the scripted fake backend, read back from the SDK's
in-memory exporter: the invoke_agent > step > chat / execute_tool tree, GenAI attributes,
refused and failing tool calls, no secret in any attribute, and nothing recorded (and the
run unchanged) without an SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentcore import _tracing as tracing
from agentcore._extras import MissingExtraError
from agentcore.agent import Agent, AgentConfig, Policy
from agentcore.backends import FakeBackend, Reply
from agentcore.tools import ToolRegistry, tool
from agentcore.tools.builtin import default_tools

ROOT = Path(__file__).resolve().parents[2]
# values the policy's default secret patterns catch (an OpenAI-style key, a GitHub token)
OPENAI_KEY = "sk-proj-" + "Q7x9Lm2Kp4Rt8Vw1Zy3Nb6Hc"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SECRETS = (OPENAI_KEY, GITHUB_TOKEN)


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """One SDK provider for the process (OpenTelemetry sets the global provider once)."""
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.clear()
    memory.shutdown()  # the provider outlives the module: keep nothing for later tests


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[Callable[[], list[ReadableSpan]]]:
    exporter.clear()
    yield lambda: list(exporter.get_finished_spans())
    exporter.clear()


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name!r}: {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


def test_a_run_is_an_invoke_agent_span_with_steps_chats_and_tools(
    make_agent: Callable[..., Agent], spans: Callable[[], list[ReadableSpan]]
) -> None:
    fake = FakeBackend([Reply.call("calculate", expression="17*23"), "It is 391."])
    result = make_agent(fake).run("What is 17*23?")
    assert result.answer == "It is 391."
    got = spans()
    run = one(got, "invoke_agent tester")
    step1, step2 = one(got, "step 1"), one(got, "step 2")
    tool_span = one(got, "execute_tool calculate")
    chats = [s for s in got if s.name == "chat fake"]
    assert len(chats) == 2 and len(got) == 6
    # the tree: invoke_agent > step > (chat, execute_tool), one trace
    assert parent_of(run, got) is None
    assert parent_of(step1, got) is run and parent_of(step2, got) is run
    assert [parent_of(c, got) for c in chats] == [step1, step2]
    assert parent_of(tool_span, got) is step1
    assert {s.context.trace_id for s in got} == {run.context.trace_id}
    # GenAI attributes
    attrs = dict(run.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "tester"
    assert attrs["gen_ai.conversation.id"] == "agent-tester"
    assert attrs["gen_ai.request.model"] == "fake"
    assert attrs["agentcore.run.id"] == result.run_id
    assert attrs["agentcore.run.stop_reason"] == "answered" and attrs["agentcore.run.success"]
    assert attrs["agentcore.run.steps"] == 2 and attrs["agentcore.run.tool_calls"] == 1
    first, second = (dict(c.attributes or {}) for c in chats)
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.request.model"] == "fake"
    assert first["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert second["gen_ai.response.finish_reasons"] == ("stop",)
    assert second["gen_ai.usage.output_tokens"] > 0
    total_in = first["gen_ai.usage.input_tokens"] + second["gen_ai.usage.input_tokens"]
    total_out = first["gen_ai.usage.output_tokens"] + second["gen_ai.usage.output_tokens"]
    assert attrs["gen_ai.usage.input_tokens"] == total_in
    assert attrs["gen_ai.usage.output_tokens"] == total_out
    assert total_in + total_out == result.tokens
    t = dict(tool_span.attributes or {})
    assert t["gen_ai.operation.name"] == "execute_tool"
    assert t["gen_ai.tool.name"] == "calculate" and t["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in t  # content capture is opt-in
    assert all(s.status.status_code is StatusCode.UNSET for s in got)
    assert tool_span.kind is trace.SpanKind.INTERNAL and chats[0].kind is trace.SpanKind.CLIENT


def test_a_refused_call_is_marked_and_never_an_exception(
    make_agent: Callable[..., Agent],
    spans: Callable[[], list[ReadableSpan]],
    registry: ToolRegistry,
    spy: Any,
    rogue: Any,
) -> None:
    backend = rogue([("shell", {"command": "rm -rf /"}), "ok"])
    result = make_agent(backend, tools=registry).run("clean up")
    assert spy.ran == []
    verdicts = [e for e in result.events if e.type == "verdict" and e.action == "tool:shell"]
    assert verdicts and verdicts[0].decision != "allow"
    got = spans()
    refused = one(got, "execute_tool shell")
    attrs = dict(refused.attributes or {})
    assert attrs["agentcore.safety.decision"] == verdicts[0].decision
    assert attrs["agentcore.safety.rule"] == verdicts[0].rule
    assert refused.status.status_code is StatusCode.ERROR
    names = [e.name for e in refused.events]
    assert names == ["agentcore.safety.refused"] and "exception" not in names
    assert parent_of(refused, got) is one(got, "step 1")


def test_a_failing_tool_sets_error_status_and_an_exception_event(
    make_agent: Callable[..., Agent],
    spans: Callable[[], list[ReadableSpan]],
    no_learning: AgentConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def flaky(n: int) -> str:
        """Fail with the key in the message."""
        raise RuntimeError(f"backend down, key {OPENAI_KEY}")

    backend = FakeBackend([Reply.call("flaky", n=1), "it failed"])
    make_agent(backend, tools=[flaky], config=no_learning).run("try flaky")
    failed = one(spans(), "execute_tool flaky")
    assert failed.status.status_code is StatusCode.ERROR
    (event,) = failed.events
    assert event.name == "exception"
    attrs = dict(event.attributes or {})
    assert attrs["exception.type"] and "backend down" in str(attrs["exception.message"])
    assert OPENAI_KEY not in json.dumps(attrs) and "[REDACTED]" in str(attrs["exception.message"])
    assert dict(failed.attributes or {})["error.type"] == attrs["exception.type"]
    # the traceback is logged, outside the tool's effect guard (no refused read of this
    # file), and redacted like every other rendering: the exception's text quotes the key
    (logged,) = [r for r in caplog.records if r.name == "agentcore.agent._execution"]
    text = logged.getMessage()
    assert "Traceback" in text and "RuntimeError: backend down" in text and "in flaky" in text
    assert OPENAI_KEY not in text and "[REDACTED]" in text


def _everything(span: ReadableSpan) -> str:
    parts = [span.name, json.dumps(dict(span.attributes or {}), default=str)]
    for event in span.events:
        parts += [event.name, json.dumps(dict(event.attributes or {}), default=str)]
    parts.append(span.status.description or "")
    return "\n".join(parts)


@pytest.mark.parametrize("capture", [False, True])
def test_no_secret_reaches_a_span(
    make_agent: Callable[..., Agent],
    spans: Callable[[], list[ReadableSpan]],
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_learning: AgentConfig,
    capture: bool,
) -> None:
    monkeypatch.setenv(tracing.CAPTURE_CONTENT_ENV, "true" if capture else "false")

    @tool
    def note(text: str) -> str:
        """Keep a note and echo it."""
        return f"kept: {text}"

    tools = default_tools(workspace=workspace)
    tools.register(note)
    policy = Policy.default(workspace).with_changes(block_secret_arguments=False)
    backend = FakeBackend(
        [
            Reply.call("note", text=f"token {GITHUB_TOKEN} and {OPENAI_KEY}"),
            Reply.call("write_file", path="keys.txt", content=f"OPENAI_API_KEY={OPENAI_KEY}"),
            f"done; your key was {OPENAI_KEY}",
        ]
    )
    agent = make_agent(backend, tools=tools, policy=policy, config=no_learning)
    result = agent.run(f"keep {GITHUB_TOKEN} and {OPENAI_KEY} safe")
    assert result.tool_calls >= 1  # write_file may be refused (untrusted input): a span too
    got = spans()
    assert len([s for s in got if s.name.startswith("execute_tool")]) == 2
    for span in got:
        text = _everything(span)
        for secret in SECRETS:
            assert secret not in text, f"{span.name} holds a secret"
    noted = dict(one(got, "execute_tool note").attributes or {})
    if capture:  # the arguments as events and the audit log show them: redacted
        shown = json.loads(str(noted["gen_ai.tool.call.arguments"]))
        assert "[REDACTED]" in shown["text"]
    else:
        assert "gen_ai.tool.call.arguments" not in noted


def test_a_run_that_raises_marks_the_agent_span(
    make_agent: Callable[..., Agent],
    spans: Callable[[], list[ReadableSpan]],
    no_learning: AgentConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(request: Any) -> str:
        raise RuntimeError(f"lost the connection holding {OPENAI_KEY}")

    result = make_agent(FakeBackend([explode]), config=no_learning).run("hello")
    assert result.stop_reason == "error"
    got = spans()
    run = one(got, "invoke_agent tester")
    assert run.status.status_code is StatusCode.ERROR
    assert dict(run.attributes or {})["agentcore.run.stop_reason"] == "error"
    chat = one(got, "chat fake")
    assert chat.status.status_code is StatusCode.ERROR
    assert dict(chat.attributes or {})["error.type"] == "RuntimeError"
    assert all(OPENAI_KEY not in _everything(s) for s in got)
    # the failed run's traceback reaches the log redacted
    (logged,) = [r for r in caplog.records if "failed" in r.getMessage() and r.levelname == "ERROR"]
    assert "RuntimeError: lost the connection" in logged.getMessage()
    assert OPENAI_KEY not in logged.getMessage() and logged.exc_info is None


def test_without_an_sdk_nothing_is_recorded(tmp_path: Path) -> None:
    """A fresh interpreter with only the API: every span the agent starts is a no-op."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from opentelemetry import trace
        from agentcore import _tracing
        from agentcore.agent import Agent
        from agentcore.backends import FakeBackend, Reply
        from agentcore.memory import HashEmbeddingFunction, LongTermMemory

        started = []
        real = _tracing._tracer.start_span
        def spy(*args, **kwargs):
            span = real(*args, **kwargs)
            started.append(span)
            return span
        _tracing._tracer.start_span = spy
        tmp = Path(sys.argv[1])
        memory = LongTermMemory(tmp / "memory", embedder=HashEmbeddingFunction())
        backend = FakeBackend([Reply.call("calculate", expression="2+2"), "4"])
        agent = Agent(backend, memory=memory, home=tmp / "home", planner="off")
        result = agent.run("2+2?")
        assert result.answer == "4", result
        assert not isinstance(trace.get_tracer_provider(), type(None))
        print(len(started), sum(s.is_recording() for s in started),
              type(trace.get_tracer_provider()).__name__)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    started, recording, provider = out.stdout.split()
    assert int(started) == 6 and int(recording) == 0 and provider == "ProxyTracerProvider"


def test_configure_names_the_extra_when_the_exporter_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name.startswith("opentelemetry.exporter") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtraError, match=r"agentcore\[otel\]") as info:
        tracing.configure("otlp")
    assert "--trace otlp" in str(info.value)


def test_the_lesson_summariser_call_is_a_chat_span_under_the_run(
    make_agent: Callable[..., Agent], spans: Callable[[], list[ReadableSpan]]
) -> None:
    @tool
    def broken(n: int) -> str:
        """Always fails."""
        raise RuntimeError("no")

    lesson = "LESSON: check the input first."
    backend = FakeBackend([Reply.call("broken", n=1), "it did not work", lesson, lesson])
    config = AgentConfig(distill_lessons=True)  # off by default
    result = make_agent(backend, tools=[broken], config=config).run("use broken")
    assert not result.success
    got = spans()
    run = one(got, "invoke_agent tester")
    chats = [s for s in got if s.name == "chat fake"]
    after_steps = [c for c in chats if parent_of(c, got) is run]  # not inside a step
    assert len(chats) == len(backend.requests) >= 3 and after_steps
    assert all(c.end_time is not None and c.end_time <= (run.end_time or 0) for c in chats)
