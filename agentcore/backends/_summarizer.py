"""A model backend seen as a summariser (what memory/'s reflection calls).

Owns the adapter from :class:`~agentcore.backends.ModelBackend` to the one-method
``Summarizer`` protocol of :mod:`memory`: one stateless greedy chat turn per prompt.
"""

from __future__ import annotations

from agentcore.backends._protocol import ModelBackend
from agentcore.core.params import SamplingParams

__all__ = ["BackendSummarizer", "default_summarizer"]


class BackendSummarizer:
    """``summarizer(prompt) -> text`` on any model backend (stateless, greedy)."""

    def __init__(self, backend: ModelBackend, max_tokens: int = 256) -> None:
        self.backend = backend
        self.params = SamplingParams(max_tokens=max_tokens)

    def __call__(self, prompt: str) -> str:
        return self.backend.chat([{"role": "user", "content": prompt}], params=self.params).text


def default_summarizer(
    backend: ModelBackend | None = None, max_tokens: int = 256
) -> BackendSummarizer:
    """A summariser on ``backend``, or on the default local model when none is given."""
    if backend is None:
        from agentcore.backends._local import LocalBackend

        backend = LocalBackend.load()
    return BackendSummarizer(backend, max_tokens=max_tokens)
