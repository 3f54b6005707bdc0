"""The audit log: every safety verdict, one JSON object per line, durable on return.

Owns :class:`AuditLog` (append a record, flush, fsync; read records back). Records are
ASCII-escaped JSON split only on ``\n``, so no character in the data ends or hides one. A crash
can lose at most the line being written, never an earlier one. Tools never reach the file: the
effect guard refuses every path that leads to it. Never decides anything and never
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
        # ASCII-escaped JSON: no character in the data (newline, U+2028, U+2029, NUL, a lone
        # surrogate) can end a record or hide one; every record is exactly one line
        line = json.dumps({"time": time.time(), **record}, ensure_ascii=True, default=str)
        data = (line + "\n").encode("ascii")
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
        for line in self.path.read_bytes().decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
