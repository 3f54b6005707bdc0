"""The server's access log: one line per request on ``agentcore.server.access`` with method,
route, status, duration and a request id that the reply carries in ``x-request-id`` and a
500's logged traceback shares; with an SDK configured, a SERVER span per request and a chat
span per model call under it."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentcore import _tracing as tracing

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]
LINE = re.compile(r"^(\S+) (\S+) (\d{3}) (\d+\.\d) ms \[request id ([A-Za-z0-9._-]+)\]$")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    found = []
    for record in caplog.records:
        if record.name == "agentcore.server.access":
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            found.append(match)
    return found


async def test_each_request_is_one_line_with_its_id(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="agentcore.server.access"):
        r = await api.get("/health")
        mine = await api.get("/health", headers={"x-request-id": "trace-42"})
        odd = await api.get("/health", headers={"x-request-id": "no spaces allowed"})
    assert r.status_code == 200 and mine.headers["x-request-id"] == "trace-42"
    assert odd.headers["x-request-id"] != "no spaces allowed"
    lines = access_lines(caplog)
    assert [m.group(1, 2, 3) for m in lines] == [("GET", "/health", "200")] * 3
    ids = [m.group(5) for m in lines]
    assert ids == [r.headers["x-request-id"], "trace-42", odd.headers["x-request-id"]]
    assert len(set(ids)) == 3


async def test_the_route_template_is_logged_not_the_session_name(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="agentcore.server.access"):
        r = await api.get("/v1/sessions/private-diary")
    assert r.status_code == 404
    (line,) = access_lines(caplog)
    assert line.group(2) == "/v1/sessions/{sid}" and line.group(3) == "404"
    assert "private-diary" not in caplog.text


async def test_a_500_is_logged_under_the_request_id_the_client_gets(
    api: httpx.AsyncClient,
    tiny_backend: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database at /srv/private is gone")

    monkeypatch.setattr(tiny_backend, "complete", broken)
    with caplog.at_level(logging.INFO, logger="agentcore.server"):
        r = await api.post(CHAT, json={"messages": MSG, "max_tokens": 4})
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert f"request id {request_id}" in r.json()["error"]["message"]
    (line,) = access_lines(caplog)
    assert line.group(1, 2, 3, 5) == ("POST", CHAT, "500", request_id)
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert errors and request_id in errors[0].getMessage() and errors[0].exc_info is not None


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider is set once a process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.clear()
    memory.shutdown()  # the provider outlives the module: keep nothing for later tests


@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_is_a_server_span_with_its_model_call_under_it(
    api: httpx.AsyncClient, exporter: InMemorySpanExporter, stream: bool
) -> None:
    exporter.clear()
    r = await api.post(CHAT, json={"messages": MSG, "max_tokens": 3, "stream": stream})
    assert r.status_code == 200
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}
    (chat,) = [s for s in spans if s.name.startswith("chat ")]
    ancestors, node = [], chat  # FastAPI 0.12x+ adds its own request and endpoint spans
    while node.parent is not None:
        node = by_id[node.parent.span_id]
        ancestors.append(node)
    request = ancestors[-1]
    assert request.kind is trace.SpanKind.SERVER and chat.kind is trace.SpanKind.CLIENT
    assert request.name == f"POST {CHAT}"
    attrs = dict(request.attributes or {})
    assert attrs["http.route"] == CHAT and attrs["http.response.status_code"] == 200
    ids = [dict(a.attributes or {}).get("agentcore.request.id") for a in ancestors]
    assert r.headers["x-request-id"] in ids
    usage = dict(chat.attributes or {})
    assert usage["gen_ai.operation.name"] == "chat" and usage["gen_ai.usage.output_tokens"] > 0
    assert "gen_ai.usage.input_tokens" in usage and "gen_ai.response.finish_reasons" in usage


def test_without_a_framework_span_a_request_gets_its_own(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    span = tracing.start_request("GET", "/v1/sessions/mine", "id-1")
    assert span is not None  # no span is current here (older FastAPI traces nothing)
    tracing.end_request(span, "GET", "/v1/sessions/{sid}", 503, "id-1")
    (done,) = exporter.get_finished_spans()
    assert done.name == "GET /v1/sessions/{sid}" and done.kind is trace.SpanKind.SERVER
    attrs = dict(done.attributes or {})
    assert attrs["agentcore.request.id"] == "id-1" and attrs["http.response.status_code"] == 503
    assert done.status.status_code is trace.StatusCode.ERROR
