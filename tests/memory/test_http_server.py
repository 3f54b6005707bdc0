"""Client/server mode: LongTermMemory(url=...) against a real ``chroma run`` on loopback.

The server is the ``chroma`` command installed with chromadb, started on a free 127.0.0.1 port
over a temporary folder. The long-term memory suite's core cases (add, get, delete, search
among noise, filters by kind / agent / time / trust, ranking, listing, rejected batches) run
here again through chromadb's ``HttpClient`` against one server, each test in a namespace of
its own; then reopening from a second client and after a restart, acknowledged writes
surviving ``kill -9`` of the server, and the places an agent's memory is given as a URL
(``Agent(memory=URL)``, ``agentcore chat --memory-url``, ``agentcore sim --memory-url``).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

import httpx
import pytest

from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryRecord

pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chroma_binary() -> Path:
    binary = Path(sys.executable).parent / "chroma"
    if binary.exists():
        return binary
    found = shutil.which("chroma")
    if found is None:
        pytest.fail("the `chroma` command (installed with chromadb) is missing")
    return Path(found)


class ChromaServer:
    """``chroma run`` over ``path`` on 127.0.0.1; can be stopped, killed and started again."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        port = _free_port()  # a new port each time: the old one may linger in TIME_WAIT
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [str(_chroma_binary()), "run", "--path", str(self.path), *self._address(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, ANONYMIZED_TELEMETRY="False"),
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"chroma server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    @staticmethod
    def _address(port: int) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(port)]

    def kill(self) -> None:
        """``kill -9``: no chance to flush or close anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module's tests that do not restart it."""
    folder = tmp_path_factory.mktemp("chroma")
    server = ChromaServer(folder / "data", folder / "chroma.log")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A server of this test's own (it is killed or restarted)."""
    srv = ChromaServer(tmp_path / "server", tmp_path / "chroma.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


_namespaces = itertools.count()


@pytest.fixture
def ltm(shared_server: str) -> Iterator[LongTermMemory]:
    """The suite's store, on the server, in a namespace no other test uses."""
    memory = LongTermMemory(
        url=shared_server, embedder=HashEmbeddingFunction(), namespace=f"t{next(_namespaces):03d}"
    )
    yield memory
    memory.close()


def _load_suite() -> ModuleType:
    path = Path(__file__).with_name("test_long_term.py")
    spec = importlib.util.spec_from_file_location("long_term_suite_on_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The suite's core cases, collected here again: they take the ``ltm`` fixture above.
_suite = _load_suite()
test_add_get_count_delete = _suite.test_add_get_count_delete
test_search_finds_the_relevant_memory_among_noise = (
    _suite.test_search_finds_the_relevant_memory_among_noise
)
test_filters_by_kind_agent_time_and_trust = _suite.test_filters_by_kind_agent_time_and_trust
test_recency_and_importance_reorder_equally_relevant_memories = (
    _suite.test_recency_and_importance_reorder_equally_relevant_memories
)
test_list_records_oldest_first_with_last = _suite.test_list_records_oldest_first_with_last
test_bad_records_rejected_and_batch_is_all_or_nothing = (
    _suite.test_bad_records_rejected_and_batch_is_all_or_nothing
)
test_bad_embeddings_rejected = _suite.test_bad_embeddings_rejected
test_search_argument_errors = _suite.test_search_argument_errors
test_closed_memory_refuses_work = _suite.test_closed_memory_refuses_work


def _notes(n: int, agent: str = "a1") -> list[MemoryRecord]:
    return [
        MemoryRecord(kind="episodic", text=f"standup {i} ran long", agent=agent) for i in range(n)
    ]


def test_a_second_client_and_a_restarted_server_see_the_same_store(
    server: ChromaServer, tmp_path: Path
) -> None:
    fact = MemoryRecord(kind="fact", text="the office wifi is called heron-5g", agent="a1")
    with LongTermMemory(url=server.url, embedder=HashEmbeddingFunction()) as memory:
        memory.add(fact)
        memory.add_many(_notes(20))
        assert memory.count() == 21
        assert memory.search("what is the office wifi called", k=1)[0].record == fact

    # a second client (another agent, another process in real life) sees the same store
    with LongTermMemory(url=server.url, embedder=HashEmbeddingFunction()) as memory:
        assert memory.get(fact.id) == fact
        assert memory.delete(fact.id) == 1
        memory.add(MemoryRecord(kind="lesson", text="book the big room for standups", agent="a1"))

    server.stop()
    server.start()  # a clean restart on the same folder
    with LongTermMemory(url=server.url, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 21
        assert memory.count("lesson") == 1
        hit = memory.search("which room for standups?", k=1, kinds=["lesson"])[0]
        assert hit.record.text == "book the big room for standups"
    assert not list(tmp_path.glob("**/journal.jsonl"))  # the server owns durability


def test_acknowledged_writes_survive_kill_9_of_the_server(server: ChromaServer) -> None:
    acknowledged: list[MemoryRecord] = []
    memory = LongTermMemory(url=server.url, embedder=HashEmbeddingFunction())
    try:
        memory.add_many(_notes(300, agent="bulk"))  # one batch, then single writes
        for i in range(60):
            acknowledged.append(
                memory.add(
                    MemoryRecord(
                        kind="fact", text=f"fact {i}: locker {i} holds kit {i}", agent="a2"
                    )
                )
            )
        server.kill()  # right after the last acknowledgement
        with pytest.raises(Exception):  # noqa: B017 - chromadb raises its own or httpx's errors
            memory.count()
    finally:
        memory.close()

    server.start()
    with LongTermMemory(url=server.url, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count("episodic") == 300
        assert memory.count("fact") == 60
        assert [memory.get(r.id) for r in acknowledged] == acknowledged
        hit = memory.search("which locker holds kit 42?", k=1, agent="a2")[0]
        assert hit.record == acknowledged[42]
        memory.add(MemoryRecord(kind="fact", text="written after the restart", agent="a2"))
        assert memory.count("fact") == 61


def test_an_agent_given_a_memory_url_keeps_memory_on_the_server(
    shared_server: str, tmp_path: Path
) -> None:
    from agentcore import Agent
    from agentcore.backends import FakeBackend

    agent = Agent(
        name="ada", model=FakeBackend(default="ok"), memory=shared_server, home=tmp_path / "ada"
    )
    try:
        assert agent.memory.url == shared_server and agent.memory.path is None
        record = MemoryRecord(kind="fact", text="ada's locker is 7", agent="ada")
        agent.memory.add(record, embedding=[1.0] + [0.0] * 383)
    finally:
        agent.close()
    assert not (tmp_path / "ada" / "memory").exists()  # nothing embedded on disk
    with LongTermMemory(url=shared_server) as other:  # another agent, on another machine
        assert other.get(record.id) == record


def test_chat_memory_url_flag_opens_the_server(shared_server: str, tmp_path: Path) -> None:
    from agentcore.apps.assistant._adapter import AgentAdapter
    from agentcore.apps.assistant._config import parse_args
    from agentcore.backends import FakeBackend

    config = parse_args(["--memory-url", shared_server, "--agent", "bea"])
    assert config.memory_url == shared_server
    config = type(config)(**{**config.__dict__, "home": tmp_path})
    adapter = AgentAdapter(config, backend=FakeBackend(default="ok"))
    adapter.open()
    try:
        assert adapter.memory is not None and adapter.memory.url == shared_server
        assert set(adapter.memory_counts()) == {"episodic", "fact", "lesson", "skill"}
    finally:
        adapter.close()
    assert not config.memory_dir.exists()
    with pytest.raises(SystemExit):
        parse_args(["--memory-url", "127.0.0.1:8000"])  # not a URL: argparse says why


def test_sim_memory_url_flag_keeps_the_run_folder_free_of_a_store(
    shared_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentcore.apps.sim import main

    scenario = tmp_path / "pair.yaml"
    scenario.write_text(
        "name: pair\nseed: 1\nticks: 2\nworld: {locations: [cafe]}\nagents:\n"
        "  - {name: ann, persona: host, location: cafe}\n"
        "  - {name: bob, persona: guest, location: cafe}\n"
    )
    out = tmp_path / "run"
    argv = [str(scenario), "--model", "scripted", "--out", str(out)]
    assert main([*argv, "--memory-url", shared_server]) == 0
    assert "2 ticks done" in capsys.readouterr().out
    assert not (out / "live" / "memory").exists()
    assert main([*argv, "--resume", "--memory-url", "ftp://nowhere"]) == 2
    assert "expected http://host[:port]" in capsys.readouterr().err
