"""The audit log: every safety verdict, one JSON object per line, durable on return.

Owns :class:`AuditLog` (append a record, flush, fsync; read records back). A crash can lose
at most the line being written, never an earlier one. Never decides anything and never
writes secrets: callers pass arguments already redacted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["AuditLog"]


class AuditLog:
    """Append-only JSONL at ``path`` (created with its folder); ``fsync=False`` trades the
    per-record durability for speed (benchmarks), never the default."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": time.time(), **record}, ensure_ascii=False, default=str)
        data = (line.replace("\n", " ") + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, oldest first (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        out: list[dict[str, Any]] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
