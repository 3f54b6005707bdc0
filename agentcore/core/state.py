"""Saving and restoring a session: a base snapshot, a journal of turns, and the history.

Owns the on-disk format of a session. Three files share the session file's name:

- ``NAME`` (the base): a short text header (magic, format version, model fingerprint, base id)
  and a ``torch.save`` payload read back with ``weights_only=True`` (no code execution on
  load): the fixed-size attention state, the bounded tails of the transcript and token ids.
  Replaced atomically (temp file, fsync, rename).
- ``NAME.journal``: what each save since the base appended, one framed record per save
  (length, CRC-32, payload): the window slots the new tokens filled, the sinks, the next
  token's logits, the sampler, the memories' states and the turn's messages and ids. A save
  appends one record and fsyncs once; when the journal outgrows the base it is compacted
  into a new base. A torn record (a kill mid-write) fails its length or CRC check and is
  ignored with everything after it; a journal of another base is ignored whole.
- ``NAME.history``: the whole transcript and token ids, framed records appended at each
  compaction; the base names how many of its bytes are committed (more are a torn write).

A save therefore writes the turn's new tokens' share of the state plus a fixed part (logits,
sinks, sampler), never the whole history, and restore reads the base and at most a base's
worth of journal. Never interprets what the state means: the session and its cache do.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import struct
import uuid
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from agentcore._atomic import atomic_write_bytes
from agentcore.core.cache import StreamingConfig, merge_state
from agentcore.core.infini import InfiniConfig
from agentcore.core.recall import RecallConfig
from agentcore.core.session import Session, SessionConfig, SessionHost

__all__ = [
    "FORMAT_VERSION",
    "DiskState",
    "SessionStateError",
    "iter_history",
    "load_session",
    "save_session",
    "session_files",
]

log = logging.getLogger(__name__)

MAGIC = b"AGENTCORE-SESSION"
JOURNAL_MAGIC = b"AGENTCORE-JOURNAL"
FORMAT_VERSION = 2  # 1: one file holding everything (still read)
_FRAME = struct.Struct("<II")  # a record's payload length and CRC-32
_MIN_JOURNAL = 4 << 20  # a journal may grow to this or the base's size before compaction
_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}  # array item size -> dtype


_C = TypeVar("_C")


class SessionStateError(RuntimeError):
    """A saved session cannot be read: wrong format, version or model."""


def session_files(path: Path) -> list[Path]:
    """The files a session saved at ``path`` consists of (that exist), besides its recall
    folder."""
    return [p for p in (path, _journal_path(path), _history_path(path)) if p.exists()]


def _journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _history_path(path: Path) -> Path:
    return path.with_name(path.name + ".history")


@dataclasses.dataclass
class DiskState:
    """Where a session was last saved and what its files hold (kept on the session)."""

    path: Path | None  # the base file (None: a fork, which compacts into its own files first)
    history_path: Path  # the history file to read
    history_len: int  # its committed bytes
    base_id: str
    journal_len: int | None  # valid bytes of the journal (None: start a new one)
    base_bytes: int
    pos_saved: int  # cache position at the last save
    uncompacted: list[list[Any]]  # history items in the journal, not yet in the history file

    def fork(self) -> DiskState:
        return dataclasses.replace(
            self, path=None, journal_len=None, uncompacted=list(self.uncompacted)
        )


# ---------------------------------------------------------------------- frames
def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _read_frames(fh: BinaryIO, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) of each whole, intact record from the current offset; stops at
    the first torn or corrupt one (or at ``limit`` bytes)."""
    offset = fh.tell()
    while limit is None or offset + _FRAME.size <= limit:
        head = fh.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return
        size, crc = _FRAME.unpack(head)
        if limit is not None and offset + _FRAME.size + size > limit:
            return
        payload = fh.read(size)
        if len(payload) < size or zlib.crc32(payload) != crc:
            return
        offset += _FRAME.size + size
        yield offset, payload


