"""An agent's visible conversation: an append-only journal on disk, a bounded tail in memory.

Owns :class:`AgentHistory`: the user, assistant and tool turns of every run. Turns since the
last save stay in memory; :meth:`AgentHistory.flush` appends them to ``history.jsonl`` (one
JSON line each, one write and one fsync per save) and keeps only the last ``tail`` in memory.
The agent's state file records how many bytes of the journal are committed, so a line torn by
a kill is ignored on load and written over by the next save. A run's path never reads the
journal: only :meth:`AgentHistory.all` (inspection, UIs) does.

Never decides what goes in: the agent appends its turns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["AgentHistory"]

_TAIL = 200  # turns kept in memory after a save


class AgentHistory:
    """The conversation of one agent (see the module docstring)."""

    def __init__(self, path: Path, tail: int = _TAIL) -> None:
        self.path = path
        self.tail = tail
        self._saved: list[dict[str, Any]] = []  # the last saved turns (at most `tail`)
        self._unsaved: list[dict[str, Any]] = []
        self.total_saved = 0  # turns in the journal
        self.committed = 0  # its bytes that belong to the saved state

    def __len__(self) -> int:
        return self.total_saved + len(self._unsaved)

    def append(self, message: dict[str, Any]) -> None:
        self._unsaved.append(message)

    def unsaved(self) -> list[dict[str, Any]]:
        """Turns since the last save (the current run's)."""
        return self._unsaved

    def recent(self) -> list[dict[str, Any]]:
        """The turns in memory: the last saved ones and the unsaved ones."""
        return [*self._saved, *self._unsaved]

    def flush(self) -> None:
        """Append the unsaved turns to the journal (one fsync); keep the last ``tail``."""
        if not self._unsaved:
            return
        data = b"".join(
            json.dumps(m, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
            for m in self._unsaved
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, self.committed)  # a line torn by an earlier kill goes
            os.lseek(fd, self.committed, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.committed += len(data)
        self.total_saved += len(self._unsaved)
        self._saved = [*self._saved, *self._unsaved][-self.tail :]
        self._unsaved = []

    def all(self) -> list[dict[str, Any]]:
        """Every turn, oldest first (reads the journal)."""
        return [*self._read(), *self._unsaved]

    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.committed or not self.path.is_file():
            return
        with open(self.path, "rb") as fh:
            data = fh.read(self.committed)
        for line in data.splitlines():
            if line.strip():
                yield json.loads(line)

    def restore(self, tail: list[dict[str, Any]], total: int | None, committed: int) -> None:
        """State from a saved agent; ``total=None``: a state written before the journal, whose
        ``tail`` is the whole history (saved to the journal at the next save)."""
        if total is None:
            self._saved, self._unsaved = [], [dict(m) for m in tail]
            self.total_saved, self.committed = 0, 0
            return
        self._saved, self._unsaved = [dict(m) for m in tail][-self.tail :], []
        self.total_saved, self.committed = total, committed
