"""Long-term memory on chromadb: the store that outlives sessions, agents and restarts.

Owns ``LongTermMemory``: one chromadb collection per ``MemoryKind`` (episodic, fact, lesson,
skill), embedded ``PersistentClient`` when given a path (no server) or ``HttpClient`` when
given a URL, telemetry off; validated writes made durable by the write-ahead journal before
they reach chromadb; reconciliation of chromadb with the journal after an unclean stop;
and search scored by relevance, recency and importance with filters by kind, agent, time
and trust. Never calls a model for generation; embeds only through the embedding function
it is given (chromadb's default ONNX model is never used).

On-disk layout under ``path``: ``chroma/`` (chromadb's files), ``journal.jsonl`` (the
journal) and ``clean.json`` (present only between a clean ``close()`` and the next open).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
import numpy.typing as npt
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.config import Settings
from chromadb.errors import ChromaError, InternalError

from agentcore._atomic import atomic_write_bytes, fsync_dir
from agentcore.memory._index import IndexConfig
from agentcore.memory._journal import Journal, JournalEntry, JournalState
from agentcore.memory._minilm import MiniLMEmbeddingFunction
from agentcore.memory._records import (
    InvalidMemoryError,
    MemoryKind,
    MemoryRecord,
    TrustLevel,
    record_from_metadata,
    record_to_metadata,
    to_timestamp,
    validate_record,
)
from agentcore.memory._scoring import RetrievalWeights, score_candidates

__all__ = [
    "DuplicateMemoryError",
    "EmbedderMismatchError",
    "LongTermMemory",
    "ScoredMemory",
]

_log = logging.getLogger(__name__)
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,48}[A-Za-z0-9]$")
_SECONDS_PER_HOUR = 3600.0


class DuplicateMemoryError(InvalidMemoryError):
    """A record id that is already stored (ids are unique across all kinds)."""


class EmbedderMismatchError(ValueError):
    """The store was built with a different embedding function than the one given."""


@dataclass(frozen=True)
class ScoredMemory:
    """One search hit: the record, its total score and the terms that made it.

    ``similarity`` is the raw cosine similarity to the query; ``relevance``, ``recency``
    and ``importance`` are the terms after normalisation (if the weights normalise).
    """

    record: MemoryRecord
    score: float
    similarity: float
    relevance: float
    recency: float
    importance: float


def _default_embedder() -> EmbeddingFunction[Documents]:
    return MiniLMEmbeddingFunction()


def _http_client(url: str, settings: Settings) -> ClientAPI:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url={url!r}: expected http://host[:port] or https://host[:port]")
    ssl = parts.scheme == "https"
    port = parts.port or (443 if ssl else 8000)
    return chromadb.HttpClient(host=parts.hostname, port=port, ssl=ssl, settings=settings)


def _when_unlocked(action: Callable[[], None], what: str, *, wait_s: float = 30.0) -> None:
    """Run ``action``, retrying while SQLite reports the embedded store busy.

    chromadb's embedded store runs a pool of SQLite connections; right after opening, a
    configuration change can meet a transaction of its own start-up work and fail with
    "database is locked" on a loaded machine (about one open in ten with all cores busy).
    The lock clears within milliseconds, so wait with backoff; after ``wait_s`` the store is
    really held (another process on the same path) and the error says so.
    """
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            action()
            return
        except InternalError as exc:
            if "database is locked" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise InternalError(
                    f"{what}: the chromadb store stayed locked for {wait_s:g} s; is another "
                    "process using the same path? (one process per path; share memory "
                    "across processes through a chromadb server and url=)"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


class LongTermMemory:
    """Episodic events, facts, lessons and skills in chromadb, searchable by meaning.

    ``path``: a directory for the embedded store and its journal. ``url``: a chromadb server
    (``chroma run``) instead; the server then owns durability, so there is no local journal
    (several clients can share the server, and a local journal cannot speak for them all).
    ``journal=False`` turns the journal off for an embedded store (faster single writes, no
    kill -9 guarantee). ``embedder`` defaults to the offline all-MiniLM-L6-v2 function.
    ``weights`` are the default retrieval weights; ``index`` the HNSW settings.

    One process per ``path`` (chromadb's embedded store is not multi-process safe): agents
    in other processes share memory through a server and ``url=``. Thread-safe for writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        embedder: EmbeddingFunction[Documents] | None = None,
        namespace: str = "agentcore",
        journal: bool | None = None,
        weights: RetrievalWeights | None = None,
        index: IndexConfig | None = None,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError(
                "LongTermMemory needs exactly one of path= (an embedded store in that "
                f"directory) or url= (a chromadb server); got path={path!r}, url={url!r}"
            )
        if not _NAMESPACE.match(namespace):
            raise ValueError(
                f"namespace={namespace!r}: expected 3-50 characters from [A-Za-z0-9._-], "
                "starting and ending with a letter or digit"
            )
        use_journal = path is not None if journal is None else journal
        if use_journal and path is None:
            raise ValueError(
                "journal=True needs path=: with url= the chromadb server owns durability"
            )
        self.path = Path(path) if path is not None else None
        self.url = url
        self.namespace = namespace
        self.embedder: EmbeddingFunction[Documents] = embedder or _default_embedder()
        self.weights = weights or RetrievalWeights.default()
        self.index = index or IndexConfig()
        self._closed = False
        self._suspect = False  # a rollback could not reach chromadb: skip the clean marker
        self._lock = threading.RLock()
        self._settings = Settings(
            anonymized_telemetry=False,
            # chromadb's HTTP client keeps its connection pool open after the client is
            # closed (1.x); with no idle connections kept, nothing is left to leak. Costs a
            # new TCP connection per request (see docs/benchmarks/scale.md).
            chroma_http_max_keepalive_connections=0,
        )
        self._client = self._connect()
        self._collections: dict[MemoryKind, Collection] = {}
        self._journal: Journal | None = None
        for kind in MemoryKind:
            self._collections[kind] = self._open_collection(kind)
        if use_journal:
            assert self.path is not None
            self._journal = Journal(self.path / "journal.jsonl", embedder=self.embedder.name())
            self._open_journal()

    # -- opening -------------------------------------------------------------------------

    def _connect(self) -> ClientAPI:
        if self.url is not None:
            return _http_client(self.url, self._settings)
        assert self.path is not None
        (self.path / "chroma").mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path / "chroma"), settings=self._settings)

    def _collection_name(self, kind: MemoryKind) -> str:
        return f"{self.namespace}-{kind.value}"

    def _open_collection(self, kind: MemoryKind) -> Collection:
        try:
            collection = self._client.get_or_create_collection(
                self._collection_name(kind),
                configuration={"hnsw": self.index.hnsw()},
                embedding_function=self.embedder,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            if "conflict" not in str(exc).lower():
                raise
            raise EmbedderMismatchError(
                f"collection {self._collection_name(kind)!r} was built with another embedding "
                f"function than {self.embedder.name()!r} ({exc}); open it with the embedder it "
                "was built with, or use a new path or namespace"
            ) from None
        hnsw = collection.configuration.get("hnsw") or {}
        if hnsw.get("ef_search") != self.index.ef_search:  # an existing collection
            change = {"hnsw": {"ef_search": self.index.ef_search}}
            _when_unlocked(
                lambda: collection.modify(configuration=change),  # type: ignore[arg-type]
                f"setting ef_search on {self._collection_name(kind)!r}",
            )
        return collection

    @property
    def _clean_marker(self) -> Path:
        assert self.path is not None
        return self.path / "clean.json"

    def _open_journal(self) -> None:
        assert self._journal is not None
        if not self._journal.exists():
            # A store written without a journal (or whose journal was removed): adopt what
            # chromadb holds, so the journal starts as the truth instead of erasing it.
            self._journal.create(self._export_batches())
        state = self._journal.open()
        marker = self._read_clean_marker()
        if marker is not None and self._matches(marker, state):
            return
        self.repair(state)

    def _export_batches(
        self, page: int = 2000
    ) -> Iterator[tuple[list[MemoryRecord], npt.NDArray[np.float32]]]:
        for kind in MemoryKind:
            collection = self._collections[kind]
            total = collection.count()
            for offset in range(0, total, page):
                got = collection.get(
                    limit=page, offset=offset, include=["documents", "metadatas", "embeddings"]
                )
                docs, metas, vecs = got["documents"], got["metadatas"], got["embeddings"]
                assert docs is not None and metas is not None and vecs is not None
                records = [
                    record_from_metadata(rid, doc, dict(meta))
                    for rid, doc, meta in zip(got["ids"], docs, metas, strict=True)
                ]
                yield records, np.asarray(vecs, dtype=np.float32)

    def _read_clean_marker(self) -> dict[str, Any] | None:
        """Read and consume the clean-shutdown marker: any stop before close() is unclean."""
        marker = self._clean_marker
        if not marker.exists():
            return None
        try:
            data = json.loads(marker.read_text())
        except (OSError, ValueError):
            data = None
        marker.unlink()
        fsync_dir(marker.parent)
        return data if isinstance(data, dict) else None

    def _matches(self, marker: dict[str, Any], state: JournalState) -> bool:
        if marker.get("journal_size") != state.size:
            return False
        try:
            counts = {kind.value: self._collections[kind].count() for kind in MemoryKind}
        except ChromaError:
            return False
        return bool(counts == marker.get("counts"))

    def repair(self, state: JournalState | None = None) -> dict[str, int]:
        """Make chromadb agree with the journal: re-add missing records, drop extra ones,
        and rebuild any collection chromadb can no longer read. Returns how many records
        were re-added per kind. Runs on open after an unclean stop; safe to call any time.
        """
        if self._journal is None:
            raise RuntimeError("repair() needs the journal (open with path= and journal on)")
        with self._lock:
            if state is None:
                state = self._journal.scan()
            by_kind: dict[MemoryKind, dict[str, JournalEntry]] = defaultdict(dict)
            for rid, entry in state.live.items():
                by_kind[entry.kind][rid] = entry
            replayed: dict[str, int] = {}
            for kind in MemoryKind:
                replayed[kind.value] = self._repair_kind(kind, by_kind.get(kind, {}))
            return replayed

    def _repair_kind(self, kind: MemoryKind, live: dict[str, JournalEntry]) -> int:
        assert self._journal is not None
        collection = self._collections[kind]
        try:
            stored = set(collection.get(include=[])["ids"])
            if stored:  # exercise the vector index too: that is what a kill can break
                probe = np.zeros((1, self._dimension(collection)), dtype=np.float32)
                probe[0, 0] = 1.0
                collection.query(query_embeddings=probe, n_results=1, include=[])
        except ChromaError as exc:
            _log.warning(
                "collection %s is unreadable (%s); rebuilding it from the journal",
                self._collection_name(kind),
                exc,
            )
            collection = self._recreate(kind)
            stored = set()
        extra = sorted(stored - live.keys())
        if extra:
            collection.delete(ids=extra)
        missing = [entry for rid, entry in live.items() if rid not in stored]
        if missing or extra:
            _log.info(
                "collection %s: re-adding %d records from the journal, dropping %d",
                self._collection_name(kind),
                len(missing),
                len(extra),
            )
        for start in range(0, len(missing), 1000):
            records, vectors = self._journal.read(missing[start : start + 1000])
            self._chroma_add(collection, records, vectors)
        if collection.count() != len(live):
            raise RuntimeError(
                f"collection {collection.name!r} holds {collection.count()} records after "
                f"repair, the journal {len(live)}; move {self.path}/chroma away and reopen "
                "to rebuild it from the journal"
            )
        return len(missing)

    def _dimension(self, collection: Collection) -> int:
        got = collection.get(limit=1, include=["embeddings"])
        embeddings = got["embeddings"]
        if embeddings is None or len(embeddings) == 0:
            raise InvalidMemoryError(f"collection {collection.name!r} returned no embedding")
        return len(embeddings[0])

    def _recreate(self, kind: MemoryKind) -> Collection:
        name = self._collection_name(kind)
        try:
            self._client.delete_collection(name)
        except ChromaError:
            self._reset_store()
            return self._collections[kind]
        self._collections[kind] = self._open_collection(kind)
        return self._collections[kind]

    def _reset_store(self) -> None:
        """Last resort: chromadb cannot even drop the collection; wipe its files entirely."""
        if self.url is not None or self.path is None:
            raise RuntimeError("the chromadb server's collections are unreadable; repair it there")
        self._release_client()
        self._client.clear_system_cache()
        shutil.rmtree(self.path / "chroma")
        self._client = self._connect()
        for kind in MemoryKind:
            self._collections[kind] = self._open_collection(kind)

    # -- writing -------------------------------------------------------------------------

    def add(
        self, record: MemoryRecord | dict[str, Any], *, embedding: Sequence[float] | None = None
    ) -> MemoryRecord:
        """Validate, store durably and index one record; returns it (with its id)."""
        vectors = None if embedding is None else np.asarray([embedding], dtype=np.float32)
        return self.add_many([record], embeddings=vectors)[0]

    def add_many(
        self,
        records: Iterable[MemoryRecord | dict[str, Any]],
        *,
        embeddings: npt.ArrayLike | None = None,
    ) -> list[MemoryRecord]:
        """Store many records in one durable write. ``embeddings``: [N, D] precomputed
        vectors (the texts are embedded with the memory's embedder when omitted).
        Nothing is stored if any record is invalid or already present.
        """
        checked = self._validate_batch(list(records))
        if not checked:
            return []
        vectors = self._vectors_for(checked, embeddings)
        with self._lock:
            self._ensure_open()
            self._reject_existing([r.id for r in checked])
            if self._journal is not None:
                self._journal.append_adds(checked, vectors)
            try:
                by_kind: dict[MemoryKind, list[int]] = defaultdict(list)
                for i, record in enumerate(checked):
                    by_kind[record.kind].append(i)
                for kind, rows in by_kind.items():
                    self._chroma_add(
                        self._collections[kind], [checked[i] for i in rows], vectors[rows]
                    )
            except BaseException:
                self._undo_add([r.id for r in checked])
                raise
        return checked

    def _validate_batch(self, records: list[MemoryRecord | dict[str, Any]]) -> list[MemoryRecord]:
        checked: list[MemoryRecord] = []
        seen: set[str] = set()
        for i, raw in enumerate(records):
            try:
                record = validate_record(raw)
            except InvalidMemoryError as exc:
                raise InvalidMemoryError(f"records[{i}]: {exc}") from None
            if record.id in seen:
                raise DuplicateMemoryError(
                    f"records[{i}].id={record.id!r}: expected ids unique within the batch"
                )
            seen.add(record.id)
            checked.append(record)
        return checked

    def _vectors_for(
        self, records: list[MemoryRecord], embeddings: npt.ArrayLike | None
    ) -> npt.NDArray[np.float32]:
        if embeddings is None:
            rows = self.embedder([r.text for r in records])
            vectors = np.asarray(np.stack([np.asarray(v) for v in rows]), dtype=np.float32)
        else:
            vectors = np.asarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(records):
            raise InvalidMemoryError(
                f"embeddings shape={vectors.shape}: expected [{len(records)}, dim] "
                "(one row per record)"
            )
        if not np.isfinite(vectors).all():
            raise InvalidMemoryError("embeddings: expected finite numbers, got NaN or inf")
        norms = np.linalg.norm(vectors, axis=1)
        if (norms == 0).any():
            bad = int(np.flatnonzero(norms == 0)[0])
            raise InvalidMemoryError(
                f"embeddings[{bad}]: expected a non-zero vector (cosine distance needs a norm)"
            )
        return vectors

    def _reject_existing(self, ids: list[str]) -> None:
        for kind, collection in self._collections.items():
            for start in range(0, len(ids), 5000):
                found = collection.get(ids=ids[start : start + 5000], include=[])["ids"]
                if found:
                    raise DuplicateMemoryError(
                        f"id={found[0]!r}: a {kind.value} memory with this id is already "
                        "stored; expected a new id (delete the old record to replace it)"
                    )

    def _chroma_add(
        self,
        collection: Collection,
        records: Sequence[MemoryRecord],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        # vectors: [N, D] float32, row i belongs to records[i]
        step = max(1, min(self._client.get_max_batch_size(), 5000))
        for start in range(0, len(records), step):
            chunk = records[start : start + step]
            collection.add(
                ids=[r.id for r in chunk],
                embeddings=vectors[start : start + step],
                documents=[r.text for r in chunk],
                metadatas=[record_to_metadata(r) for r in chunk],
            )

    def _undo_add(self, ids: list[str]) -> None:
        """A chromadb write failed after the journal took it: take it back out of both."""
        if self._journal is not None:
            self._journal.append_delete(ids)
        for collection in self._collections.values():
            try:
                collection.delete(ids=ids)
            except ChromaError:
                self._suspect = True  # repair() on the next open drops what is left behind

    def delete(self, ids: str | Iterable[str]) -> int:
        """Delete records by id; returns how many existed."""
        wanted = [ids] if isinstance(ids, str) else list(ids)
        if not wanted:
            return 0
        with self._lock:
            self._ensure_open()
            found: dict[MemoryKind, list[str]] = {}
            for kind, collection in self._collections.items():
                hit = collection.get(ids=wanted, include=[])["ids"]
                if hit:
                    found[kind] = list(hit)
            existing = [rid for hits in found.values() for rid in hits]
            if not existing:
                return 0
            if self._journal is not None:
                self._journal.append_delete(existing)
            for kind, hits in found.items():
                self._collections[kind].delete(ids=hits)
            return len(existing)

    def compact(self) -> int:
        """Rewrite the journal without deleted records (atomic); returns its new size in bytes."""
        if self._journal is None:
            return 0
        with self._lock:
            self._ensure_open()
            return self._journal.compact().size

    # -- reading -------------------------------------------------------------------------

    def get(self, record_id: str) -> MemoryRecord | None:
        """The record with this id, or None."""
        self._ensure_open()
        for collection in self._collections.values():
            got = collection.get(ids=[record_id], include=["documents", "metadatas"])
            if got["ids"]:
                docs, metas = got["documents"], got["metadatas"]
                assert docs is not None and metas is not None
                return record_from_metadata(got["ids"][0], docs[0], dict(metas[0]))
        return None

    def count(self, kind: MemoryKind | str | None = None) -> int:
        """How many records are stored (of one kind, or all)."""
        self._ensure_open()
        kinds = list(MemoryKind) if kind is None else [MemoryKind(kind)]
        return sum(self._collections[k].count() for k in kinds)

    def list_records(
        self,
        *,
        kinds: Iterable[MemoryKind | str] | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        last: int | None = None,
    ) -> list[MemoryRecord]:
        """Records matching the filters, oldest first; ``last`` keeps only the newest N."""
        self._ensure_open()
        where = self._where(agent=agent, since=since, until=until, source=source)
        records: list[MemoryRecord] = []
        for kind in self._kinds(kinds):
            got = self._collections[kind].get(where=where, include=["documents", "metadatas"])
            docs, metas = got["documents"] or [], got["metadatas"] or []
            for rid, doc, meta in zip(got["ids"], docs, metas, strict=True):
                records.append(record_from_metadata(rid, doc, dict(meta)))
        records.sort(key=lambda r: (r.time, r.id))
        if last is not None:
            records = records[-last:] if last > 0 else []
        return records

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        kinds: Iterable[MemoryKind | str] | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        min_trust: TrustLevel | str | None = None,
        weights: RetrievalWeights | None = None,
        now: datetime | None = None,
    ) -> list[ScoredMemory]:
        """The ``k`` best memories for ``query``, best first.

        A vector search takes ``weights.candidates`` nearest records from each collection;
        those are re-ranked by relevance, recency (half-life decay from ``now``) and
        importance, mixed by ``weights`` (the memory's default weights when omitted).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query={query!r}: expected non-empty text")
        if k < 1:
            raise ValueError(f"k={k!r}: expected a positive integer")
        self._ensure_open()
        weights = weights or self.weights
        now_ts = to_timestamp(now or datetime.now(UTC))
        where = self._where(agent=agent, since=since, until=until, min_trust=min_trust)
        # query_vector: [1, D]
        query_vector = np.asarray(self.embedder.embed_query([query]), dtype=np.float32)
        pool = max(weights.candidates, k)
        ids: list[str] = []
        owner: list[MemoryKind] = []
        metas: list[dict[str, Any]] = []
        similarity: list[float] = []
        for kind in self._kinds(kinds):
            # Texts are fetched for the winners only: reading 4 x 50 documents would cost
            # more than the vector search itself.
            got = self._collections[kind].query(
                query_embeddings=query_vector,
                n_results=pool,
                where=where,
                include=["metadatas", "distances"],
            )
            assert got["metadatas"] is not None and got["distances"] is not None
            ids.extend(got["ids"][0])
            owner.extend([kind] * len(got["ids"][0]))
            metas.extend(dict(m) for m in got["metadatas"][0])
            similarity.extend(1.0 - float(d) for d in got["distances"][0])
        if not ids:
            return []
        try:
            times = np.array([float(m["time"]) for m in metas])
            importance = np.array([float(m["importance"]) for m in metas])
        except (KeyError, TypeError, ValueError):
            bad = next(i for i, m in enumerate(metas) if "time" not in m or "importance" not in m)
            raise InvalidMemoryError(
                f"stored memory {ids[bad]!r} has no numeric time/importance metadata"
            ) from None
        terms = score_candidates(
            np.array(similarity), (now_ts - times) / _SECONDS_PER_HOUR, importance, weights
        )
        order = [int(i) for i in np.argsort(-terms.total, kind="stable")[:k]]
        by_kind: dict[MemoryKind, list[str]] = defaultdict(list)
        for i in order:
            by_kind[owner[i]].append(ids[i])
        texts = self._documents(by_kind)
        return [
            ScoredMemory(
                record=record_from_metadata(ids[i], texts.get(ids[i]), metas[i]),
                score=float(terms.total[i]),
                similarity=similarity[i],
                relevance=float(terms.relevance[i]),
                recency=float(terms.recency[i]),
                importance=float(terms.importance[i]),
            )
            for i in order
            if ids[i] in texts  # deleted by another client since the query: skip it
        ]

    def _documents(self, ids_by_kind: dict[MemoryKind, list[str]]) -> dict[str, str]:
        texts: dict[str, str] = {}
        for kind, wanted in ids_by_kind.items():
            got = self._collections[kind].get(ids=wanted, include=["documents"])
            docs = got["documents"] or []
            texts.update((rid, doc) for rid, doc in zip(got["ids"], docs, strict=True) if doc)
        return texts

    @staticmethod
    def _kinds(kinds: Iterable[MemoryKind | str] | None) -> list[MemoryKind]:
        if kinds is None:
            return list(MemoryKind)
        if isinstance(kinds, str):
            kinds = [kinds]
        out: list[MemoryKind] = []
        for kind in kinds:
            try:
                out.append(MemoryKind(kind))
            except ValueError:
                allowed = ", ".join(k.value for k in MemoryKind)
                raise ValueError(
                    f"kinds: {kind!r} is not a memory kind; expected one of {allowed}"
                ) from None
        return out

    @staticmethod
    def _where(
        *,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        min_trust: TrustLevel | str | None = None,
    ) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if agent is not None:
            clauses.append({"agent": agent})
        if source is not None:
            clauses.append({"source": source})
        if since is not None:
            clauses.append({"time": {"$gte": to_timestamp(since)}})
        if until is not None:
            clauses.append({"time": {"$lte": to_timestamp(until)}})
        if min_trust is not None:
            try:
                rank = TrustLevel(min_trust).rank
            except ValueError:
                allowed = ", ".join(t.value for t in TrustLevel)
                raise ValueError(f"min_trust={min_trust!r}: expected one of {allowed}") from None
            clauses.append({"trust_rank": {"$gte": rank}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    # -- lifecycle -----------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("this LongTermMemory is closed; open a new one")

    def close(self) -> None:
        """Mark a clean stop (so the next open skips the journal scan) and release files
        and connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._journal is not None:
                    self._close_journal()
            finally:
                self._release_client()

    def _release_client(self) -> None:
        close = getattr(self._client, "close", None)  # chromadb's Client has it, ClientAPI not
        if callable(close):
            close()

    def _close_journal(self) -> None:
        assert self._journal is not None
        if self._suspect:
            self._journal.close()
            return
        counts = {kind.value: self._collections[kind].count() for kind in MemoryKind}
        marker = {"journal_size": self._journal.size(), "counts": counts}
        self._journal.close()
        atomic_write_bytes(self._clean_marker, json.dumps(marker).encode())

    def __enter__(self) -> LongTermMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