def _torch_bytes(payload: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def _append(path: Path, at: int, data: bytes) -> None:
    """Write ``data`` at offset ``at`` of ``path`` (cutting what follows: a torn record) and
    fsync it: one fsync."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, at)
        os.lseek(fd, at, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- saving
def _pending_history(session: Session) -> list[list[Any]]:
    """What the session appended since its last save, as history items ``[kind, value]``."""
    items: list[list[Any]] = []
    messages = session.transcript.unjournaled()
    if messages:
        items.append(["messages", messages])
    ids = session.unjournaled_tokens()
    if ids:
        items.append(["tokens", ids])
    items.extend([kind, value] for kind, value in session.records)
    return items


def save_session(session: Session, path: Path) -> Path:
    """Save ``session`` to ``path``: one journal record when it was last saved there (and the
    journal is smaller than the base), else a new base (compaction)."""
    disk: DiskState | None = session.disk
    items = _pending_history(session)
    if disk is not None and disk.path == path and disk.journal_len is not None:
        delta = session.cache.state_since(disk.pos_saved)
        if delta is not None:
            record = _frame(_torch_bytes(_record_payload(session, path, delta, items)))
            if disk.journal_len + len(record) <= max(disk.base_bytes, _MIN_JOURNAL):
                _append(_journal_path(path), disk.journal_len, record)
                disk.journal_len += len(record)
                disk.uncompacted.extend(items)
                disk.pos_saved = session.cache.pos
                session.transcript_chars_saved = session.transcript.chars
                session.mark_journaled()
                return path
    _compact(session, path, items)
    return path


def _record_payload(
    session: Session, path: Path, delta: dict[str, Any], items: list[list[Any]]
) -> dict[str, Any]:
    disk = session.disk
    assert disk is not None
    t = session.transcript
    new_chars = t.chars - session.transcript_chars_saved
    return {
        "pos_before": disk.pos_saved,
        "n_tokens": session.n_tokens,
        "next_logits": session.next_logits,
        "sampler": session.sampler.get_state(),
        "cache": delta,
        "extensions": _extension_states(session, path),
        "meta": json.dumps(session.meta),
        "history": json.dumps(items),
        "transcript": json.dumps(
            {
                "chars": t.chars,
                "text": t.text[-new_chars:] if new_chars > 0 else "",
                "mark": list(t.mark) if t.mark is not None else None,
                "since_mark": t.since_mark,
                "first": t.first,
            }
        ),
    }


def _compact(session: Session, path: Path, items: list[list[Any]]) -> None:
    """Write a new base at ``path``: the history file first (committed length), then the base,
    then an empty journal for it. A kill between the steps leaves a consistent pair."""
    disk: DiskState | None = session.disk
    path.parent.mkdir(parents=True, exist_ok=True)
    history = _history_path(path)
    carried = [*disk.uncompacted, *items] if disk is not None else items
    if disk is not None and disk.history_path != history:
        _copy_prefix(disk.history_path, history, disk.history_len)
        committed = disk.history_len
    else:
        committed = disk.history_len if disk is not None else 0
    if carried:
        data = _frame(json.dumps(carried).encode())
        _append(history, committed, data)
        committed += len(data)
    elif not history.exists() or history.stat().st_size != committed:
        _append(history, committed, b"")
    base_id = uuid.uuid4().hex
    engine = session.engine
    payload = _base_payload(session, path, committed)
    header = {"version": FORMAT_VERSION, "model": engine.fingerprint(), "base": base_id}
    body = MAGIC + b" " + json.dumps(header).encode() + b"\n" + _torch_bytes(payload)
    atomic_write_bytes(path, body)
    journal_head = JOURNAL_MAGIC + b" " + json.dumps({"base": base_id}).encode() + b"\n"
    atomic_write_bytes(_journal_path(path), journal_head)
    session.disk = DiskState(
        path=path,
        history_path=history,
        history_len=committed,
        base_id=base_id,
        journal_len=len(journal_head),
        base_bytes=len(body),
        pos_saved=session.cache.pos,
        uncompacted=[],
    )
    session.transcript_chars_saved = session.transcript.chars
    session.mark_journaled()


def _copy_prefix(src: Path, dst: Path, n: int) -> None:
    """``dst`` := the first ``n`` bytes of ``src`` (a fork or a moved session's history)."""
    with open(src, "rb") as a, open(dst, "wb") as b:
        left = n
        while left:
            chunk = a.read(min(left, 1 << 20))
            if not chunk:
                raise SessionStateError(f"{src} is shorter than the {n} bytes its session expects")
            b.write(chunk)
            left -= len(chunk)


def _base_payload(session: Session, path: Path, history_bytes: int) -> dict[str, Any]:
    return {
        "id": session.id,
        "streaming": {
            "n_sink": session.config.streaming.n_sink,
            "window": session.config.streaming.window,
            "chunk_size": session.config.streaming.chunk_size,
        },
        "keep_token_ids": session.config.keep_token_ids,
        "tail_messages": session.config.tail_messages,
        "tail_tokens": session.config.tail_tokens,
        "recall": dataclasses.asdict(session.config.recall) if session.config.recall else None,
        "infini": dataclasses.asdict(session.config.infini) if session.config.infini else None,
        "n_tokens": session.n_tokens,
        "tokens": _tokens_tensor(session.tokens),  # the tail
        "next_logits": session.next_logits,
        "sampler": session.sampler.get_state(),
        "transcript": json.dumps(session.transcript.state()),
        "meta": json.dumps(session.meta),
        "cache": session.cache.state_dict(),
        "extensions": _extension_states(session, path),
        "history_bytes": history_bytes,
    }


def _tokens_tensor(tokens: array[int]) -> torch.Tensor:
    """The stream's ids as ``[N]`` int32, whatever the item size of the array holding them
    (``array("l")`` is 4 bytes on Windows and 8 on Linux); files written before held int64."""
    if not len(tokens):
        return torch.zeros(0, dtype=torch.int32)
    raw = torch.frombuffer(bytearray(tokens.tobytes()), dtype=_INT_OF_SIZE[tokens.itemsize])
    return raw.to(torch.int32)


def _recall_folder(path: Path) -> str:
    """The folder of a session file's evicted blocks, relative to the file's own folder."""
    return f"{path.name}.recall"


def _extension_states(session: Session, path: Path) -> dict[str, Any]:
    states = {}
    for name, ext in session.extensions.items():
        if name == "recall":
            # evicted blocks live in append-only files beside the session file; the state
            # names their folder relative to it, so a moved sessions folder still restores
            ext.relocate(path.parent / _recall_folder(path))
            states[name] = {**ext.state_dict(), "directory": _recall_folder(path)}
        else:
            states[name] = ext.state_dict()
    return states


def _recall_directory(path: Path, saved: str) -> str:
    """Where the evicted blocks of the session file ``path`` are: ``saved`` relative to its
    folder; an absolute ``saved`` (files written before) while it exists, else beside it."""
    folder = Path(saved)
    if not folder.is_absolute():
        return str(path.parent / folder)
    beside = path.parent / _recall_folder(path)
    return str(beside if not folder.is_dir() and beside.is_dir() else folder)


def read_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        line = fh.readline(4096)
    if not line.startswith(MAGIC + b" "):
        raise SessionStateError(f"{path} is not an agentcore session file (bad magic)")
    header: dict[str, Any] = json.loads(line[len(MAGIC) + 1 :])
    return header


def _saved_config(cls: type[_C], fields: dict[str, Any], path: Path) -> _C:
    """``cls(**fields)``, a configuration a session was saved with; a field this version does
    not know (a file written by a newer agentcore) or a value it rejects is a
    :class:`SessionStateError` naming it."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - known)
    if unknown:
        raise SessionStateError(
            f"{path} was saved with {cls.__name__} field(s) {unknown} this agentcore does not "
            f"know (written by a newer version?); it knows {sorted(known)}"
        )
    try:
        return cls(**fields)
    except (TypeError, ValueError) as e:
        raise SessionStateError(f"{path}: the saved {cls.__name__} is invalid: {e}") from e


def load_session(engine: SessionHost, path: Path) -> Session:
    """The session saved at ``path``: its base, then every intact journal record of that base."""

    if not path.is_file():
        raise SessionStateError(f"no saved session at {path}")
    raw = path.read_bytes()
    newline = raw.find(b"\n")
    header = read_header(path)
    if header.get("version") not in (1, FORMAT_VERSION):
        raise SessionStateError(
            f"{path} has session format version {header.get('version')}, this agentcore reads "
            f"versions 1 and {FORMAT_VERSION}"
        )
    if header.get("model") != engine.fingerprint():
        raise SessionStateError(
            f"{path} was saved with model {header.get('model')!r}; the loaded model is "
            f"{engine.fingerprint()!r}. Load the same model to resume this session."
        )
    payload = torch.load(io.BytesIO(raw[newline + 1 :]), weights_only=True)
    streaming = _saved_config(StreamingConfig, payload["streaming"], path)
    recall = _saved_config(RecallConfig, payload["recall"], path) if payload.get("recall") else None
    infini = _saved_config(InfiniConfig, payload["infini"], path) if payload.get("infini") else None
    defaults = SessionConfig()
    config = SessionConfig(
        streaming=streaming,
        keep_token_ids=bool(payload["keep_token_ids"]),
        tail_messages=int(payload.get("tail_messages", defaults.tail_messages)),
        tail_tokens=int(payload.get("tail_tokens", defaults.tail_tokens)),
        recall=recall,
        infini=infini,
    )
    session = Session(engine, config, session_id=str(payload["id"]))
    session.n_tokens = int(payload["n_tokens"])
    tokens = payload["tokens"]
    session.tokens = array(session.tokens.typecode, tokens.tolist())  # int32 or older int64
    session.next_logits = payload["next_logits"]
    sampler = payload["sampler"]
    session.meta = json.loads(payload.get("meta", "{}"))
    cache = payload["cache"]
    extensions = dict(payload.get("extensions", {}))
    if header["version"] == 1:  # everything in one file: it all goes to the next save
        session.transcript.load_legacy(json.loads(payload["messages"]), str(payload["rendered"]))
    else:
        session.transcript.load_state(json.loads(payload["transcript"]))
        session.tokens_journaled = session.n_tokens
        session.disk = DiskState(
            path=path,
            history_path=_history_path(path),
            history_len=int(payload["history_bytes"]),
            base_id=str(header["base"]),
            journal_len=None,
            base_bytes=len(raw),
            pos_saved=int(cache["pos"]),
            uncompacted=[],
        )
        for record in _journal(path, session.disk):
            cache = merge_state(cache, record["cache"])
            session.n_tokens = int(record["n_tokens"])
            session.next_logits = record["next_logits"]
            sampler = record["sampler"]
            session.meta = json.loads(record["meta"])
            extensions = dict(record["extensions"])
            items = json.loads(record["history"])
            _replay(session, items, json.loads(record["transcript"]))
            session.disk.uncompacted.extend(items)
            session.disk.pos_saved = int(cache["pos"])
        session.transcript_chars_saved = session.transcript.chars
        session.mark_journaled()
    session.cache.load_state_dict(cache)
    session.sampler.set_state(sampler)
    for name, state in extensions.items():
        ext = session.extensions.get(name)
        if ext is None:
            raise SessionStateError(f"{path} uses the {name!r} memory, which this session lacks")
        if name == "recall":
            state = {**state, "directory": _recall_directory(path, state["directory"])}
        ext.load_state_dict(state)
    return session


def _journal(path: Path, disk: DiskState) -> Iterator[dict[str, Any]]:
    """The intact records of the journal of ``disk``'s base, in order; sets
    ``disk.journal_len`` to where the next record goes (None: the journal is of another base
    or missing, start a new one)."""
    journal = _journal_path(path)
    if not journal.is_file():
        return
    with open(journal, "rb") as fh:
        line = fh.readline(4096)
        if not line.startswith(JOURNAL_MAGIC + b" ") or not line.endswith(b"\n"):
            return
        try:
            head = json.loads(line[len(JOURNAL_MAGIC) + 1 :])
        except ValueError:
            return
        if head.get("base") != disk.base_id:
            return  # a compaction was killed after writing its base: the base has it all
        disk.journal_len = len(line)
        for end, data in _read_frames(fh):
            record = torch.load(io.BytesIO(data), weights_only=True)
            if int(record["pos_before"]) != disk.pos_saved:
                log.warning(
                    "%s: a journal record does not follow the one before; ignoring the rest",
                    journal,
                )
                return
            yield record
            disk.journal_len = end


def _replay(session: Session, items: list[list[Any]], transcript: dict[str, Any]) -> None:
    """Apply one journal record's history items and transcript tail to a loading session."""
    t = session.transcript
    for kind, value in items:
        if kind == "messages":
            t.messages.extend(value)
        elif kind == "tokens" and session.config.keep_token_ids:
            session.tokens.extend(value)
    t.restore_tail(
        chars=int(transcript["chars"]),
        text=str(transcript["text"]),
        mark=transcript["mark"],
        since_mark=str(transcript["since_mark"]),
        first=transcript["first"],
    )


def iter_history(session: Session, kind: str) -> Iterator[Any]:
    """Everything of ``kind`` in the session's history (files, then memory), oldest first;
    ``"messages"`` and ``"tokens"`` one message / id at a time, other kinds as recorded."""
    disk: DiskState | None = session.disk
    batches: list[list[list[Any]]] = []
    if disk is not None and disk.history_len and disk.history_path.is_file():
        with open(disk.history_path, "rb") as fh:
            for _, data in _read_frames(fh, disk.history_len):
                yield from _of_kind(json.loads(data), kind)
    if disk is not None:
        batches.append(disk.uncompacted)
    batches.append(_pending_history(session))
    for items in batches:
        yield from _of_kind(items, kind)


def _of_kind(items: list[list[Any]], kind: str) -> Iterator[Any]:
    for k, value in items:
        if k != kind:
            continue
        if kind in ("messages", "tokens"):
            yield from value
        else:
            yield value
