"""``--trace`` on the commands that run agents or the model: ``agentcore sim --trace console``
prints the spans of a scripted run (no weights) to stderr, and a missing exporter is one line
naming the ``[otel]`` extra."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcore import cli

ROOT = Path(__file__).resolve().parents[1]


def console_spans(text: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter wrote (one per span), skipping log lines."""
    decoder = json.JSONDecoder()
    spans, pos = [], 0
    while (start := text.find("{\n", pos)) != -1:
        obj, pos = decoder.raw_decode(text, start)
        spans.append(obj)
    return spans


@pytest.mark.parametrize("service", [None, "town-sim"])
def test_sim_trace_console_prints_the_span_tree(tmp_path: Path, service: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if service is not None:
        env["OTEL_SERVICE_NAME"] = service
    out = subprocess.run(
        [
            *(sys.executable, "-m", "agentcore.cli", "sim", "town", "--model", "scripted"),
            *("--ticks", "1", "--out", str(tmp_path / "run"), "--trace", "console"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ticks done" in out.stdout and '"trace_id"' not in out.stdout  # spans go to stderr
    spans = console_spans(out.stderr)
    by_id = {s["context"]["span_id"]: s for s in spans}
    runs = [s for s in spans if s["name"].startswith("invoke_agent ")]
    assert len(runs) >= 2 and all(s["parent_id"] is None for s in runs)
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert chats, [s["name"] for s in spans]
    for chat in chats:  # chat > step > invoke_agent
        step = by_id[chat["parent_id"]]
        assert step["name"].startswith("step ")
        assert by_id[step["parent_id"]]["name"].startswith("invoke_agent ")
    tools = [s for s in spans if s["name"].startswith("execute_tool ")]
    assert tools and all(by_id[t["parent_id"]]["name"].startswith("step ") for t in tools)
    names = {s["resource"]["attributes"]["service.name"] for s in spans}
    assert names == {service or "agentcore"}


def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name.startswith("opentelemetry.exporter") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    rc = cli.main(
        ["sim", "town", "--model", "scripted", "--out", str(tmp_path / "run"), "--trace", "otlp"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert 'pip install "agentcore[otel]"' in err and "--trace otlp" in err
    assert not (tmp_path / "run").exists()  # nothing ran


@pytest.mark.parametrize("command", [["serve"], ["chat", "--plain"], ["sim"]])
def test_the_commands_that_run_models_take_trace(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    assert "--trace {console,otlp}" in capsys.readouterr().out


def test_the_assistant_takes_trace_otlp_only(capsys: pytest.CaptureFixture[str]) -> None:
    from agentcore.apps.assistant import parse_args

    assert parse_args(["--trace", "otlp"]).trace == "otlp"
    assert parse_args([]).trace is None
    with pytest.raises(SystemExit):  # console spans would draw over the full-screen app
        parse_args(["--trace", "console"])
    assert "invalid choice: 'console'" in capsys.readouterr().err


def test_a_plain_chat_turn_is_a_chat_span(
    tiny_engine: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``agentcore chat --plain`` on the tiny model: one turn, one chat span with its usage."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentcore import chat_cli

    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider is set once a process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(chat_cli, "load_engine", lambda ns: tiny_engine)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello there\n"))
    ns = cli.build_parser().parse_args(["chat", "--plain", "--max-tokens", "4"])
    try:
        assert chat_cli.run_chat(ns) == 0
        (span,) = [s for s in memory.get_finished_spans() if s.name == "chat tiny-llama"]
    finally:
        memory.clear()  # the provider outlives the test: keep nothing for later ones
        memory.shutdown()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.request.max_tokens"] == 4 and attrs["gen_ai.usage.input_tokens"] > 0
    assert 0 < attrs["gen_ai.usage.output_tokens"] <= 4
    assert attrs["gen_ai.response.finish_reasons"] in (("length",), ("stop",))
    assert "hello there" not in str(attrs)
