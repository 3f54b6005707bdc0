"""Per-session asyncio locks that exist only while a request holds or awaits them.

Owns :class:`AsyncSessionLocks`: one :class:`asyncio.Lock` per session name, created when a
request asks for it and dropped when the last request that asked has let go, so a server that
sees many session names keeps only the locks in use. Used from the event loop only (no thread
guard). Never runs requests: the model service does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["AsyncSessionLocks"]


class AsyncSessionLocks:
    """Named asyncio locks, counted by their users (call :meth:`enter`, then :meth:`leave`)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def __len__(self) -> int:
        """How many names have a lock now (held or awaited)."""
        return len(self._locks)

    def enter(self, name: str) -> asyncio.Lock:
        """``name``'s lock, counted as used until :meth:`leave` (acquire it separately)."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        return lock

    def leave(self, name: str) -> None:
        """One user of ``name``'s lock is done (released it or gave up waiting)."""
        left = self._users[name] - 1
        if left:
            self._users[name] = left
        else:
            del self._users[name], self._locks[name]

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold ``name``'s lock for the ``async with`` block."""
        lock = self.enter(name)
        try:
            async with lock:
                yield
        finally:
            self.leave(name)
