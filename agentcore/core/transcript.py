"""The chat side of a session: its messages, the text its stream holds, and the incremental render.

Owns :class:`Transcript`: the most recent messages (a bounded tail; older ones live in the
session's history on disk once saved), the tail of the text the token stream holds, and the
rendering of what a turn adds. A turn renders the chat template over a few messages of context
and the new ones, never over the whole conversation, so its cost does not grow with history.
The text it returns is the one rendering the whole conversation would give (compared against
the stream's own text, see :meth:`Transcript.render`), for templates that render a message from
itself, its neighbours and the first (system) message, as ChatML, SmolLM2's and Qwen2.5's do.

Never touches tokens or tensors: the session feeds the text this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from agentcore.core.codec import Message

__all__ = ["Renderer", "Transcript", "common_prefix_len"]

log = logging.getLogger(__name__)

_SINCE_MARK_CAP = 1 << 20  # chars of stream text kept after the last render (compared once)


class Renderer(Protocol):
    """What the transcript needs of a codec: its chat template."""

    def render_chat(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str: ...


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (compares in blocks)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class Transcript:
    """A session's messages (bounded tail) and the text its stream holds (bounded tail).

    ``messages`` is the tail of the conversation: appending to it directly adds a message that
    the next :meth:`render` shows the model (as the whole-conversation render did). Messages
    are only dropped from memory once they are handed to the history (:meth:`mark_journaled`).
    """

    def __init__(self, tail_messages: int = 256, tail_chars: int = 1 << 16) -> None:
        if tail_messages < 8:
            raise ValueError(f"tail_messages must be >= 8, got {tail_messages}")
        self.tail_messages = tail_messages
        self.tail_chars = tail_chars
        self.messages: list[Message] = []  # messages[0] is message number `base`
        self.base = 0
        self.first: Message | None = None  # the conversation's first message
        self.chars = 0  # length of the whole stream text
        self._text = ""  # its last >= tail_chars characters
        self.journaled = 0  # messages handed to the history so far
        # the last render: messages rendered (count), whether it ended with a generation prompt
        self.mark: tuple[int, bool] | None = None
        self.since_mark = ""  # the stream's text after the last render (capped)

    # ------------------------------------------------------------------ reading
    @property
    def n_messages(self) -> int:
        """Messages in the whole conversation (in memory or not)."""
        return self.base + len(self.messages)

    @property
    def text(self) -> str:
        """The tail of the stream's text (at least ``tail_chars`` characters when it has them)."""
        return self._text

    def unjournaled(self) -> list[Message]:
        """Messages not yet handed to the history."""
        self._note_first()
        return self.messages[self.journaled - self.base :]

    # ------------------------------------------------------------------ writing
    def add_text(self, text: str) -> None:
        """Text appended to the stream (rendered, generated or raw)."""
        if not text:
            return
        self.chars += len(text)
        self._text += text
        # before the first render of messages it holds, the whole text is the stream to compare
        whole_needed = self.mark is None and bool(self.messages)
        if len(self._text) > 2 * self.tail_chars and not whole_needed:
            self._text = self._text[-self.tail_chars :]
        if self.mark is not None and len(self.since_mark) < _SINCE_MARK_CAP:
            self.since_mark += text[: _SINCE_MARK_CAP - len(self.since_mark)]

    def add_message(self, message: Message) -> None:
        """A message the stream already holds (e.g. the reply just generated)."""
        self.messages.append(message)
        self._note_first()

    def mark_journaled(self) -> None:
        """Every message so far is in the history: the old ones may leave memory."""
        self.journaled = self.n_messages
        self._trim()

    def render(
        self,
        codec: Renderer,
        new: Sequence[Message],
        add_generation_prompt: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """Add ``new`` messages; return the text to feed (what the template adds to the stream).

        Equal to ``full[common_prefix_len(full, stream_text):]`` where ``full`` renders the
        whole conversation, at a cost independent of its length: the template runs over the
        messages since the last render, the few before them and the first system message; the
        stream's text since the last render stands in for the stream.
        """
        for m in new:
            if "role" not in m:
                raise ValueError(
                    f"message {m!r} has no 'role' field (expected user/system/assistant/tool)"
                )
        fresh = [dict(m) for m in new]
        self._note_first()
        if self.mark is None or self.mark[0] == 0:
            delta = self._render_whole(codec, fresh, add_generation_prompt, tools)
        else:
            delta = self._render_turn(codec, fresh, add_generation_prompt, tools)
        self.messages.extend(fresh)
        self._note_first()
        self.mark = None  # the delta is not text "since the mark"
        self.add_text(delta)
        self.mark = (self.n_messages, add_generation_prompt)
        self.since_mark = ""
        self._trim()
        return delta

    def _render_whole(
        self,
        codec: Renderer,
        fresh: list[Message],
        gen: bool,
        tools: Sequence[dict[str, Any]] | None,
    ) -> str:
        """The first render (or one after a legacy restore): over every message in memory."""
        full = codec.render_chat([*self.messages, *fresh], gen, tools=tools)
        stream = self._text if self.chars == len(self._text) else ""
        n = common_prefix_len(full, stream)
        if n < len(stream):
            log.warning(
                "chat template re-rendered earlier turns differently (%d chars differ); "
                "appending the new part only",
                len(stream) - n,
            )
        return full[n:]

    def _render_turn(
        self,
        codec: Renderer,
        fresh: list[Message],
        gen: bool,
        tools: Sequence[dict[str, Any]] | None,
    ) -> str:
        assert self.mark is not None
        at, mark_gen = self.mark
        before = self._context(at)
        after = self.messages[at - self.base :]  # added since the render (the reply)
        head = codec.render_chat(before, mark_gen, tools=tools)  # what the stream held then
        full = codec.render_chat([*before, *after, *fresh], gen, tools=tools)
        if full.startswith(head):
            rest = full[len(head) :]
            n = common_prefix_len(rest, self.since_mark)
            if n < len(self.since_mark):
                log.warning(
                    "the stream's last turn differs from the chat template's rendering of it "
                    "(%d chars differ); appending the new part only",
                    len(self.since_mark) - n,
                )
            return rest[n:]
        n = common_prefix_len(full, head)
        log.warning(
            "chat template re-rendered earlier turns differently (%d chars differ); appending "
            "the new part only",
            len(head) - n + len(self.since_mark),
        )
        return full[n:]

    def _context(self, at: int) -> list[Message]:
        """The messages before number ``at`` that a turn renders after: the last two or
        three (so their count has the parity of ``at``) and the first message if it is a
        system message."""
        first = (
            self.first if self.first is not None and self.first.get("role") == "system" else None
        )
        k = 2
        if (k + (1 if first is not None else 0)) % 2 != at % 2:
            k = 3
        start = at - k
        if start <= 0:  # the whole conversation so far (always in memory this early)
            return self.messages[: at - self.base]
        ctx = self.messages[start - self.base : at - self.base]
        return [first, *ctx] if first is not None else ctx

    def _note_first(self) -> None:
        if self.first is None and self.base == 0 and self.messages:
            self.first = dict(self.messages[0])

    def _trim(self) -> None:
        """Drop journaled messages beyond the tail (never the context of the next render)."""
        if len(self.messages) <= 2 * self.tail_messages:
            return
        self._note_first()
        keep_from = self.n_messages - self.tail_messages
        if self.mark is not None:
            keep_from = min(keep_from, self.mark[0] - 4)
        keep_from = min(keep_from, self.journaled)
        drop = keep_from - self.base
        if drop > 0:
            del self.messages[:drop]
            self.base += drop

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """The bounded state (tail messages, tail text, render mark) as JSON-ready values."""
        return {
            "messages": self.messages,
            "base": self.base,
            "first": self.first,
            "chars": self.chars,
            "text": self._text,
            "journaled": self.journaled,
            "mark": list(self.mark) if self.mark is not None else None,
            "since_mark": self.since_mark,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.messages = [dict(m) for m in state["messages"]]
        self.base = int(state["base"])
        self.first = state["first"]
        self.chars = int(state["chars"])
        self._text = str(state["text"])
        self.journaled = int(state["journaled"])
        mark = state["mark"]
        self.mark = (int(mark[0]), bool(mark[1])) if mark is not None else None
        self.since_mark = str(state["since_mark"])

    def restore_tail(
        self,
        *,
        chars: int,
        text: str,
        mark: list[Any] | None,
        since_mark: str,
        first: Message | None,
    ) -> None:
        """Replay a saved turn: the stream grew to ``chars`` characters ending in ``text``
        (its messages were appended to ``messages`` already)."""
        self._text += text
        if len(self._text) > 2 * self.tail_chars:
            self._text = self._text[-self.tail_chars :]
        self.chars = chars
        self.mark = (int(mark[0]), bool(mark[1])) if mark is not None else None
        self.since_mark = since_mark
        if self.first is None:
            self.first = first

    def load_legacy(self, messages: list[Message], text: str) -> None:
        """A transcript saved whole (session format 1): everything in memory; the next
        render runs over all of it once, then turns are incremental."""
        self.messages = [dict(m) for m in messages]
        self.base = 0
        self.first = None
        self._note_first()
        self.chars = len(text)
        self._text = text
        self.journaled = 0
        self.mark = None
        self.since_mark = ""
