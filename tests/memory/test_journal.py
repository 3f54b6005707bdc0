"""The write-ahead journal: round trip, torn tails, corruption, tombstones, compaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentcore.memory import JournalCorruptError, MemoryKind, MemoryRecord
from agentcore.memory._journal import Journal


def _records(n: int, kind: str = "episodic") -> list[MemoryRecord]:
    return [MemoryRecord(kind=kind, text=f"event number {i}", agent="a1") for i in range(n)]


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)


def test_round_trip_records_and_vectors(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", embedder="e1")
    assert journal.open().live == {}
    records, vectors = _records(5), _vectors(5)
    journal.append_adds(records, vectors)
    journal.append_adds(_records(1, "fact"), _vectors(1, seed=1))
    journal.close()

    again = Journal(tmp_path / "j.jsonl", embedder="e1")
    state = again.open()
    assert len(state.live) == 6
    assert state.live[records[2].id].kind is MemoryKind.EPISODIC
    back, back_vectors = again.read([state.live[r.id] for r in records])
    assert back == records
    assert np.array_equal(back_vectors, vectors)
    again.close()


def test_deletes_are_tombstones(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", embedder="e1")
    journal.open()
    records = _records(3)
    journal.append_adds(records, _vectors(3))
    journal.append_delete([records[0].id, "never-existed"])
    assert set(journal.scan().live) == {records[1].id, records[2].id}
    journal.close()


def test_torn_last_line_is_cut_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, embedder="e1")
    journal.open()
    records = _records(3)
    journal.append_adds(records, _vectors(3))
    journal.close()
    good_size = path.stat().st_size
    with open(path, "ab") as handle:  # a write cut off by a kill: no newline, half a line
        handle.write(b'0badc0de {"op":"add","rec":{"id":"x"')

    reopened = Journal(path, embedder="e1")
    state = reopened.open()
    assert set(state.live) == {r.id for r in records}
    assert path.stat().st_size == good_size
    extra = _records(1)
    reopened.append_adds(extra, _vectors(1))
    reopened.close()
    assert set(Journal(path, embedder="e1").scan().live) == {r.id for r in records + extra}


def test_damage_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, embedder="e1")
    journal.open()
    journal.append_adds(_records(3), _vectors(3))
    journal.close()
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"event", b"EVENT")  # checksum no longer matches
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorruptError, match="line 3 is damaged"):
        Journal(path, embedder="e1").open()


def test_other_embedder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal(path, embedder="e1").open()
    with pytest.raises(ValueError, match=r"written with embedder 'e1'.*uses 'e2'"):
        Journal(path, embedder="e2").open()


def test_compact_keeps_only_live_records(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, embedder="e1")
    journal.open()
    records, vectors = _records(20), _vectors(20)
    journal.append_adds(records, vectors)
    journal.append_delete([r.id for r in records[:15]])
    before = path.stat().st_size
    state = journal.compact()
    assert path.stat().st_size == state.size < before
    assert set(state.live) == {r.id for r in records[15:]}
    journal.append_adds(_records(1), _vectors(1, seed=3))  # still appendable after the swap
    journal.close()
    scanned = Journal(path, embedder="e1").scan()
    assert len(scanned.live) == 6
    back, back_vectors = Journal(path, embedder="e1").read(
        [scanned.live[r.id] for r in records[15:]]
    )
    assert back == records[15:]
    assert np.array_equal(back_vectors, vectors[15:])
    assert not list(tmp_path.glob("*.compact"))
