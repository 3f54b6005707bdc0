"""The agent's side of its model session: the messages it sends and the turns it keeps.

Owns :class:`Conversation`: the messages queued for the next model turn (every channel into
the model, the goal, observations, plan inputs, tool results and denials, passes through
:meth:`Conversation.queue`, where chat-template control tokens become data), whether the system
prompt went to the backend's session, and the visible history (:class:`AgentHistory`: user,
assistant and tool turns, journaled on disk). At the end of a run it answers the tool calls the
run left open, so every saved history is well formed. Never calls the model and never decides
what is said: the run loop does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentcore.agent._history import AgentHistory
from agentcore.agent._perception import neutralize
from agentcore.backends import Message

__all__ = ["Conversation"]

UNANSWERED = "Error: the run stopped before this call ran"


class Conversation:
    """Pending messages, the system-prompt flag and the history of one agent."""

    def __init__(self, history_path: Path) -> None:
        self.history = AgentHistory(history_path)  # journal + bounded tail
        self.pending: list[Message] = []
        self.system_sent = False

    # -- into the model ---------------------------------------------------------------------

    def queue(self, message: Message) -> None:
        """Queue ``message`` for the next turn; its text content is neutralised."""
        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": neutralize(content)}
        self.pending.append(message)

    def take_pending(self, system_prompt: str, session_exists: Callable[[], bool]) -> list[Message]:
        """The messages of the next turn, emptying the queue: the system prompt first when it
        was never sent or the backend's session is gone (``session_exists`` is asked only
        after it was sent)."""
        messages: list[Message] = []
        if not self.system_sent or not session_exists():
            messages.append({"role": "system", "content": system_prompt})
            self.system_sent = True
        messages += self.pending
        self.pending = []
        return messages

    # -- the visible turns -----------------------------------------------------------------------

    def user_turn(self, goal: str, run_id: str) -> None:
        self.history.append({"role": "user", "content": goal, "run_id": run_id})

    def reply(self, text: str) -> None:
        self.history.append({"role": "assistant", "content": text})

    def tool_call(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        """A call the model chose (name and arguments as shown: redacted)."""
        self.history.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "name": name, "arguments": arguments}],
            }
        )

    def tool_result(self, call_id: str, name: str, content: str) -> None:
        """A call's result (or its denial): sent to the model and kept in the history."""
        self.queue({"role": "tool", "tool_call_id": call_id, "name": name, "content": content})
        self.history.append(
            {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}
        )

    def answer_open_calls(self) -> None:
        """Give every call of the unsaved turns that has no result one saying it never ran."""
        this_run = list(self.history.unsaved())
        answered = {m.get("tool_call_id") for m in this_run if m.get("role") == "tool"}
        for message in this_run:
            for call in message.get("tool_calls") or []:
                if call["id"] not in answered:
                    self.tool_result(call["id"], call["name"], UNANSWERED)
