"""The conversation column: turns, streamed replies, tool panels, notices and the status line.

Owns the chat widgets: :class:`ChatView` (a scroll that stays at the bottom while a reply
grows), :class:`UserMessage`, :class:`AssistantMessage` (Markdown fed token by token through
a :class:`~textual.widgets.markdown.MarkdownStream`, which batches fragments when they come
faster than it can render), :class:`ToolPanel` (a collapsible call + result), :class:`Notice`
(stops, errors, lessons) and :class:`StatusLine` (thinking / calling a tool / waiting for
approval). Never talks to the agent: the app turns events into calls on these widgets.
"""

from __future__ import annotations

import json
import time
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets.markdown import MarkdownBlock, MarkdownStream

__all__ = [
    "AssistantMessage",
    "ChatView",
    "Notice",
    "StatusLine",
    "ToolPanel",
    "UserMessage",
    "Welcome",
]

_SHORT = 48


def _short(text: str, limit: int = _SHORT) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_arguments(arguments: dict[str, Any]) -> str:
    """``a=1, b='x'`` for a panel title."""
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())


class ChatView(VerticalScroll):
    """The turns of one conversation, newest at the bottom."""

    can_focus = False

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, widget: Widget) -> Widget:
        await self.mount(widget)
        self.anchor()
        return widget

    async def clear(self) -> None:
        await self.remove_children()


class UserMessage(Static):
    """What the user asked."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(text), classes="turn")
        self.text = text


class AssistantMessage(Markdown):
    """One reply, rendered as Markdown while it streams.

    Tokens are gathered and handed to the :class:`MarkdownStream` at most every
    ``FLUSH_S`` seconds: each hand-over re-lays out the conversation, and doing that for
    every token would starve the keyboard on a slow machine.
    """

    FLUSH_S = 0.08

    def __init__(self, text: str = "") -> None:
        super().__init__(text, classes="turn")
        self.text = text
        self._stream: MarkdownStream | None = None
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None

    async def write(self, fragment: str) -> None:
        """Append a streamed piece of the reply."""
        if not fragment:
            return
        self.text += fragment
        self._pending.append(fragment)
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
            await self._flush()  # the first words show at once
        elif self._flush_timer is None:
            self._flush_timer = self.set_timer(self.FLUSH_S, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        if self._pending and self._stream is not None:
            text, self._pending = "".join(self._pending), []
            await self._stream.write(text)

    async def finish(self) -> None:
        """The reply is complete: flush the stream (or render a restored reply) and drop the
        blank line after the last block."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
        await self._flush()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
        else:
            await self.update(self.text)
        blocks = list(self.query_children(MarkdownBlock))
        if blocks:
            top, right, _, left = blocks[-1].styles.margin
            blocks[-1].styles.margin = (top, right, 0, left)


class ToolPanel(Collapsible):
    """A tool call and, once it ran, its result; collapsed to one line by default."""

    def __init__(self, call_id: str, tool: str, arguments: dict[str, Any]) -> None:
        self.call_id = call_id
        self.tool = tool
        self.arguments = arguments
        self.state = "running"
        self._args = Static(
            Content(json.dumps(arguments, indent=2, ensure_ascii=False)), classes="tool-args"
        )
        self._result = Static(Content("running…"), classes="tool-result")
        super().__init__(
            self._args, self._result, title=self._title_for("…"), collapsed=True, classes="tool"
        )

    def _title_for(self, outcome: str) -> str:
        call = _short(f"{self.tool}({format_arguments(self.arguments)})")
        return f"{call} → {_short(outcome, 24)}"

    def set_result(self, ok: bool, output: str, error: str | None, duration_s: float) -> None:
        self.state = "ok" if ok else "failed"
        shown = output if ok else (error or output or "failed")
        self._result.update(Content(f"{'result' if ok else 'error'}: {shown}"))
        self.title = self._title_for(shown if ok else f"error: {shown}")
        self.set_class(not ok, "-failed")

    def set_denied(self, reason: str) -> None:
        self.state = "denied"
        self._result.update(Content(f"not run: {reason}"))
        self.title = self._title_for("denied")
        self.add_class("-failed")


class Notice(Static):
    """A one-line remark in the conversation: stopped, failed, a lesson recalled."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(Content(text), classes=f"notice -{kind}")
        self.kind = kind
        self.text = text


_STATE_TEXT = {
    "loading": "loading the model…",
    "idle": "ready",
    "thinking": "thinking…",
    "writing": "writing…",
    "planning": "planning…",
    "calling_tool": "calling a tool…",
    "waiting_for_approval": "waiting for your approval…",
    "stopping": "stopping…",
    "error": "not available",
}


_TIMED = ("thinking", "writing", "planning", "calling_tool", "stopping")


class StatusLine(Static):
    """What the agent is doing now, in one line (with the seconds spent when it takes long)."""

    def __init__(self) -> None:
        super().__init__("", id="status")
        self.state = "loading"
        self.detail = ""
        self._since = time.monotonic()
        self.set_state("loading")

    def set_state(self, state: str, detail: str = "") -> None:
        if state != self.state or state not in _TIMED:
            self._since = time.monotonic()
        self.state, self.detail = state, detail
        self._render_line()
        for name in _STATE_TEXT:
            self.set_class(name == state, f"-{name}")

    def tick(self) -> None:
        """Refresh the elapsed time (called once a second by the app while it is busy)."""
        if self.state in _TIMED:
            self._render_line()

    def _render_line(self) -> None:
        text = _STATE_TEXT.get(self.state, self.state)
        if self.detail:
            text = f"{text.rstrip('…')}: {_short(self.detail, 48)}"
        elapsed = time.monotonic() - self._since
        if self.state in _TIMED and elapsed >= 2:
            text = f"{text} · {elapsed:.0f}s · esc stops"
        self.update(Content(f"● {text}"))


class Welcome(Static):
    """Shown in an empty conversation: what to type and which keys matter."""

    TEXT = (
        "Ask anything below and press Enter; replies stream in as they are written. The "
        "agent can calculate, read and write files in its workspace (it asks before "
        "writing) and remembers what it learns across conversations.\n\n"
        "esc stop · ctrl+n new chat · f2 chats · f3 plan · f4 memory · f5 info · "
        "ctrl+t theme · ctrl+p all commands"
    )

    def __init__(self) -> None:
        super().__init__(Content(self.TEXT), classes="welcome")
