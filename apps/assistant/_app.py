"""The terminal assistant: a Textual app around one agent and its conversations.

Owns :class:`AssistantApp`: the layout (conversation, status line, prompt, side panes,
footer), key bindings and palette commands, the theme, and the flow of work: the model loads,
runs, searches and session reads happen in worker threads through the
:class:`~apps.assistant._adapter.AgentAdapter`, whose results come back as messages; agent
events become widgets (tokens stream into Markdown, tool calls into panels, plan updates into
the plan pane, approval requests into a modal). Never calls the agent directly and never
blocks the UI thread on the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from agentcore.agent import (
    ApprovalDecision,
    ApprovalRequest,
    Event,
    FinalAnswer,
    LessonEvent,
    PlanUpdate,
    SafetyVerdict,
    StatusEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agentcore.apps.assistant._adapter import AgentAdapter, HistoryTurn
from agentcore.apps.assistant._backend import BackendUnavailableError
from agentcore.apps.assistant._chat import (
    AssistantMessage,
    ChatView,
    Notice,
    StatusLine,
    ToolPanel,
    UserMessage,
    Welcome,
)
from agentcore.apps.assistant._config import THEMES, AssistantConfig
from agentcore.apps.assistant._error_screen import ErrorScreen
from agentcore.apps.assistant._messages import (
    AgentEventPosted,
    ApprovalAsked,
    InfoRead,
    LoadFailed,
    MemoryFound,
    RunFinished,
    SessionOpened,
)
from agentcore.apps.assistant._modals import ApprovalScreen, ConfirmScreen, RenameScreen
from agentcore.apps.assistant._panes import InfoPane, MemoryPane, PlanPane, SessionsPane
from agentcore.apps.assistant._store import SessionStore, StoreCorruptError
from agentcore.backends import ModelBackend
from agentcore.memory import LongTermMemory

__all__ = ["AssistantApp"]

log = logging.getLogger(__name__)

PANES = ("sessions", "plan", "memory", "info")
WIDE = 110  # from this width the side pane sits beside the conversation instead of over it


class AssistantApp(App[None]):
    """Chat with an agent; see the module docstring. ``backend`` / ``memory`` / ``tools``
    replace the configured ones (tests use a FakeBackend and a hash-embedded memory)."""

    CSS_PATH = "assistant.tcss"
    TITLE = "agentcore"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop"),
        Binding("escape", "close_pane", "Chat", show=False),
        Binding("ctrl+n", "new_session", "New"),
        Binding("f2", "pane('sessions')", "Sessions"),
        Binding("f3", "pane('plan')", "Plan"),
        Binding("f4", "pane('memory')", "Memory"),
        Binding("f5", "pane('info')", "Info"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False),
    ]

    def __init__(
        self,
        config: AssistantConfig | None = None,
        *,
        backend: ModelBackend | None = None,
        memory: LongTermMemory | None = None,
        tools: Any = None,
    ) -> None:
        super().__init__()
        self.config = config or AssistantConfig.default()
        self.adapter = AgentAdapter(self.config, backend=backend, memory=memory, tools=tools)
        self.adapter.set_approver(self._ask_approval)
        self.store: SessionStore | None = None
        self._store_error: str | None = None
        try:
            self.store = SessionStore(self.config.root)
        except StoreCorruptError as exc:
            self._store_error = str(exc)
        theme = self.config.theme or (self.store.theme if self.store else None) or "dark"
        self.theme = THEMES.get(theme, THEMES["dark"])
        self.ready = False
        self.busy = False
        self.session: str | None = None
        self._run = 0  # id of the current run; events of older runs are dropped
        self._reply: AssistantMessage | None = None
        self._panels: dict[str, ToolPanel] = {}
        self._approval: ApprovalScreen | None = None
        self._pane: str | None = None
        self._queued: str | None = None  # a question typed while a stop was completing
        self._send_when_ready = False  # Enter was pressed while the model or chat was loading
        self._streamed = False  # whether the current run streamed any reply text
        self._idle = threading.Event()  # set when no run thread is alive
        self._idle.set()
        # the main screen's widgets, kept so that work finishing while a dialog is on top
        # (or while the app closes) never queries the wrong screen
        self.chat = ChatView(id="chat")
        self.status = StatusLine()
        self.prompt = Input(placeholder="Ask anything · enter to send", id="prompt")
        self.side = TabbedContent(id="side", initial="sessions")
        self.sessions_pane = SessionsPane(id="sessions-pane")
        self.plan_pane = PlanPane(id="plan-pane")
        self.memory_pane = MemoryPane(id="memory-pane")
        self.info_pane = InfoPane(id="info-pane")

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        with Horizontal(id="main"):
            with Vertical(id="conversation"):
                yield self.chat
                yield self.status
                yield self.prompt
            with self.side:
                with TabPane("Sessions", id="sessions"):
                    yield self.sessions_pane
                with TabPane("Plan", id="plan"):
                    yield self.plan_pane
                with TabPane("Memory", id="memory"):
                    yield self.memory_pane
                with TabPane("Info", id="info"):
                    yield self.info_pane
        yield Footer()

    def on_mount(self) -> None:
        self.side.display = False
        self._layout_for(self.size.width)
        self.prompt.focus()
        if self.store is None:
            self._show_error(
                "The session list cannot be read",
                self._store_error or "",
                "Move the file away (or delete it) and start again.",
            )
            return
        self._load()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self.busy:
            self.status.tick()

    def on_resize(self) -> None:
        self._layout_for(self.size.width)

    def _layout_for(self, width: int) -> None:
        self.set_class(width < WIDE, "-narrow")

    @property
    def runs(self) -> int:
        """How many runs this app started (the current one included)."""
        return self._run

    # -- loading -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        try:
            self.adapter.open()
        except BackendUnavailableError as exc:
            self.post_message(LoadFailed(exc.title, exc.detail, exc.hint))
            return
        except Exception as exc:  # an unexpected failure still gets a readable screen
            log.exception("the assistant could not start")
            self.post_message(
                LoadFailed(
                    "The assistant could not start",
                    f"{type(exc).__name__}: {exc}",
                    "Check the model and the folders it uses, then press r to retry.",
                )
            )
            return
        assert self.store is not None
        if self.config.session is not None:
            sid = self.store.ensure(self.config.session).id
        else:
            sid = self.store.current or self.store.create().id
        self._open_in_thread(sid)

    def _open_in_thread(self, sid: str) -> None:
        try:
            history = self.adapter.open_session(sid)
            plan = self.adapter.plan_text()
        except Exception as exc:
            log.exception("conversation %r could not be opened", sid)
            self.post_message(
                LoadFailed(
                    f"The conversation {sid!r} could not be opened",
                    f"{type(exc).__name__}: {exc}",
                    "Press r to retry, or start with --session NEW_NAME.",
                )
            )
            return
        self.post_message(SessionOpened(sid, history, plan))

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        if not self._live():
            return
        self._show_error(message.title, message.detail, message.hint)

    def _show_error(self, title: str, detail: str, hint: str) -> None:
        self.ready = False
        self.status.set_state("error")

        def retry(again: bool | None) -> None:
            if again:
                self.status.set_state("loading")
                self._load()

        self.push_screen(ErrorScreen(title, detail, hint), retry)

    @on(SessionOpened)
    async def _session_opened(self, message: SessionOpened) -> None:
        if not self._live():
            return
        assert self.store is not None
        meta = self.store.select(message.session)
        self.session = message.session
        self.sub_title = meta.title
        self._reply, self._panels = None, {}
        await self.chat.clear()
        await self._show_history(message.history)
        if not message.history:
            await self.chat.add(Welcome())
        self.plan_pane.show(message.plan)
        self._refresh_sessions()
        self.ready = True
        self.status.set_state("idle")
        self.prompt.placeholder = "Ask anything · enter to send"
        self._read_info()
        if self._send_when_ready:
            self._send_when_ready = False
            text = self.prompt.value.strip()
            if text and not self.busy:
                self.prompt.value = ""
                self.call_later(self._ask, text)

    async def _show_history(self, history: list[HistoryTurn]) -> None:
        panels: dict[str, ToolPanel] = {}
        for i, turn in enumerate(history):
            if turn.role == "user":
                await self.chat.add(UserMessage(turn.text))
            elif turn.role == "assistant":
                restored = AssistantMessage(turn.text)
                await self.chat.add(restored)
                await restored.finish()
            elif turn.role == "tool_call":
                panel = ToolPanel(f"history-{i}", turn.tool or "tool", turn.arguments or {})
                panels[turn.tool or "tool"] = panel
                await self.chat.add(panel)
            elif turn.role == "tool":
                panel_for = panels.pop(turn.tool or "tool", None)
                if panel_for is None:
                    panel_for = ToolPanel(f"history-{i}", turn.tool or "tool", {})
                    await self.chat.add(panel_for)
                panel_for.set_result(turn.ok, turn.text, None if turn.ok else turn.text, 0.0)

    # -- asking --------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if not self.ready or self.session is None:
            what = "the conversation is open" if self.adapter.ready else "the model is loaded"
            self._send_when_ready = True  # the text stays in the prompt (editable) until then
            self.notify(f"Sending as soon as {what}.")
            return
        if self.busy and self.status.state == "stopping":
            self._queued = text  # sent as soon as the stopped run has wound down
            event.input.value = ""
            self.notify("Sending as soon as the stop completes.")
            return
        if self.busy:
            self.notify("Wait for the reply, or press Esc to stop it.", severity="warning")
            return
        event.input.value = ""
        self.call_later(self._ask, text)

    async def _ask(self, text: str) -> None:
        assert self.store is not None and self.session is not None
        meta = self.store.record_turn(self.session, text)
        self.sub_title = meta.title
        self._refresh_sessions()
        for welcome in self.chat.query(Welcome):
            await welcome.remove()
        await self.chat.add(UserMessage(text))
        self._reply = None
        self._panels = {}
        self._streamed = False
        self.busy = True
        self._run += 1
        self.status.set_state("thinking")
        self.refresh_bindings()
        self._idle.clear()
        self._run_goal(text, self._run)

    @work(thread=True, group="run")
    def _run_goal(self, goal: str, run: int) -> None:
        def emit(event: Event) -> None:
            self.post_message(AgentEventPosted(event, run))

        error: str | None = None
        try:
            asyncio.run(self.adapter.run(goal, emit))
        except Exception as exc:  # shown as a notice; the traceback goes to the log
            log.exception("the run of a goal failed")
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._idle.set()
        self.post_message(RunFinished(run, error))

    async def _reply_widget(self) -> AssistantMessage:
        if self._reply is None:
            self._reply = AssistantMessage()
            await self.chat.add(self._reply)
        return self._reply

    async def _close_reply(self) -> None:
        if self._reply is not None:
            reply, self._reply = self._reply, None
            await reply.finish()
            if not reply.text.strip():
                await reply.remove()

    def _live(self) -> bool:
        """Whether the main screen's widgets are still there (not while the app closes)."""
        return self.chat.is_attached and not self._closing

    @on(AgentEventPosted)
    async def _agent_event(self, message: AgentEventPosted) -> None:
        if message.run != self._run or not self._live():
            return
        await self.show_event(message.event)

    async def show_event(self, event: Event) -> None:
        """Render one agent event (the chat, the status line, the plan pane)."""
        if isinstance(event, TextDelta):
            self._streamed = True
            if self.status.state == "thinking":
                self.status.set_state("writing")
            await (await self._reply_widget()).write(event.text)
        elif isinstance(event, StatusEvent):
            if self.status.state != "stopping" or event.state == "idle":
                self.status.set_state(event.state, event.detail)
        elif isinstance(event, ToolCallEvent):
            await self._close_reply()
            panel = ToolPanel(event.call_id, event.tool, event.arguments)
            self._panels[event.call_id] = panel
            await self.chat.add(panel)
            self.status.set_state("calling_tool", event.tool)
        elif isinstance(event, ToolResultEvent):
            result_panel = self._panels.get(event.call_id)
            if result_panel is not None:
                result_panel.set_result(event.ok, event.output, event.error, event.duration_s)
        elif isinstance(event, SafetyVerdict):
            if event.decision in ("deny", "refused"):
                denied = self._panels.get(event.call_id or "")
                if denied is not None:
                    denied.set_denied(event.reason)
                else:
                    await self.chat.add(Notice(f"blocked {event.action}: {event.reason}", "error"))
        elif isinstance(event, PlanUpdate):
            await self._close_reply()  # each task's reply is its own message
            self.plan_pane.show(event.text, event.reason, event.current_task)
        elif isinstance(event, LessonEvent):
            verb = "recalled" if event.recalled else "learned"
            await self.chat.add(Notice(f"lesson {verb}: {event.text}", "lesson"))
        elif isinstance(event, FinalAnswer):
            await self._final(event)

    async def _final(self, event: FinalAnswer) -> None:
        # the answer was streamed already (maybe over several messages, one per plan step):
        # only an answer that never streamed is written out here
        shown = self._streamed
        if event.success and event.text and not shown:
            await (await self._reply_widget()).write(event.text)
        await self._close_reply()
        if event.stop_reason == "cancelled":
            await self.chat.add(Notice("stopped", "stopped"))
        elif not event.success:
            why = event.stop_reason.replace("_", " ")
            text = f"{why}: {event.text}" if event.text and not shown else why
            await self.chat.add(Notice(f"the run ended ({text})", "error"))

    @on(RunFinished)
    async def _run_finished(self, message: RunFinished) -> None:
        if message.run != self._run or not self._live():
            return
        await self._close_reply()
        if self._approval is not None:
            self._approval.dismiss("deny")
            self._approval = None
        if message.error is not None:
            await self.chat.add(Notice(f"error: {message.error}", "error"))
        self.busy = False
        self.status.set_state("idle")
        self.refresh_bindings()
        self._read_info()
        if self._queued is not None:
            text, self._queued = self._queued, None
            self.call_later(self._ask, text)

    # -- approvals -----------------------------------------------------------------------

    def _ask_approval(
        self, request: ApprovalRequest
    ) -> concurrent.futures.Future[ApprovalDecision]:
        """Called by the adapter from the run's thread; the modal resolves the future."""
        future: concurrent.futures.Future[ApprovalDecision] = concurrent.futures.Future()
        self.post_message(ApprovalAsked(request, future))
        return future

    @on(ApprovalAsked)
    def _approval_asked(self, message: ApprovalAsked) -> None:
        future = message.future
        if future.done():
            return
        self.status.set_state("waiting_for_approval", message.request.tool)
        screen = ApprovalScreen(message.request)

        def decided(decision: ApprovalDecision | None) -> None:
            self._approval = None
            if not future.done():
                future.set_result(decision or "deny")
            if self.busy:
                self.status.set_state("thinking" if decision != "deny" else "idle")

        self._approval = screen
        self.push_screen(screen, decided)

    # -- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ErrorScreen):  # nothing to act on behind the error
            return action in ("quit", "command_palette")
        if action == "stop":
            return self.busy
        if action == "close_pane":
            return self._pane is not None
        return True

    def action_stop(self) -> None:
        """Esc: stop the reply being generated."""
        if not self.busy:
            return
        self.status.set_state("stopping")
        self.adapter.stop()

    def action_scroll_chat(self, direction: int) -> None:
        """PageUp / PageDown scroll the conversation while the prompt keeps the focus."""
        if direction < 0:
            self.chat.scroll_page_up()
        else:
            self.chat.scroll_page_down()

    def action_close_pane(self) -> None:
        self._set_pane(None)

    def action_pane(self, name: str) -> None:
        """Show a side pane (the same key again hides it)."""
        self._set_pane(None if self._pane == name else name)

    def _set_pane(self, name: str | None) -> None:
        side = self.side
        self._pane = name
        self.set_class(name is not None, "-pane-open")
        side.display = name is not None
        self.refresh_bindings()
        if name is None:
            self.prompt.focus()
            return
        side.active = name
        # focus moves into the shown pane: a focused widget left in a hidden pane would make
        # the tabs switch back to it
        if name == "sessions":
            self._refresh_sessions()
            self.sessions_pane.focus_list()
        elif name == "memory":
            self.memory_pane.focus_query()
            self.memory_pane.search()
        elif name == "plan":
            self.plan_pane.focus()
        elif name == "info":
            self.info_pane.focus()
            self._read_info()

    def action_toggle_theme(self) -> None:
        dark = self.theme == THEMES["dark"]
        name = "light" if dark else "dark"
        self.theme = THEMES[name]
        if self.store is not None:
            self.store.set_theme(name)

    def action_new_session(self) -> None:
        if not self._can_switch():
            return
        assert self.store is not None
        meta = self.store.create()
        self._switch(meta.id)

    def action_rename_session(self, session: str | None = None) -> None:
        sid = session or self.session
        if sid is None or self.store is None:
            return
        meta = self.store.get(sid)
        if meta is None:
            return

        def renamed(title: str | None) -> None:
            if title and self.store is not None:
                new = self.store.rename(sid, title)
                if sid == self.session:
                    self.sub_title = new.title
                self._refresh_sessions()

        self.push_screen(RenameScreen(meta.title), renamed)

    def action_delete_session(self, session: str | None = None) -> None:
        sid = session or self.session
        if sid is None or self.store is None:
            return
        meta = self.store.get(sid)
        if meta is None:
            return
        if sid == self.session and not self._can_switch():
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._delete(sid)

        self.push_screen(ConfirmScreen(f"Delete “{meta.title}” and its history?"), confirmed)

    def _can_switch(self) -> bool:
        if self.busy:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return False
        if not self.ready:
            self.notify("The model is still loading.", severity="warning")
            return False
        return True

    def _switch(self, sid: str) -> None:
        self.ready = False
        self.status.set_state("loading")
        self._open_worker(sid)

    @work(thread=True, exclusive=True, group="open")
    def _open_worker(self, sid: str) -> None:
        self._open_in_thread(sid)

    @work(thread=True, group="delete")
    def _delete_worker(self, sid: str, reopen: str | None) -> None:
        self.adapter.delete_session(sid)
        if reopen is not None:
            self._open_in_thread(reopen)

    def _delete(self, sid: str) -> None:
        assert self.store is not None
        was_current = sid == self.session
        self.store.delete(sid)
        reopen: str | None = None
        if was_current:
            self.ready = False
            self.session = None
            self.status.set_state("loading")
            reopen = self.store.current or self.store.create().id
        self._refresh_sessions()
        self._delete_worker(sid, reopen)

    # -- panes ---------------------------------------------------------------------------

    def _refresh_sessions(self) -> None:
        if self.store is not None:
            self.sessions_pane.show(self.store.list(), self.session)

    @on(SessionsPane.Open)
    def _open_session(self, message: SessionsPane.Open) -> None:
        if message.session == self.session:
            self._set_pane(None)
            return
        if self._can_switch():
            self._switch(message.session)
            self._set_pane(None)

    @on(SessionsPane.New)
    def _new_from_pane(self) -> None:
        self.action_new_session()
        if self.ready is False and not self.busy:
            self._set_pane(None)

    @on(SessionsPane.Rename)
    def _rename_from_pane(self, message: SessionsPane.Rename) -> None:
        self.action_rename_session(message.session)

    @on(SessionsPane.Delete)
    def _delete_from_pane(self, message: SessionsPane.Delete) -> None:
        self.action_delete_session(message.session)

    @on(MemoryPane.Search)
    def _memory_search(self, message: MemoryPane.Search) -> None:
        self._search_worker(message.query, message.kinds)

    @work(thread=True, exclusive=True, group="memory")
    def _search_worker(self, query: str, kinds: Any) -> None:
        try:
            hits = self.adapter.search_memory(query, kinds)
        except Exception as exc:
            log.exception("memory search failed")
            self.post_message(MemoryFound(query, [], f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(MemoryFound(query, hits))

    @on(MemoryFound)
    def _memory_found(self, message: MemoryFound) -> None:
        if not self._live():
            return
        self.memory_pane.show(message.hits, message.error)

    def _read_info(self) -> None:
        if self.ready and not self.busy:
            self._info_worker()

    @work(thread=True, exclusive=True, group="info")
    def _info_worker(self) -> None:
        try:
            info, counts = self.adapter.session_info(), self.adapter.memory_counts()
        except Exception as exc:
            log.warning("session info could not be read", exc_info=True)
            info, counts = {"error": f"{type(exc).__name__}: {exc}"}, {}
        self.post_message(InfoRead(info, counts))

    @on(InfoRead)
    def _info_read(self, message: InfoRead) -> None:
        if not self._live():
            return
        self.info_pane.show(message.info, message.memory, self.adapter.backend_label())

    # -- palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New session", "Start a new conversation", self.action_new_session)
        yield SystemCommand(
            "Rename session", "Give this conversation a title", self.action_rename_session
        )
        yield SystemCommand(
            "Delete session", "Delete this conversation", self.action_delete_session
        )
        yield SystemCommand("Stop", "Stop the reply being generated (Esc)", self.action_stop)
        yield SystemCommand(
            "Toggle light/dark", "Switch the theme (ctrl+t)", self.action_toggle_theme
        )
        for name in PANES:
            yield SystemCommand(
                f"Show {name}", f"Open the {name} pane", lambda n=name: self.action_pane(n)
            )
        if self.store is not None:
            for meta in self.store.list():
                if meta.id != self.session:
                    yield SystemCommand(
                        f"Switch to: {meta.title}",
                        f"Open this conversation ({meta.turns} questions)",
                        lambda sid=meta.id: self._palette_switch(sid),
                        discover=False,
                    )

    def _palette_switch(self, sid: str) -> None:
        if self._can_switch():
            self._switch(sid)

    async def action_quit(self) -> None:
        self.adapter.stop()
        self.exit()

    async def on_unmount(self) -> None:
        # a run still winding down (quit mid-reply) saves the agent before memory closes
        if not self._idle.is_set():
            self.adapter.stop()
            await asyncio.to_thread(self._idle.wait, 30.0)
        self.adapter.close()
