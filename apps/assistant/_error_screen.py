"""The screen shown instead of a traceback when the assistant cannot start.

Owns :class:`ErrorScreen`: what went wrong (title), the underlying message (detail), what to
do about it (hint), with ``r`` to try again and ``q`` to quit. Never retries by itself.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

__all__ = ["ErrorScreen"]


class ErrorScreen(Screen[bool]):
    """Dismissed with True to retry; quitting exits the app with status 1."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry"),
        Binding("q,escape", "quit_app", "Quit"),
    ]

    def __init__(self, title: str, detail: str, hint: str) -> None:
        super().__init__(id="error-screen")
        self.title_text = title
        self.detail = detail
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="error-box"):
            yield Static(Content(self.title_text), id="error-title")
            yield Static(Content(self.detail), id="error-detail")
            yield Static(Content(self.hint), id="error-hint")
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss(True)

    def action_quit_app(self) -> None:
        self.app.exit(return_code=1)
