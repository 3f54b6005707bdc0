"""The write-ahead journal: the durable truth behind a persistent long-term memory.

chromadb's embedded store can be left unreadable by a ``kill -9`` in the middle of a write
burst ("Failed to apply logs to the hnsw segment writer"; see docs/benchmarks/memory.md), so
every acknowledged write is first appended here and fsynced, and the chromadb collections are
an index rebuilt from the journal when they disagree with it.

Owns the file format (one ``<crc32 hex> <json>`` line per entry: a header naming the
embedder, ``add`` entries carrying the record and its float32 vector, ``del`` tombstones),
appending with fsync, scanning (a torn final line, the write in flight at a kill, is cut
off; corruption anywhere else is an error), reading entries back and compaction (temp file,
fsync, rename). Never talks to chromadb, never embeds text.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from agentcore._atomic import atomic_open
from agentcore.memory._records import MemoryKind, MemoryRecord

__all__ = ["Journal", "JournalCorruptError", "JournalEntry", "JournalState"]

_VERSION = 1


class JournalCorruptError(RuntimeError):
    """The journal has a damaged entry before its last line."""


@dataclass(frozen=True)
class JournalEntry:
    """Where a live record's ``add`` line sits in the file."""

    kind: MemoryKind
    offset: int
    length: int


@dataclass
class JournalState:
    """What a scan found: live records by id, and the file size it covered."""

    live: dict[str, JournalEntry] = field(default_factory=dict)
    size: int = 0
    embedder: str = ""


def _encode_line(payload: Mapping[str, object]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def _decode_line(line: bytes) -> dict[str, object] | None:
    """The payload of one line, or None when its checksum or JSON is bad."""
    if len(line) < 10 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _add_lines(records: Sequence[MemoryRecord], vectors: npt.NDArray[np.float32]) -> bytes:
    # vectors: [N, D], row i belongs to records[i]; stored as little-endian float32, base64
    chunks = []
    for record, vector in zip(records, vectors, strict=True):
        raw = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        payload = {
            "op": "add",
            "rec": record.model_dump(mode="json"),
            "vec": base64.b64encode(raw).decode("ascii"),
        }
        chunks.append(_encode_line(payload))
    return b"".join(chunks)


class Journal:
    """Append-only, fsynced log of adds and deletes for one long-term memory directory."""

    def __init__(self, path: Path, *, embedder: str) -> None:
        self.path = path
        self.embedder = embedder
        self._fd: int | None = None

    # -- opening -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def create(
        self, batches: Iterable[tuple[Sequence[MemoryRecord], npt.NDArray[np.float32]]] = ()
    ) -> None:
        """Write a new journal holding ``batches`` (records, [N, D] vectors), atomically:
        a crash leaves either no journal or the complete one."""
        header = {"op": "meta", "version": _VERSION, "embedder": self.embedder}
        with atomic_open(self.path) as handle:
            handle.write(_encode_line(header))
            for records, vectors in batches:
                handle.write(_add_lines(records, vectors))

    def open(self) -> JournalState:
        """Create an empty journal if there is none, cut a torn tail, and return the scan."""
        if not self.path.exists():
            self.create()
        state = self.scan()
        if state.embedder != self.embedder:
            raise ValueError(
                f"{self.path} was written with embedder {state.embedder!r}, but this memory "
                f"uses {self.embedder!r}; open it with the same embedder or use a new path"
            )
        if os.path.getsize(self.path) != state.size:
            with open(self.path, "r+b") as handle:  # drop the write that was in flight
                handle.truncate(state.size)
                handle.flush()
                os.fsync(handle.fileno())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        return state

    def scan(self) -> JournalState:
        """Read the whole file: which records are live and where their lines are."""
        state = JournalState()
        offset = 0
        torn_at: int | None = None
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if torn_at is not None:
                    raise JournalCorruptError(
                        f"{self.path}: line {torn_at} is damaged (bad checksum or JSON) and is "
                        "not the last line, so it is not a torn write; restore the file from a "
                        "backup or move it away to start an empty memory"
                    )
                payload = _decode_line(line)
                if payload is None:
                    torn_at = number  # fine only if it is the last line (the write in flight)
                    continue
                self._apply(state, payload, number, offset, len(line))
                offset += len(line)
        state.size = offset
        return state

    def _apply(
        self, state: JournalState, payload: dict[str, object], number: int, offset: int, length: int
    ) -> None:
        op = payload.get("op")
        if op == "meta":
            state.embedder = str(payload.get("embedder", ""))
        elif op == "add":
            rec = payload.get("rec")
            if not isinstance(rec, dict) or "id" not in rec or "kind" not in rec:
                raise JournalCorruptError(f"{self.path}: line {number}: add without a record")
            state.live[str(rec["id"])] = JournalEntry(
                kind=MemoryKind(str(rec["kind"])), offset=offset, length=length
            )
        elif op == "del":
            ids = payload.get("ids")
            if not isinstance(ids, list):
                raise JournalCorruptError(f"{self.path}: line {number}: del without ids")
            for rid in ids:
                state.live.pop(str(rid), None)
        else:
            raise JournalCorruptError(f"{self.path}: line {number}: unknown op {op!r}")

    # -- writing -------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise RuntimeError(f"journal {self.path} is not open")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def append_adds(
        self, records: Sequence[MemoryRecord], vectors: npt.NDArray[np.float32]
    ) -> None:
        """Append one ``add`` line per record (vectors: [N, D] float32), then fsync once."""
        self._write(_add_lines(records, vectors))

    def append_delete(self, ids: Iterable[str]) -> None:
        self._write(_encode_line({"op": "del", "ids": list(ids)}))

    # -- reading -------------------------------------------------------------------------

    def read(
        self, entries: Sequence[JournalEntry]
    ) -> tuple[list[MemoryRecord], npt.NDArray[np.float32]]:
        """The records and vectors ([N, D] float32) of ``entries``, in order."""
        records: list[MemoryRecord] = []
        vectors: list[npt.NDArray[np.float32]] = []
        with open(self.path, "rb") as handle:
            for entry in sorted(entries, key=lambda e: e.offset):
                handle.seek(entry.offset)
                payload = _decode_line(handle.read(entry.length))
                if payload is None:
                    raise JournalCorruptError(f"{self.path}: entry at byte {entry.offset} changed")
                records.append(MemoryRecord.model_validate(payload["rec"]))
                vec = base64.b64decode(str(payload["vec"]))
                vectors.append(np.frombuffer(vec, dtype="<f4").astype(np.float32))
        if not vectors:
            return records, np.zeros((0, 0), dtype=np.float32)
        return records, np.stack(vectors)

    def size(self) -> int:
        return os.path.getsize(self.path)

    # -- compaction ----------------------------------------------------------------------

    def compact(self) -> JournalState:
        """Rewrite the file with only the live ``add`` lines; atomic (temp, fsync, rename)."""
        state = self.scan()
        header = _encode_line({"op": "meta", "version": _VERSION, "embedder": self.embedder})
        new_state = JournalState(embedder=self.embedder)
        with open(self.path, "rb") as src, atomic_open(self.path) as dst:
            dst.write(header)
            offset = len(header)
            for rid, entry in sorted(state.live.items(), key=lambda item: item[1].offset):
                src.seek(entry.offset)
                dst.write(src.read(entry.length))
                new_state.live[rid] = JournalEntry(entry.kind, offset, entry.length)
                offset += entry.length
            self.close()  # the append handle goes before the file is replaced
        new_state.size = offset
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        return new_state

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
