"""Fixtures for memory/ tests: a hash-embedder store per test and a subprocess runner.

Subprocess scripts start with ``NETWORK_GUARD``, which makes any non-loopback connection or
name lookup raise inside the child, so tests that restart or kill a real process are held to
the same no-network rule as the suite itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentcore.memory import HashEmbeddingFunction, LongTermMemory

NETWORK_GUARD = textwrap.dedent(
    """
    import ipaddress, socket

    class NetworkBlockedError(RuntimeError):
        pass

    def _loopback(address):
        if not isinstance(address, tuple):
            return True
        host = address[0].decode() if isinstance(address[0], bytes) else address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    _connect, _connect_ex, _getaddrinfo = (
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    )

    def _guard(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise NetworkBlockedError(f"blocked connection to {address!r}")

    def connect(self, address):
        _guard(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _guard(self, address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "localhost") and not _loopback((name,)):
            raise NetworkBlockedError(f"blocked lookup of {name!r}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
        connect, connect_ex, getaddrinfo
    )
    """
)

ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANONYMIZED_TELEMETRY="False",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS="error::ResourceWarning",
    )
    env.update(extra)
    return env


def script_text(body: str) -> str:
    return NETWORK_GUARD + "\n" + textwrap.dedent(body)


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[[str], Path]:
    """Write a script body (network guard first) to a file, for tests that drive the process."""

    def write(body: str) -> Path:
        script = tmp_path / f"script_{abs(hash(body))}.py"
        script.write_text(script_text(body))
        return script

    return write


@pytest.fixture
def run_script(write_script: Callable[[str], Path]) -> ScriptRunner:
    """Run a Python script body in a fresh interpreter (network guarded); check it passed.

    ``env`` adds to (or overrides) the child's environment.
    """

    def run(
        body: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        script = write_script(body)
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(**(env or {})),
        )
        assert done.returncode == 0, f"script failed:\n{done.stdout}\n{done.stderr}"
        return done

    return run


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def ltm(store_path: Path) -> Iterator[LongTermMemory]:
    memory = LongTermMemory(store_path, embedder=HashEmbeddingFunction())
    yield memory
    memory.close()
