"""Registry of session extensions (memories attached to a session's cache).

Owns the mapping from an extension's saved name to the code that rebuilds it, so that a
restored session gets back the same compressive memory or retrieval store it had. Never
implements a memory itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcore.core.session import Session

__all__ = ["register_extension", "restore_extensions"]

_RESTORERS: dict[str, Callable[[Session, dict[str, Any]], None]] = {}


def register_extension(name: str, restore: Callable[[Session, dict[str, Any]], None]) -> None:
    """Declare how to re-attach an extension saved under ``name``."""
    _RESTORERS[name] = restore


def restore_extensions(session: Session, states: dict[str, dict[str, Any]]) -> None:
    for name, state in states.items():
        try:
            restore = _RESTORERS[name]
        except KeyError:
            raise RuntimeError(
                f"saved session uses extension {name!r}, which is not available in this agentcore"
            ) from None
        restore(session, state)
