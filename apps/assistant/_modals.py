"""The assistant's dialogs: approve a tool call, name a conversation, confirm a deletion.

Owns :class:`ApprovalScreen` (approve once / always / deny; Esc denies), :class:`RenameScreen`
and :class:`ConfirmScreen`. Each is a :class:`~textual.screen.ModalScreen` dismissed with the
user's answer; the caller decides what the answer does. Never talks to the agent.
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from agentcore.agent import ApprovalDecision, ApprovalRequest

__all__ = ["ApprovalScreen", "ConfirmScreen", "RenameScreen"]


class ApprovalScreen(ModalScreen[ApprovalDecision]):
    """The agent wants to run a gated tool: once, always (for this tool) or deny."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "decide('once')", "Once"),
        Binding("a", "decide('always')", "Always"),
        Binding("n,escape", "decide('deny')", "Deny"),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(classes="dialog-screen")
        self.request = request

    def compose(self) -> ComposeResult:
        req = self.request
        with Vertical(id="approval", classes="dialog"):
            yield Static(Content(f"Allow the agent to run {req.tool}?"), classes="dialog-title")
            yield Static(Content(req.reason), classes="dialog-reason")
            with VerticalScroll(classes="dialog-body"):
                yield Static(Content(json.dumps(req.arguments, indent=2, ensure_ascii=False)))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Once (y)", id="once", variant="primary")
                yield Button("Always (a)", id="always")
                yield Button("Deny (n)", id="deny", variant="error")

    def on_mount(self) -> None:
        self.query_one("#once", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("once", "always", "deny"):
            self.action_decide(event.button.id)

    def action_decide(self, decision: str) -> None:
        answer: ApprovalDecision = "deny"
        if decision == "once":
            answer = "once"
        elif decision == "always":
            answer = "always"
        self.dismiss(answer)


class RenameScreen(ModalScreen[str | None]):
    """A new title for a conversation (Esc cancels)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__(classes="dialog-screen")
        self.current = title

    def compose(self) -> ComposeResult:
        with Vertical(id="rename", classes="dialog"):
            yield Static(Content("Rename this conversation"), classes="dialog-title")
            yield Input(value=self.current, id="rename-input")
            yield Static(Content("enter save · esc cancel"), classes="hint")

    @on(Input.Submitted, "#rename-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question (Esc is no)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(Content(self.question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
