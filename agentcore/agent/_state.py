"""What an agent saves between runs: its identity, conversation, plan and learned statistics.

Owns :class:`AgentState` (a versioned pydantic model) and its atomic save/load (temporary
file, fsync, rename, fsync of the folder), so a crash mid-save leaves the previous state.
Never holds the model session (the backend persists it) or long-term memory (chromadb does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentcore._atomic import atomic_write_bytes

__all__ = ["STATE_FORMAT", "AgentState", "load_state", "save_state"]

STATE_FORMAT = "agentcore.agent/1"


class AgentState(BaseModel):
    """Everything :meth:`Agent.load` needs besides the backend session and memory store."""

    model_config = ConfigDict(extra="forbid")

    format: str = STATE_FORMAT
    name: str
    session_id: str
    model: str = ""
    runs: int = 0
    last_run_id: str | None = None
    system_sent: bool = False
    history: list[dict[str, Any]] = Field(default_factory=list)  # the last turns (see below)
    history_total: int | None = None  # turns in history.jsonl (None: a state from before it)
    history_bytes: int = 0  # its committed bytes (more are a torn write)
    pending: list[dict[str, Any]] = Field(default_factory=list)
    plan: dict[str, Any] | None = None
    tool_stats: dict[str, list[int]] = Field(default_factory=dict)
    working: list[dict[str, Any]] = Field(default_factory=list)
    run_outcomes: dict[str, dict[str, Any]] = Field(default_factory=dict)


def save_state(state: AgentState, path: Path) -> None:
    """Atomically replace ``path`` with ``state`` as JSON."""
    atomic_write_bytes(path, state.model_dump_json(indent=1).encode("utf-8"))


def load_state(path: Path) -> AgentState:
    """Read a saved state; raises ValueError naming the file when it is not one."""
    try:
        state = AgentState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise
    except ValueError as exc:
        raise ValueError(f"{path}: not a saved agent state ({exc})") from None
    if state.format != STATE_FORMAT:
        raise ValueError(f"{path}: format {state.format!r}; expected {STATE_FORMAT!r}")
    return state
