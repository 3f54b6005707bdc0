"""Per-session locks that exist only while someone holds or waits for them.

Owns :class:`SessionLocks`: one :class:`threading.Lock` per session name, created when a
request asks for it and dropped when the last request that asked has let go, so a server that
sees many session names keeps only the locks in use. Never decides what a lock protects: the
backends hold one around each request to a session.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SessionLocks"]


@dataclasses.dataclass
class _Entry:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    users: int = 0  # requests holding or waiting for the lock


class SessionLocks:
    """Named locks, counted by their users; thread-safe."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many names have a lock now (held or waited for)."""
        with self._guard:
            return len(self._entries)

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock for the ``with`` block, waiting for it as long as it takes."""
        entry = self._enter(name)
        try:
            with entry.lock:
                yield
        finally:
            self._leave(name, entry)

    @contextmanager
    def hold_if_free(self, name: str) -> Iterator[bool]:
        """Hold ``name``'s lock for the ``with`` block if nobody holds it; yields whether it
        does (never waits)."""
        entry = self._enter(name)
        try:
            got = entry.lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    entry.lock.release()
        finally:
            self._leave(name, entry)

    def _enter(self, name: str) -> _Entry:
        with self._guard:
            entry = self._entries.setdefault(name, _Entry())
            entry.users += 1
            return entry

    def _leave(self, name: str, entry: _Entry) -> None:
        with self._guard:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[name]
