"""Saving and restoring a whole session, atomically, with a versioned header.

Owns the on-disk format of a session: a short text header (magic, format version, model
fingerprint) followed by a ``torch.save`` payload read back with ``weights_only=True`` (no
code execution on load). Writes go to a temp file in the same folder, are fsynced and then
renamed over the target, so a crash or kill mid-write leaves the previous state intact.
Never interprets what the state means: the session and its cache do.
"""

from __future__ import annotations

import dataclasses
import io
import json
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from agentcore._atomic import atomic_write_bytes
from agentcore.core.cache import StreamingConfig
from agentcore.core.infini import InfiniConfig
from agentcore.core.recall import RecallConfig

if TYPE_CHECKING:
    from agentcore.core.engine import Engine
    from agentcore.core.session import Session

__all__ = [
    "FORMAT_VERSION",
    "SessionStateError",
    "load_session",
    "save_session",
]

MAGIC = b"AGENTCORE-SESSION"
FORMAT_VERSION = 1
_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}  # array item size -> dtype


class SessionStateError(RuntimeError):
    """A saved session cannot be read: wrong format, version or model."""


def save_session(session: Session, path: Path) -> Path:
    engine = session.engine
    payload: dict[str, Any] = {
        "id": session.id,
        "streaming": {
            "n_sink": session.config.streaming.n_sink,
            "window": session.config.streaming.window,
            "chunk_size": session.config.streaming.chunk_size,
        },
        "keep_token_ids": session.config.keep_token_ids,
        "recall": dataclasses.asdict(session.config.recall) if session.config.recall else None,
        "infini": dataclasses.asdict(session.config.infini) if session.config.infini else None,
        "n_tokens": session.n_tokens,
        "tokens": _tokens_tensor(session.tokens),
        "next_logits": session.next_logits,
        "sampler": session.sampler.get_state(),
        "messages": json.dumps(session.messages),
        "rendered": session.rendered,
        "meta": json.dumps(session.meta),
        "cache": session.cache.state_dict(),
        "extensions": _extension_states(session, path),
    }
    buf = io.BytesIO()
    header = {"version": FORMAT_VERSION, "model": engine.fingerprint()}
    buf.write(MAGIC + b" " + json.dumps(header).encode() + b"\n")
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


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


def load_session(engine: Engine, path: Path) -> Session:
    from agentcore.core.session import Session, SessionConfig

    if not path.is_file():
        raise SessionStateError(f"no saved session at {path}")
    raw = path.read_bytes()
    newline = raw.find(b"\n")
    header = read_header(path)
    if header.get("version") != FORMAT_VERSION:
        raise SessionStateError(
            f"{path} has session format version {header.get('version')}, this agentcore reads "
            f"version {FORMAT_VERSION}"
        )
    if header.get("model") != engine.fingerprint():
        raise SessionStateError(
            f"{path} was saved with model {header.get('model')!r}; the loaded model is "
            f"{engine.fingerprint()!r}. Load the same model to resume this session."
        )
    payload = torch.load(io.BytesIO(raw[newline + 1 :]), weights_only=True)
    streaming = StreamingConfig(**payload["streaming"])
    recall = RecallConfig(**payload["recall"]) if payload.get("recall") else None
    infini = InfiniConfig(**payload["infini"]) if payload.get("infini") else None
    config = SessionConfig(
        streaming=streaming,
        keep_token_ids=bool(payload["keep_token_ids"]),
        recall=recall,
        infini=infini,
    )
    session = Session(engine, config, session_id=str(payload["id"]))
    session.cache.load_state_dict(payload["cache"])
    session.n_tokens = int(payload["n_tokens"])
    tokens = payload["tokens"]
    session.tokens = array(session.tokens.typecode, tokens.tolist())  # int32 or older int64
    session.next_logits = payload["next_logits"]
    session.sampler.set_state(payload["sampler"])
    session.messages = json.loads(payload["messages"])
    session.rendered = str(payload["rendered"])
    session.meta = json.loads(payload.get("meta", "{}"))
    for name, state in payload.get("extensions", {}).items():
        ext = session.extensions.get(name)
        if ext is None:
            raise SessionStateError(f"{path} uses the {name!r} memory, which this session lacks")
        if name == "recall":
            state = {**state, "directory": _recall_directory(path, state["directory"])}
        ext.load_state_dict(state)
    return session
