"""How the model server runs: address, limits, worker threads and where sessions are saved.

Owns :class:`ServerConfig`, a frozen dataclass with named presets. Never starts anything: the
app (:func:`agentcore.server.create_app`) and the command line (:mod:`agentcore.server._main`)
read it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agentcore.core.params import REPLY_PENALTY
from agentcore.paths import data_home

__all__ = ["ServerConfig", "default_sessions_dir"]

MIB = 1024 * 1024


def default_sessions_dir() -> Path:
    """Where the server keeps its sessions unless told otherwise (``$AGENTCORE_HOME/server``)."""
    return data_home() / "server" / "sessions"


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Limits and defaults of one server process."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 8 * MIB  # larger request bodies get 413
    max_tokens_limit: int = 4096  # most tokens one request may ask to generate
    chat_max_tokens: int = 1024  # chat default when the request gives no max_tokens
    completion_max_tokens: int = 16  # /v1/completions default (OpenAI's)
    workers: int = 32  # threads running generations (requests beyond wait their turn)
    auto_create_sessions: bool = True  # a request naming a new session creates it
    max_stop_strings: int = 16
    # the repetition penalty on a chat reply's own tokens when the request names no penalty
    # (SamplingParams.reply; 1: none, plain greedy as OpenAI's API defines it)
    reply_penalty: float = REPLY_PENALTY
    log_level: str = "info"
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API ("*": any)
    # when set, requests need "Authorization: Bearer <api_key>" (kept out of the repr)
    api_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        checks = [
            ("port", 0 <= self.port <= 65535, "an integer in 0..65535 (0: any free port)"),
            ("max_body_bytes", self.max_body_bytes >= 1024, "at least 1024 bytes"),
            ("max_tokens_limit", self.max_tokens_limit >= 1, "an integer >= 1"),
            ("chat_max_tokens", self.chat_max_tokens >= 1, "an integer >= 1"),
            ("completion_max_tokens", self.completion_max_tokens >= 0, "an integer >= 0"),
            ("workers", self.workers >= 1, "an integer >= 1"),
            ("max_stop_strings", self.max_stop_strings >= 1, "an integer >= 1"),
            ("reply_penalty", 0 < self.reply_penalty <= 10, "a number in (0, 10] (1: none)"),
            ("api_key", self.api_key is None or bool(self.api_key.strip()), "a non-empty key"),
            ("cors_origins", all(o.strip() for o in self.cors_origins), "non-empty origins"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"ServerConfig.{name}={getattr(self, name)!r}: expected {expected}"
                )

    @classmethod
    def local(cls, **overrides: object) -> ServerConfig:
        """The default: loopback only, 8 MiB bodies, up to 4096 generated tokens per request."""
        return cls(**overrides)  # type: ignore[arg-type]

    @classmethod
    def small(cls, **overrides: object) -> ServerConfig:
        """Tight limits for tests and fuzzing: 64 KiB bodies, 64 generated tokens at most."""
        values: dict[str, object] = {
            "max_body_bytes": 64 * 1024,
            "max_tokens_limit": 64,
            "chat_max_tokens": 16,
            "workers": 8,
            "log_level": "warning",
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
