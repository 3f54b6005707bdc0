"""Model backends: one protocol; local, HTTP and scripted implementations.

``LocalBackend`` runs the model core in-process; ``HttpBackend`` talks to agentcore's server or
any OpenAI-compatible one; ``FakeBackend`` plays scripted replies for tests. Agents only see
:class:`ModelBackend`.
"""

from agentcore.backends._continuation import SessionConflictError
from agentcore.backends._fake import FakeBackend, FakeRequest, Reply, ScriptExhaustedError
from agentcore.backends._http import HttpBackend, ToolCallDecodeError
from agentcore.backends._local import (
    LocalBackend,
    SessionLimitError,
    ToolDeclarationError,
    normalize_messages,
    tools_from_openai,
)
from agentcore.backends._protocol import (
    Completion,
    Message,
    ModelBackend,
    ToolCallOut,
    ToolChoice,
    Usage,
    new_messages,
)
from agentcore.backends._summarizer import BackendSummarizer, default_summarizer

__all__ = [
    "BackendSummarizer",
    "Completion",
    "FakeBackend",
    "FakeRequest",
    "HttpBackend",
    "LocalBackend",
    "Message",
    "ModelBackend",
    "Reply",
    "ScriptExhaustedError",
    "SessionConflictError",
    "SessionLimitError",
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
