"""The side panes: sessions, the live plan, long-term memory and session info.

Owns :class:`SessionsPane` (list, open, rename, delete, new), :class:`PlanPane` (the task
graph text with statuses from PlanUpdate events), :class:`MemoryPane` (search memories and
lessons, inspect one) and :class:`InfoPane` (token count, window, memory use, model and
device). Panes only show what they are given and post messages saying what the user asked
for; the app does the work off the UI thread. Never talks to the agent or a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from agentcore.apps.assistant._adapter import MemoryHit
from agentcore.apps.assistant._store import SessionMeta
from agentcore.memory import MemoryKind

__all__ = ["InfoPane", "MemoryPane", "PlanPane", "SessionsPane", "format_info"]


class SessionsPane(Vertical):
    """Every conversation; Enter opens one, r renames, d deletes, n starts a new one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
    ]

    class Open(Message):
        def __init__(self, session: str) -> None:
            super().__init__()
            self.session = session

    class Rename(Message):
        def __init__(self, session: str) -> None:
            super().__init__()
            self.session = session

    class Delete(Message):
        def __init__(self, session: str) -> None:
            super().__init__()
            self.session = session

    class New(Message):
        pass

    def compose(self) -> ComposeResult:
        yield OptionList(id="session-list")

    def show(self, sessions: Sequence[SessionMeta], current: str | None) -> None:
        listing = self.query_one("#session-list", OptionList)
        listing.clear_options()
        for meta in sessions:
            mark = "●" if meta.id == current else " "
            turns = f"{meta.turns} question{'s' if meta.turns != 1 else ''}"
            listing.add_option(Option(Content(f"{mark} {meta.title}  ({turns})"), id=meta.id))
        index = next((i for i, s in enumerate(sessions) if s.id == current), None)
        if index is not None:
            listing.highlighted = index

    def focus_list(self) -> None:
        self.query_one("#session-list", OptionList).focus()

    def _highlighted(self) -> str | None:
        listing = self.query_one("#session-list", OptionList)
        if listing.highlighted is None:
            return None
        return listing.get_option_at_index(listing.highlighted).id

    @on(OptionList.OptionSelected, "#session-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Open(event.option.id))

    def action_new(self) -> None:
        self.post_message(self.New())

    def action_rename(self) -> None:
        sid = self._highlighted()
        if sid is not None:
            self.post_message(self.Rename(sid))

    def action_delete(self) -> None:
        sid = self._highlighted()
        if sid is not None:
            self.post_message(self.Delete(sid))


class PlanPane(VerticalScroll):
    """The live task graph: one line per task with its status."""

    EMPTY = "No plan yet. The agent plans goals that take several steps; the plan shows here."

    def compose(self) -> ComposeResult:
        yield Static(Content(""), id="plan-reason", classes="hint")
        yield Static(Content(self.EMPTY), id="plan-text")

    def show(self, text: str | None, reason: str = "", current: str | None = None) -> None:
        head = reason.replace("_", " ")
        if current:
            head = f"{head} · now: {current}" if head else f"now: {current}"
        self.query_one("#plan-reason", Static).update(Content(head))
        self.query_one("#plan-text", Static).update(Content(text or self.EMPTY))


_KINDS: list[tuple[str, str]] = [
    ("all kinds", "all"),
    ("lessons", MemoryKind.LESSON.value),
    ("facts", MemoryKind.FACT.value),
    ("episodes", MemoryKind.EPISODIC.value),
    ("skills", MemoryKind.SKILL.value),
]


class MemoryPane(Vertical):
    """Search long-term memories and lessons; the highlighted one is shown in full."""

    class Search(Message):
        def __init__(self, query: str, kinds: list[MemoryKind] | None) -> None:
            super().__init__()
            self.query = query
            self.kinds = kinds

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._hits: list[MemoryHit] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search memories (enter; empty: newest)", id="memory-query")
        yield Select(_KINDS, value="all", allow_blank=False, id="memory-kind")
        yield OptionList(id="memory-results")
        yield Static(Content(""), id="memory-detail")

    def focus_query(self) -> None:
        self.query_one("#memory-query", Input).focus()

    def kinds(self) -> list[MemoryKind] | None:
        value = self.query_one("#memory-kind", Select).value
        return None if value in ("all", Select.NULL) else [MemoryKind(str(value))]

    def search(self) -> None:
        query = self.query_one("#memory-query", Input).value
        self.post_message(self.Search(query, self.kinds()))

    @on(Input.Submitted, "#memory-query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search()
        self.call_after_refresh(self.focus_query)  # keep typing queries

    @on(Select.Changed, "#memory-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.search()

    def show(self, hits: Sequence[MemoryHit], error: str | None = None) -> None:
        self._hits = list(hits)
        results = self.query_one("#memory-results", OptionList)
        results.clear_options()
        detail = self.query_one("#memory-detail", Static)
        if error is not None:
            detail.update(Content(f"search failed: {error}"))
            return
        for i, hit in enumerate(self._hits):
            rec = hit.record
            score = f"{hit.score:.2f} " if hit.score is not None else ""
            line = " ".join(rec.text.split())
            results.add_option(Option(Content(f"{score}[{rec.kind.value}] {line}"), id=str(i)))
        if self._hits:
            results.highlighted = 0
            self._show_detail(0)
        else:
            detail.update(Content("no memories found"))

    @on(OptionList.OptionHighlighted, "#memory-results")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self._show_detail(int(event.option.id))

    def _show_detail(self, index: int) -> None:
        if not 0 <= index < len(self._hits):
            return
        rec = self._hits[index].record
        lines = [
            f"{rec.kind.value} · trust {rec.trust.value} · importance {rec.importance:.2f}",
            f"by {rec.agent} from {rec.source} · {rec.time:%Y-%m-%d %H:%M}",
            "",
            rec.text,
        ]
        if rec.evidence:
            lines += ["", "evidence: " + ", ".join(rec.evidence)]
        self.query_one("#memory-detail", Static).update(Content("\n".join(lines)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


_INFO_ORDER = (
    "model",
    "device",
    "session",
    "tokens",
    "window",
    "runs",
    "history",
    "working_memory",
    "memory",
    "tools",
)
_INFO_SKIP = {"plan", "backend", "agent"}  # the plan has its own pane; raw backend stats


def format_info(info: dict[str, Any], memory: dict[str, int], backend: str) -> str:
    """Session info as aligned ``key  value`` lines, the most useful first."""
    rows: list[tuple[str, str]] = [("backend", backend)]
    keys = [k for k in _INFO_ORDER if k in info]
    keys += [k for k in info if k not in _INFO_ORDER and k not in _INFO_SKIP]
    for key in keys:
        value = info[key]
        if value is None:
            continue
        if key == "memory" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v} or "empty"
        rows.append((str(key).replace("_", " "), _fmt(value)))
    raw = info.get("backend")
    if isinstance(raw, dict) and isinstance(raw.get("cache_bytes"), int):
        rows.append(("kv cache", f"{raw['cache_bytes'] / 2**20:.1f} MiB"))
    if memory and "memory" not in info:
        rows.append(("memory", ", ".join(f"{k} {v}" for k, v in memory.items())))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class InfoPane(VerticalScroll):
    """The session's token count, window, memory use and the model/device in use."""

    def compose(self) -> ComposeResult:
        yield Static(Content("no session open yet"), id="info-text")

    def show(self, info: dict[str, Any], memory: dict[str, int], backend: str) -> None:
        # a reading can land while the pane is composed or torn down (seen under load): then
        # there is no text widget to update, and the next reading shows it
        for text in self.query("#info-text").results(Static):
            text.update(Content(format_info(info, memory, backend)))
