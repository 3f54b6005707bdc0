"""Provenance of a tool call's inputs: whether untrusted content came before it.

Owns one context variable, set by the agent around each tool call (:func:`influenced`): the
untrusted source (``tool:read_file``, ``web``, ``environment``...) the call's arguments may
have been copied from, because the run had read such content before the call was chosen.
Tools that turn their arguments into something the agent will later treat as its own (a
memory, a plan step) read it with :func:`untrusted_influence` and keep the label. Never
decides anything and never blocks a call.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["influenced", "untrusted_influence"]

_INFLUENCE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentcore_untrusted_influence", default=None
)


@contextlib.contextmanager
def influenced(source: str | None) -> Iterator[None]:
    """Run the body (a tool call) as one whose inputs may derive from ``source`` (None: only
    from trusted input)."""
    token = _INFLUENCE.set(source)
    try:
        yield
    finally:
        _INFLUENCE.reset(token)


def untrusted_influence() -> str | None:
    """The untrusted source the running call's arguments may derive from, or None."""
    return _INFLUENCE.get()
