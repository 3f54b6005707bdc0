"""Model backends: one protocol, a local long-memory implementation and a scripted fake.

``LocalBackend`` runs the model core in-process; ``FakeBackend`` plays scripted replies for
tests. Agents only see :class:`ModelBackend`.
"""

from agentcore.backends._fake import FakeBackend, FakeRequest, Reply, ScriptExhaustedError
from agentcore.backends._local import LocalBackend, normalize_messages, tools_from_openai
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
    "LocalBackend",
    "Message",
    "ModelBackend",
    "Reply",
    "ScriptExhaustedError",
    "ToolCallOut",
    "ToolChoice",
    "Usage",
    "default_summarizer",
    "new_messages",
    "normalize_messages",
    "tools_from_openai",
]
