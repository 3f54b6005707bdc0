"""Client/server mode: LongTermMemory(url=...) against a real ``chroma run`` on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryRecord


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    binary = Path(sys.executable).parent / "chroma"
    if not binary.exists():
        found = shutil.which("chroma")
        if found is None:
            pytest.fail("the `chroma` command (installed with chromadb) is missing")
        binary = Path(found)
    port = _free_port()
    log = open(tmp_path / "chroma.log", "w")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(
        [
            str(binary),
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, ANONYMIZED_TELEMETRY="False"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"chroma server did not start:\n{(tmp_path / 'chroma.log').read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_memory_on_a_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    fact = MemoryRecord(kind="fact", text="the office wifi is called heron-5g", agent="a1")
    with LongTermMemory(url=chroma_server, embedder=HashEmbeddingFunction()) as memory:
        memory.add(fact)
        memory.add_many(
            [
                MemoryRecord(kind="episodic", text=f"standup {i} ran long", agent="a1")
                for i in range(20)
            ]
        )
        assert memory.count() == 21
        assert memory.search("what is the office wifi called", k=1)[0].record == fact

    # a second client (another agent, another process in real life) sees the same store
    with LongTermMemory(url=chroma_server, embedder=HashEmbeddingFunction()) as memory:
        assert memory.get(fact.id) == fact
        assert memory.delete(fact.id) == 1
        assert memory.count() == 20
    assert not list(tmp_path.glob("**/journal.jsonl"))  # the server owns durability
