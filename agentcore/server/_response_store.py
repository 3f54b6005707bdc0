"""Stored responses: what a response id stands for, kept durably next to the sessions.

Owns :class:`ResponseStore` and :class:`StoredResponse`: for every response made with
``store: true``, its Response object (what ``GET /v1/responses/{id}`` returns), the session
that holds its chain, the session's size right after it (``tokens`` and ``messages``: a chain
continues only from the response the session still ends with), and the instructions the chain
opened with. With a sessions folder each record is one small JSON file under
``<sessions>/responses/``, written atomically (:mod:`agentcore._atomic`), so ids survive a
restart exactly when the sessions do; a record costs its own size, never the store's. Without a
folder (a backend that keeps sessions in memory) the records live in memory, the oldest
dropped beyond ``max_in_memory``. Never runs a model and never touches the sessions
themselves: the route checks the session against the record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from agentcore._atomic import atomic_write_bytes

__all__ = ["RESPONSE_ID", "ResponseStore", "StoredResponse"]

log = logging.getLogger("agentcore.server")

RESPONSE_ID = re.compile(r"^resp_[0-9a-f]{32}$")  # what this server hands out
_FOLDER = "responses"


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    """One stored response and where its chain lives."""

    response: dict[str, Any]  # the Response object as the client got it
    session: str  # the session holding the chain
    state: dict[str, int]  # the session's {"tokens", "messages"} right after this response
    instructions: str | None  # the system message the chain opened with

    @property
    def id(self) -> str:
        return str(self.response["id"])

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredResponse:
        return cls(
            response=dict(data["response"]),
            session=str(data["session"]),
            state={str(k): int(v) for k, v in data["state"].items()},
            instructions=data.get("instructions"),
        )


class ResponseStore:
    """Response records by id, on disk under ``sessions_dir`` or in memory without one."""

    def __init__(self, sessions_dir: Path | None, *, max_in_memory: int = 4096) -> None:
        self.folder = sessions_dir / _FOLDER if sessions_dir is not None else None
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[str, StoredResponse] = OrderedDict()
        self._guard = threading.Lock()

    def _path(self, rid: str) -> Path | None:
        if self.folder is None or not RESPONSE_ID.match(rid):
            return None
        return self.folder / f"{rid}.json"

    def get(self, rid: str) -> StoredResponse | None:
        """The record of ``rid`` (None: never stored, deleted, or not an id of this server)."""
        if not RESPONSE_ID.match(rid):
            return None
        path = self._path(rid)
        if path is None:
            with self._guard:
                return self._memory.get(rid)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable response record %s: %s", path, exc)
            return None
        return StoredResponse.from_json(data)

    def put(self, record: StoredResponse) -> None:
        """Keep ``record`` (atomically: a kill leaves it whole or absent)."""
        path = self._path(record.id)
        if path is None:
            with self._guard:
                self._memory[record.id] = record
                while len(self._memory) > self.max_in_memory:
                    self._memory.popitem(last=False)
            return
        data = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"))
        atomic_write_bytes(path, data.encode("utf-8"))

    def delete(self, rid: str) -> bool:
        """Forget ``rid``; False when there was nothing to forget."""
        if not RESPONSE_ID.match(rid):
            return False
        path = self._path(rid)
        if path is None:
            with self._guard:
                return self._memory.pop(rid, None) is not None
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
