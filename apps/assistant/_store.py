"""The assistant's own records: which conversations exist, their titles, the chosen theme.

Owns :class:`SessionStore`, a small JSON file (``<root>/sessions.json``) written atomically
(temp file, fsync, rename) so a crash mid-write leaves the previous version intact, and
:class:`SessionMeta`, one conversation's metadata. Never stores the conversation itself: the
agent keeps its history and the model backend its token stream.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentcore._atomic import atomic_write_bytes
from agentcore.paths import validate_name

__all__ = ["SessionMeta", "SessionStore", "StoreCorruptError"]

_TITLE_CHARS = 60


class StoreCorruptError(ValueError):
    """``sessions.json`` exists but is not a valid session list."""


class SessionMeta(BaseModel):
    """One conversation as the session list shows it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    title: str = "New chat"
    renamed: bool = False  # a user-chosen title; never replaced by the first question
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)
    turns: int = Field(default=0, ge=0)


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = 1
    current: str | None = None
    theme: str | None = None
    sessions: list[SessionMeta] = Field(default_factory=list)


def title_from(text: str) -> str:
    """A one-line title from a first question."""
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1].rstrip() + "…"


class SessionStore:
    """The session list of one agent's assistant, kept in ``<root>/sessions.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / "sessions.json"
        self._doc = self._read()

    # -- file ----------------------------------------------------------------------------

    def _read(self) -> _Document:
        if not self.path.exists():
            return _Document()
        try:
            return _Document.model_validate_json(self.path.read_bytes())
        except (ValidationError, ValueError) as exc:
            raise StoreCorruptError(
                f"{self.path} is not a valid session list ({exc}); move it away to start fresh"
            ) from None

    def _write(self) -> None:
        data = json.dumps(self._doc.model_dump(mode="json"), indent=1).encode("utf-8")
        atomic_write_bytes(self.path, data)

    # -- queries -------------------------------------------------------------------------

    def list(self) -> list[SessionMeta]:
        """Every conversation, most recently used first."""
        return sorted(self._doc.sessions, key=lambda s: (-s.updated, s.id))

    def get(self, session_id: str) -> SessionMeta | None:
        return next((s for s in self._doc.sessions if s.id == session_id), None)

    @property
    def current(self) -> str | None:
        cur = self._doc.current
        return cur if cur is not None and self.get(cur) is not None else None

    @property
    def theme(self) -> str | None:
        return self._doc.theme

    # -- changes -------------------------------------------------------------------------

    def _replace(self, meta: SessionMeta) -> SessionMeta:
        self._doc.sessions = [meta if s.id == meta.id else s for s in self._doc.sessions]
        return meta

    def _require(self, session_id: str) -> SessionMeta:
        meta = self.get(session_id)
        if meta is None:
            raise KeyError(f"session {session_id!r} does not exist")
        return meta

    def create(self, session_id: str | None = None, title: str | None = None) -> SessionMeta:
        """A new conversation (``session_id`` must be a valid, unused name)."""
        sid = validate_name(session_id) if session_id else f"chat-{uuid.uuid4().hex[:10]}"
        if self.get(sid) is not None:
            raise ValueError(f"session {sid!r} already exists")
        meta = SessionMeta(id=sid, title=title or "New chat", renamed=title is not None)
        self._doc.sessions.append(meta)
        self._doc.current = sid
        self._write()
        return meta

    def ensure(self, session_id: str) -> SessionMeta:
        """The named conversation, created (titled by its name) when it does not exist."""
        return self.get(session_id) or self.create(session_id, title=session_id)

    def select(self, session_id: str) -> SessionMeta:
        meta = self._require(session_id)
        self._doc.current = session_id
        self._write()
        return meta

    def rename(self, session_id: str, title: str) -> SessionMeta:
        clean = " ".join(title.split())
        if not clean:
            raise ValueError(f"title={title!r}: expected some non-blank text")
        meta = self._require(session_id).model_copy(
            update={"title": clean[:_TITLE_CHARS], "renamed": True}
        )
        self._replace(meta)
        self._write()
        return meta

    def record_turn(self, session_id: str, question: str) -> SessionMeta:
        """One more question asked: bump the count and the time; title a new chat by it."""
        meta = self._require(session_id)
        update: dict[str, Any] = {"turns": meta.turns + 1, "updated": time.time()}
        if not meta.renamed and meta.turns == 0:
            update["title"] = title_from(question)
        new = self._replace(meta.model_copy(update=update))
        self._write()
        return new

    def delete(self, session_id: str) -> None:
        self._require(session_id)
        self._doc.sessions = [s for s in self._doc.sessions if s.id != session_id]
        if self._doc.current == session_id:
            rest = self.list()
            self._doc.current = rest[0].id if rest else None
        self._write()

    def set_theme(self, theme: str) -> None:
        self._doc.theme = theme
        self._write()
