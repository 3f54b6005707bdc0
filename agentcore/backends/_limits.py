"""What a backend accepts: the default session limits and the errors past them.

Owns the defaults of a persistent backend's session limits (in memory, on disk) and the two
errors a request can run into: one session too many (:class:`SessionLimitError`, HTTP 507) and a
``tools`` entry the backend cannot decode under (:class:`ToolDeclarationError`, HTTP 400). Never
imports the model core: ``agentcore serve --help`` and the server's error mapping read these
without torch; the local backend enforces them.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_RESIDENT",
    "DEFAULT_MAX_SESSIONS",
    "SessionLimitError",
    "ToolDeclarationError",
]

DEFAULT_MAX_RESIDENT = 16  # sessions a persistent backend keeps in memory
DEFAULT_MAX_SESSIONS = 10_000  # sessions `agentcore serve` keeps on disk unless told otherwise


class SessionLimitError(RuntimeError):
    """A new session would exceed the sessions a backend keeps on disk (HTTP 507)."""

    def __init__(self, limit: int, held: int) -> None:
        super().__init__(
            f"this server keeps at most {limit} sessions on disk and holds {held}: delete "
            "sessions no longer needed (DELETE /v1/sessions/{id}), or raise the limit "
            "(agentcore serve --max-sessions N; LocalBackend(max_sessions=N))"
        )
        self.limit = limit


class ToolDeclarationError(ValueError):
    """A ``tools`` entry this backend cannot decode under; ``param`` locates it."""

    def __init__(self, index: int, name: str | None, problem: str, field: str = "") -> None:
        who = f"tools[{index}]" + (f" ({name!r})" if name else "")
        super().__init__(f"{who}: {problem}")
        self.param = f"tools[{index}]{field}"
