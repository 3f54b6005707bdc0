"""LongTermMemory on an embedded chromadb with the hash embedder (fast, deterministic)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from agentcore.memory import (
    DuplicateMemoryError,
    EmbedderMismatchError,
    HashEmbeddingFunction,
    InvalidMemoryError,
    LongTermMemory,
    MemoryKind,
    MemoryRecord,
    RetrievalWeights,
    TrustLevel,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _rec(text: str, kind: str = "episodic", **kw: Any) -> MemoryRecord:
    kw.setdefault("agent", "a1")
    return MemoryRecord(kind=kind, text=text, **kw)


def _noise(n: int, agent: str = "a1") -> list[MemoryRecord]:
    topics = ["weather", "lunch", "traffic", "meeting", "email", "music", "garden", "football"]
    return [
        _rec(f"note {i} about the {topics[i % len(topics)]} on day {i}", agent=agent)
        for i in range(n)
    ]


def test_add_get_count_delete(ltm: LongTermMemory) -> None:
    fact = ltm.add(_rec("Alice's cat is called Miso", kind="fact", importance=0.8))
    ltm.add_many(_noise(10))
    assert ltm.count() == 11
    assert ltm.count("fact") == 1
    assert ltm.get(fact.id) == fact
    assert ltm.get("missing") is None
    assert ltm.delete([fact.id, "missing"]) == 1
    assert ltm.get(fact.id) is None
    assert ltm.delete(fact.id) == 0
    assert ltm.count() == 10


def test_search_finds_the_relevant_memory_among_noise(ltm: LongTermMemory) -> None:
    ltm.add_many(_noise(200))
    fact = ltm.add(_rec("Alice keeps her red bicycle in the garden shed", kind="fact"))
    hits = ltm.search("where does Alice keep her bicycle?", k=3)
    assert hits[0].record == fact
    assert hits[0].similarity > hits[1].similarity
    assert len(hits) == 3


def test_filters_by_kind_agent_time_and_trust(ltm: LongTermMemory) -> None:
    text = "the blue door code is 4471"
    ltm.add_many(
        [
            _rec(text, kind="fact", agent="a1", time=T0, trust=TrustLevel.USER),
            _rec(text, kind="episodic", agent="a1", time=T0 + timedelta(days=1)),
            _rec(text, kind="fact", agent="a2", time=T0 + timedelta(days=2)),
            _rec(text, kind="lesson", agent="a1", time=T0 + timedelta(days=3), trust="external"),
        ]
    )

    def found(**filters: Any) -> set[tuple[str, str]]:
        return {(h.record.kind.value, h.record.agent) for h in ltm.search(text, k=10, **filters)}

    assert found(kinds=["fact"]) == {("fact", "a1"), ("fact", "a2")}
    assert found(kinds="lesson") == {("lesson", "a1")}
    assert found(agent="a2") == {("fact", "a2")}
    assert found(since=T0 + timedelta(hours=12)) == {
        ("episodic", "a1"),
        ("fact", "a2"),
        ("lesson", "a1"),
    }
    assert found(until=T0 + timedelta(days=1)) == {("fact", "a1"), ("episodic", "a1")}
    assert found(agent="a1", since=T0 + timedelta(hours=1), until=T0 + timedelta(days=2)) == {
        ("episodic", "a1")
    }
    assert found(min_trust=TrustLevel.USER) == {("fact", "a1")}
    assert ("lesson", "a1") not in found(min_trust="tool")
    with pytest.raises(ValueError, match="kinds: 'dreams' is not a memory kind"):
        ltm.search(text, kinds=["dreams"])
    with pytest.raises(ValueError, match="min_trust='root'"):
        ltm.search(text, min_trust="root")


def test_recency_and_importance_reorder_equally_relevant_memories(ltm: LongTermMemory) -> None:
    old_important = _rec("the server password rotates monthly", time=T0, importance=0.9)
    new_trivial = _rec(
        "the server password rotates monthly", time=T0 + timedelta(days=2), importance=0.1
    )
    ltm.add_many([old_important, new_trivial, *_noise(30)])
    now = T0 + timedelta(days=2, hours=1)
    by_recency = RetrievalWeights(relevance=1, recency=1, importance=0)
    by_importance = RetrievalWeights(relevance=1, recency=0, importance=1)
    query = "server password rotation"
    assert ltm.search(query, k=1, weights=by_recency, now=now)[0].record == new_trivial
    assert ltm.search(query, k=1, weights=by_importance, now=now)[0].record == old_important
    hit = ltm.search(query, k=1, weights=by_recency, now=now)[0]
    assert hit.score == pytest.approx(hit.relevance + hit.recency)


def test_list_records_oldest_first_with_last(ltm: LongTermMemory) -> None:
    records = [_rec(f"step {i}", time=T0 + timedelta(minutes=i)) for i in range(5)]
    ltm.add_many(list(reversed(records)))
    ltm.add(_rec("other agent", agent="a2", time=T0))
    assert ltm.list_records(agent="a1") == records
    assert ltm.list_records(agent="a1", last=2) == records[-2:]
    assert ltm.list_records(agent="a1", since=T0 + timedelta(minutes=3)) == records[3:]
    assert ltm.list_records(kinds=["fact"]) == []


def test_bad_records_rejected_and_batch_is_all_or_nothing(ltm: LongTermMemory) -> None:
    good = _rec("fine")
    with pytest.raises(InvalidMemoryError, match=r"records\[1\]: MemoryRecord.importance=2"):
        ltm.add_many([good, {"kind": "fact", "text": "x", "agent": "a1", "importance": 2}])
    assert ltm.count() == 0
    with pytest.raises(DuplicateMemoryError, match=r"records\[1\].id=.*unique within the batch"):
        ltm.add_many([good, good])
    ltm.add(good)
    clash = _rec("other text", kind="fact", id=good.id)
    with pytest.raises(DuplicateMemoryError, match=f"id='{good.id}': a episodic memory"):
        ltm.add_many([_rec("new"), clash])
    assert ltm.count() == 1


def test_bad_embeddings_rejected(ltm: LongTermMemory) -> None:
    records = [_rec("a"), _rec("b")]
    with pytest.raises(InvalidMemoryError, match=r"shape=\(1, 384\): expected \[2, dim\]"):
        ltm.add_many(records, embeddings=np.ones((1, 384)))
    bad = np.ones((2, 384))
    bad[1, 3] = np.nan
    with pytest.raises(InvalidMemoryError, match="expected finite numbers"):
        ltm.add_many(records, embeddings=bad)
    with pytest.raises(InvalidMemoryError, match=r"embeddings\[0\]: expected a non-zero vector"):
        ltm.add(records[0], embedding=[0.0] * 384)
    assert ltm.count() == 0


def test_search_argument_errors(ltm: LongTermMemory) -> None:
    with pytest.raises(ValueError, match="query='  ': expected non-empty text"):
        ltm.search("  ")
    with pytest.raises(ValueError, match="k=0"):
        ltm.search("x", k=0)
    with pytest.raises(InvalidMemoryError, match="timezone-aware"):
        ltm.search("x", since=datetime(2024, 1, 1))
    assert ltm.search("anything") == []


def test_clean_reopen_keeps_everything(store_path: Path) -> None:
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        added = memory.add_many(_noise(50))
    assert (store_path / "clean.json").exists()
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert not (store_path / "clean.json").exists()  # consumed: a kill now is unclean
        assert memory.count() == 50
        assert memory.get(added[7].id) == added[7]


def test_lost_chromadb_files_are_rebuilt_from_the_journal(store_path: Path) -> None:
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        added = memory.add_many([*_noise(40), _rec("the spare key is under the blue pot")])
    shutil.rmtree(store_path / "chroma")
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 41
        assert memory.search("where is the spare key", k=1)[0].record == added[-1]


def test_unclean_open_repairs_missing_and_extra_rows(store_path: Path) -> None:
    memory = LongTermMemory(store_path, embedder=HashEmbeddingFunction())
    added = memory.add_many(_noise(20))
    memory.close()
    (store_path / "clean.json").unlink()  # as if the process had been killed
    client = chromadb.PersistentClient(
        str(store_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    raw = client.get_collection("agentcore-episodic", embedding_function=HashEmbeddingFunction())
    raw.delete(ids=[added[0].id, added[1].id])
    raw.add(ids=["stray"], embeddings=np.ones((1, 384), dtype=np.float32), documents=["stray"])
    client.close()

    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 20
        assert memory.get(added[0].id) == added[0]
        assert memory.get("stray") is None
        assert memory.repair() == {kind.value: 0 for kind in MemoryKind}


def test_failed_chromadb_write_is_taken_back(
    ltm: LongTermMemory, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = ltm._collections[MemoryKind.FACT]

    def broken_add(**_: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(collection, "add", broken_add)
    with pytest.raises(RuntimeError, match="disk full"):
        ltm.add_many([_rec("episodic one"), _rec("a fact", kind="fact")])
    monkeypatch.undo()
    assert ltm.count() == 0
    ltm.close()
    (store_path / "clean.json").unlink()  # force the journal scan on reopen
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 0


def test_compact_drops_deleted_records(store_path: Path) -> None:
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        added = memory.add_many(_noise(40))
        memory.delete([r.id for r in added[:30]])
        before = (store_path / "journal.jsonl").stat().st_size
        assert memory.compact() < before
        memory.add(_rec("after compaction"))
    (store_path / "clean.json").unlink()
    shutil.rmtree(store_path / "chroma")
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 11
        assert memory.get(added[35].id) == added[35]
        assert memory.get(added[0].id) is None


def test_store_written_without_a_journal_is_adopted(store_path: Path) -> None:
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction(), journal=False) as memory:
        added = memory.add_many([*_noise(25), _rec("the ladder is in the loft", kind="fact")])
    assert not (store_path / "journal.jsonl").exists()
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 26  # the new journal took everything in, erased nothing
    shutil.rmtree(store_path / "chroma")
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert memory.count() == 26
        assert memory.get(added[-1].id) == added[-1]
        assert memory.search("where is the ladder", k=1)[0].record == added[-1]


def test_other_embedder_is_refused(store_path: Path) -> None:
    class OtherEmbedding(HashEmbeddingFunction):
        @staticmethod
        def name() -> str:
            return "other-hash"

    LongTermMemory(store_path, embedder=HashEmbeddingFunction()).close()
    with pytest.raises(EmbedderMismatchError, match="'other-hash'"):
        LongTermMemory(store_path, embedder=OtherEmbedding())


def test_plain_chromadb_reopen_uses_the_registered_function(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

    def forbidden(*_: Any, **__: Any) -> None:
        raise AssertionError("chromadb's default ONNX embedding function was used")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", forbidden)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", forbidden)
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        fact = memory.add(_rec("the wifi password is hunter2", kind="fact"))
        memory.add_many(_noise(20))
    client = chromadb.PersistentClient(
        str(store_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    raw = client.get_collection("agentcore-fact")  # no embedding function passed
    got = raw.query(query_texts=["what is the wifi password"], n_results=1)
    assert got["ids"][0] == [fact.id]
    client.close()


def test_closed_memory_refuses_work(ltm: LongTermMemory) -> None:
    ltm.close()
    ltm.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        ltm.add(_rec("x"))
    with pytest.raises(RuntimeError, match="closed"):
        ltm.search("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs exactly one of path=.*or url="),
        ({"path": "p", "url": "http://127.0.0.1:1"}, "needs exactly one of"),
        ({"path": "p", "namespace": "a b"}, "namespace='a b'"),
        ({"url": "ftp://host"}, r"url='ftp://host': expected http://host\[:port\]"),
        ({"url": "http://127.0.0.1:1", "journal": True}, "journal=True needs path=: with url="),
    ],
)
def test_constructor_errors(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    if "path" in kwargs:
        kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(ValueError, match=message):
        LongTermMemory(embedder=HashEmbeddingFunction(), **kwargs)


def test_unreadable_collection_is_rebuilt_from_the_journal(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a kill -9 can leave behind: chromadb raising on every read of a collection."""
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InternalError

    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        added = memory.add_many([*_noise(30), _rec("the boat is moored at pier 9", kind="fact")])
    (store_path / "clean.json").unlink()
    real_get = Collection.get
    broken: list[str] = []

    def get(self: Collection, *args: Any, **kwargs: Any) -> Any:
        if self.name == "agentcore-episodic" and not broken:
            broken.append(str(self.id))  # the damaged collection fails; the rebuilt one works
            raise InternalError("Failed to apply logs to the hnsw segment writer")
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "get", get)
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        assert broken  # the failure was hit and survived
        assert memory.count() == 31
        assert memory.get(added[3].id) == added[3]
        assert memory.search("where is the boat moored", k=1)[0].record == added[-1]


