"""Model backends: one protocol; local, HTTP and scripted implementations.

``LocalBackend`` runs the model core in-process; ``HttpBackend`` talks to agentcore's server or
any OpenAI-compatible one; ``FakeBackend`` plays scripted replies for tests. Agents only see
:class:`ModelBackend`, whose one generating method takes a :class:`ChatRequest`
(``complete(request)``; ``chat(messages, **fields)`` is its keyword form). A backend of your own
subclasses :class:`ModelBackend` and writes ``name``, ``complete``, ``session_info`` and
``delete_session``. Servers ask for more through declared capabilities
(:class:`SessionStore`, :class:`Scorer`, :class:`SessionLister`, :class:`Described`).

``LocalBackend`` and the other names of ``_local`` load on first use: they need torch, and the
HTTP and fake backends and the protocol types import without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentcore.backends._continuation import SessionConflictError
from agentcore.backends._fake import FakeBackend, FakeRequest, Reply, ScriptExhaustedError
from agentcore.backends._http import HttpBackend, ToolCallDecodeError
from agentcore.backends._limits import SessionLimitError, ToolDeclarationError
from agentcore.backends._protocol import (
    ChatRequest,
    Completion,
    Described,
    Message,
    ModelBackend,
    Scorer,
    SessionLister,
    SessionStore,
    ToolCallOut,
    ToolChoice,
    Usage,
    new_messages,
)
from agentcore.backends._summarizer import BackendSummarizer, default_summarizer

if TYPE_CHECKING:
    from agentcore.backends._local import (
        LocalBackend,
        normalize_messages,
        tools_from_openai,
    )

__all__ = [
    "BackendSummarizer",
    "ChatRequest",
    "Completion",
    "Described",
    "FakeBackend",
    "FakeRequest",
    "HttpBackend",
    "LocalBackend",
    "Message",
    "ModelBackend",
    "Reply",
    "Scorer",
    "ScriptExhaustedError",
    "SessionConflictError",
    "SessionLimitError",
    "SessionLister",
    "SessionStore",
    "ToolCallDecodeError",
    "ToolCallOut",
    "ToolChoice",
    "ToolDeclarationError",
    "Usage",
    "default_summarizer",
    "new_messages",
    "normalize_messages",
    "tools_from_openai",
]

_LOCAL = frozenset(
    {
        "LocalBackend",
        "normalize_messages",
        "tools_from_openai",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _LOCAL:
        raise AttributeError(f"module 'agentcore.backends' has no attribute {name!r}")
    value = getattr(importlib.import_module("agentcore.backends._local"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