def test_index_settings_apply_to_new_and_existing_collections(store_path: Path) -> None:
    from agentcore.memory import IndexConfig

    with LongTermMemory(
        store_path, embedder=HashEmbeddingFunction(), index=IndexConfig.chroma_default()
    ) as memory:
        hnsw = memory._collections[MemoryKind.FACT].configuration["hnsw"]
        assert (hnsw["max_neighbors"], hnsw["ef_construction"], hnsw["ef_search"]) == (16, 100, 100)
        memory.add(_rec("kept across the change", kind="fact"))
    with LongTermMemory(store_path, embedder=HashEmbeddingFunction()) as memory:
        hnsw = memory._collections[MemoryKind.FACT].configuration["hnsw"]
        assert hnsw["ef_search"] == IndexConfig().ef_search  # changed on the existing index
        assert hnsw["max_neighbors"] == 16  # fixed at creation
        assert memory.search("kept across", k=1)[0].record.text == "kept across the change"
    with pytest.raises(ValueError, match=r"IndexConfig.ef_search=1: expected an integer >= 2"):
        IndexConfig(ef_search=1)


def test_a_briefly_locked_store_is_waited_for_and_a_held_one_named() -> None:
    from chromadb.errors import InternalError

    from agentcore.memory._long_term import _when_unlocked

    calls: list[int] = []

    def locked_twice() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise InternalError("Database error: (code: 5) database is locked")

    _when_unlocked(locked_twice, "changing a setting")
    assert len(calls) == 3

    def always_locked() -> None:
        raise InternalError("Database error: (code: 5) database is locked")

    with pytest.raises(InternalError, match=r"changing a setting: .*locked for 0.05 s.*another"):
        _when_unlocked(always_locked, "changing a setting", wait_s=0.05)

    def broken() -> None:
        calls.append(1)
        raise InternalError("Database error: no such table")

    calls.clear()
    with pytest.raises(InternalError, match="no such table"):
        _when_unlocked(broken, "changing a setting")
    assert len(calls) == 1  # only a lock is waited for
