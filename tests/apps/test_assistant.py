"""Pilot tests of the terminal assistant: the real Agent on a scripted FakeBackend.

One class per feature: chat and streaming, stop, approvals, sessions (switch, rename, delete,
persistence), the memory, plan and info panes, themes, the command palette and the error
screen. Memory uses the deterministic hash embedder; nothing loads a model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from agentcore.agent import Event, FinalAnswer, TextDelta
from agentcore.apps.assistant import AssistantApp, AssistantConfig, SessionStore
from agentcore.apps.assistant._chat import AssistantMessage, Notice, ToolPanel, UserMessage, Welcome
from agentcore.apps.assistant._error_screen import ErrorScreen
from agentcore.apps.assistant._modals import ApprovalScreen, ConfirmScreen, RenameScreen
from agentcore.apps.assistant._panes import InfoPane, MemoryPane
from agentcore.backends import FakeBackend, FakeRequest, Reply
from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryKind, MemoryRecord

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCORE_HOME", str(tmp_path / "agentcore-home"))


class Env:
    """What one test's apps share: the folders and the memory store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.memory = LongTermMemory(root / "memory", embedder=HashEmbeddingFunction())

    def config(self, **overrides: Any) -> AssistantConfig:
        # planner "off": scripts answer each model call in order (the plan test turns it on)
        fields: dict[str, Any] = {
            "home": self.root / "assistant",
            "theme": "dark",
            "planner": "off",
        }
        fields.update(overrides)
        return AssistantConfig(**fields)

    def app(self, script: list[Any] | FakeBackend = (), **overrides: Any) -> AssistantApp:  # type: ignore[assignment]
        backend = script if isinstance(script, FakeBackend) else FakeBackend(list(script))
        return AssistantApp(self.config(**overrides), backend=backend, memory=self.memory)


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e = Env(tmp_path)
    yield e
    e.memory.close()


PLAN = {
    "steps": [
        {"id": 1, "goal": "compute 6*7", "tool": "calculate", "depends_on": []},
        {"id": 2, "goal": "report the result", "tool": None, "depends_on": [1]},
    ]
}


def plan_responder(request: FakeRequest) -> Reply | str:
    """Answers whatever a planned run asks, whichever way the planner decomposes the goal."""
    if request.json_schema is not None:
        return json.dumps(PLAN)
    if isinstance(request.tool_choice, dict):
        return Reply.call(request.tool_choice["function"]["name"], expression="6*7")
    last = str(request.messages[-1].get("content") or "") if request.messages else ""
    return "It is 42." if "All steps are done" in last else "42"


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


async def ready(pilot: Pilot[Any]) -> AssistantApp:
    app = pilot.app
    assert isinstance(app, AssistantApp)
    await until(pilot, lambda: app.ready)
    return app


async def ask(pilot: Pilot[Any], text: str) -> None:
    app = await ready(pilot)
    runs = app.runs
    app.query_one("#prompt", Input).value = text
    await pilot.press("enter")
    await until(pilot, lambda: app.runs > runs and not app.busy)
    await pilot.pause()


def chat_texts(app: AssistantApp) -> list[tuple[str, str]]:
    out = []
    for w in app.chat.children:
        if isinstance(w, UserMessage | AssistantMessage | Notice):
            out.append((type(w).__name__, w.text))
        elif isinstance(w, ToolPanel):
            out.append(("ToolPanel", f"{w.tool}:{w.state}"))
    return out


class TestChat:
    async def test_type_send_and_stream(self, env: Env) -> None:
        app = env.app(["Hello! I am **here**."])
        seen: list[Event] = []
        show = app.show_event

        async def spy(event: Event) -> None:
            seen.append(event)
            await show(event)

        app.show_event = spy  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            assert app.focused is app.query_one("#prompt")
            await pilot.press(*"hi there")
            assert app.query_one("#prompt", Input).value == "hi there"
            await pilot.press("enter")
            await until(pilot, lambda: not app.busy and len(app.chat.children) >= 2)
            await pilot.pause()
            assert chat_texts(app) == [
                ("UserMessage", "hi there"),
                ("AssistantMessage", "Hello! I am **here**."),
            ]
            assert app.query_one("#prompt", Input).value == ""
            tokens = [e for e in seen if isinstance(e, TextDelta)]
            assert len(tokens) > 1  # streamed piece by piece, not in one block
            assert "".join(t.text for t in tokens) == "Hello! I am **here**."
            assert isinstance(seen[-1], FinalAnswer)
            assert app.status.state == "idle"
            store = SessionStore(env.config().root)
            assert store.list()[0].title == "hi there"

    async def test_tool_call_shows_a_collapsible_panel(self, env: Env) -> None:
        app = env.app([Reply.call("calculate", expression="6*7"), "It is 42."])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "what is 6*7?")
            assert chat_texts(app) == [
                ("UserMessage", "what is 6*7?"),
                ("ToolPanel", "calculate:ok"),
                ("AssistantMessage", "It is 42."),
            ]
            panel = app.query_one(ToolPanel)
            assert panel.collapsed
            assert "→ 42" in panel.title
            panel.collapsed = False
            await pilot.pause()
            assert "result: 42" in str(panel._result.render())

    async def test_enter_while_loading_sends_once_ready(
        self, env: Env, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gate = threading.Event()
        app = env.app(["Ready now."])
        opening = app._open_in_thread

        def slow_open(sid: str) -> None:
            gate.wait(10)
            opening(sid)

        monkeypatch.setattr(app, "_open_in_thread", slow_open)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert not app.ready
            await pilot.press(*"early bird", "enter")
            await pilot.pause()
            assert app.query_one("#prompt", Input).value == "early bird"  # kept while loading
            assert chat_texts(app) == []
            gate.set()
            await until(pilot, lambda: len(app.chat.children) >= 2 and not app.busy)
            await pilot.pause()
            assert chat_texts(app) == [
                ("UserMessage", "early bird"),
                ("AssistantMessage", "Ready now."),
            ]
            assert app.query_one("#prompt", Input).value == ""

    async def test_sending_while_busy_is_refused(self, env: Env) -> None:
        gate = threading.Event()

        def slow(_: FakeRequest) -> str:
            gate.wait(10)
            return "done"

        app = env.app([slow])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "first"
            await pilot.press("enter")
            await until(pilot, lambda: app.busy)
            app.query_one("#prompt", Input).value = "second"
            await pilot.press("enter")
            assert app.query_one("#prompt", Input).value == "second"  # kept, not sent
            gate.set()
            await until(pilot, lambda: not app.busy)
            assert [t for k, t in chat_texts(app) if k == "UserMessage"] == ["first"]


class TestStop:
    async def test_escape_stops_the_generation(self, env: Env) -> None:
        gate = threading.Event()

        def slow(_: FakeRequest) -> str:
            gate.wait(10)
            return "a long answer that should never be shown in full"

        app = env.app([slow])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "tell me a story"
            await pilot.press("enter")
            await until(pilot, lambda: app.status.state == "thinking")
            await pilot.press("escape")
            assert app.status.state == "stopping"
            gate.set()
            await until(pilot, lambda: not app.busy)
            await pilot.pause()
            texts = chat_texts(app)
            assert texts[0] == ("UserMessage", "tell me a story")
            assert ("Notice", "stopped") in texts
            assert not any(k == "AssistantMessage" for k, _ in texts)
            assert app.status.state == "idle"

    async def test_question_typed_while_stopping_is_sent_after(self, env: Env) -> None:
        gate = threading.Event()

        def slow(_: FakeRequest) -> str:
            gate.wait(10)
            return "never shown"

        app = env.app([slow, "the next answer"])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "first"
            await pilot.press("enter")
            await until(pilot, lambda: app.status.state == "thinking")
            await pilot.press("escape")
            app.query_one("#prompt", Input).value = "second"
            await pilot.press("enter")
            assert app.query_one("#prompt", Input).value == ""
            gate.set()
            await until(pilot, lambda: app.runs == 2 and not app.busy)
            await pilot.pause()
            texts = chat_texts(app)
            assert texts[-2:] == [
                ("UserMessage", "second"),
                ("AssistantMessage", "the next answer"),
            ]

    async def test_quit_mid_reply_saves_the_conversation(self, env: Env) -> None:
        gate = threading.Event()

        def slow(_: FakeRequest) -> str:
            gate.wait(10)
            return "too late"

        app = env.app([slow])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "are you there?"
            await pilot.press("enter")
            await until(pilot, lambda: app.status.state == "thinking")
            threading.Timer(0.3, gate.set).start()
            await pilot.press("ctrl+q")
        assert app.session is not None
        state = json.loads((env.config().session_home(app.session) / "agent.json").read_text())
        assert state["history"][0]["content"] == "are you there?"

    async def test_page_keys_scroll_the_conversation(self, env: Env) -> None:
        app = env.app(["line\n\n" * 40])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "a long answer please")
            bottom = app.chat.scroll_y
            assert bottom > 0
            await pilot.press("pageup")
            await until(pilot, lambda: app.chat.scroll_y < bottom)
            assert app.focused is app.query_one("#prompt")


class TestApproval:
    def script(self) -> list[Any]:
        return [Reply.call("write_file", path="notes.txt", content="hello"), "Saved."]

    async def test_approve_once_runs_the_tool(self, env: Env) -> None:
        app = env.app(self.script())
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "save hello to notes.txt"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
            assert app.status.state == "waiting_for_approval"
            assert isinstance(app.screen, ApprovalScreen)
            assert app.screen.request.tool == "write_file"
            await pilot.press("y")
            await until(pilot, lambda: not app.busy)
            workspace = env.config().workspace_dir
            assert (workspace / "notes.txt").read_text() == "hello"
            assert ("ToolPanel", "write_file:ok") in chat_texts(app)

    async def test_deny_blocks_the_tool(self, env: Env) -> None:
        app = env.app(self.script())
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "save hello to notes.txt"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
            await pilot.press("n")
            await until(pilot, lambda: not app.busy)
            assert not (env.config().workspace_dir / "notes.txt").exists()
            assert ("ToolPanel", "write_file:denied") in chat_texts(app)

    async def test_always_stops_asking_for_that_tool(self, env: Env) -> None:
        script = [
            Reply.call("write_file", path="a.txt", content="1"),
            "Saved a.",
            Reply.call("write_file", path="b.txt", content="2"),
            "Saved b.",
        ]
        app = env.app(script)
        asked: list[str] = []

        def watch() -> bool:
            if isinstance(app.screen, ApprovalScreen):
                asked.append(app.screen.request.arguments["path"])
                return True
            return False

        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "save 1 to a.txt"
            await pilot.press("enter")
            await until(pilot, watch)
            await pilot.press("a")
            await until(pilot, lambda: app.runs == 1 and not app.busy)
            app.query_one("#prompt", Input).value = "save 2 to b.txt"
            await pilot.press("enter")
            await until(pilot, lambda: watch() or (app.runs == 2 and not app.busy))
            workspace = env.config().workspace_dir
            assert (workspace / "a.txt").read_text() == "1"
            assert (workspace / "b.txt").read_text() == "2"
            assert asked == ["a.txt"]

    async def test_escape_during_approval_denies_and_stops(self, env: Env) -> None:
        app = env.app(self.script())
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            app.query_one("#prompt", Input).value = "save hello"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
            await pilot.press("escape")
            await until(pilot, lambda: not app.busy)
            assert not (env.config().workspace_dir / "notes.txt").exists()


class TestSessions:
    async def test_new_and_switch(self, env: Env) -> None:
        app = env.app(["first answer", "second answer"])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "question one")
            first = app.session
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.ready and app.session != first)
            assert chat_texts(app) == []
            assert len(app.chat.query(Welcome)) == 1  # an empty conversation explains itself
            await ask(pilot, "question two")
            await pilot.press("f2")
            listing = app.query_one("#session-list", OptionList)
            assert app.focused is listing
            assert listing.option_count == 2
            # newest first: the first conversation is the second row
            assert listing.get_option_at_index(1).id == first
            await pilot.press("down", "enter")
            await until(pilot, lambda: app.ready and app.session == first)
            assert chat_texts(app) == [
                ("UserMessage", "question one"),
                ("AssistantMessage", "first answer"),
            ]
            assert app.focused is app.query_one("#prompt")

    async def test_rename(self, env: Env) -> None:
        app = env.app(["ok"])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "question")
            await pilot.press("f2", "r")
            await until(pilot, lambda: isinstance(app.screen, RenameScreen))
            app.screen.query_one(Input).value = "My project"
            await pilot.press("enter")
            await pilot.pause()
            assert app.sub_title == "My project"
            store = SessionStore(env.config().root)
            assert store.list()[0].title == "My project"
            assert store.list()[0].renamed

    async def test_delete(self, env: Env) -> None:
        app = env.app(["one", "two"])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "question one")
            doomed = app.session
            assert doomed is not None
            home = env.config().session_home(doomed)
            assert home.is_dir()
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.ready and app.session != doomed)
            kept = app.session
            await pilot.press("f2", "down", "d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: not home.exists())
            store = SessionStore(env.config().root)
            assert [s.id for s in store.list()] == [kept]
            assert app.query_one("#session-list", OptionList).option_count == 1

    async def test_delete_current_opens_another(self, env: Env) -> None:
        app = env.app(["one"])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "question one")
            doomed = app.session
            await pilot.press("f2", "d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: app.ready and app.session not in (None, doomed))
            assert chat_texts(app) == []

    async def test_history_restored_after_restart(self, env: Env) -> None:
        script: list[Any] = [Reply.call("calculate", expression="2+3"), "Five.", "Still five."]
        backend = FakeBackend(script)
        app = env.app(backend)
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "what is 2+3?")
            sid = app.session
        again = env.app(backend)
        async with again.run_test(size=SIZE) as pilot:
            await ready(pilot)
            assert again.session == sid
            assert chat_texts(again) == [
                ("UserMessage", "what is 2+3?"),
                ("ToolPanel", "calculate:ok"),
                ("AssistantMessage", "Five."),
            ]
            await ask(pilot, "and again?")
            assert chat_texts(again)[-1] == ("AssistantMessage", "Still five.")
            # the model saw the new question appended to the same session
            assert backend.requests[-1].session == backend.requests[0].session

    async def test_session_flag_opens_or_creates_by_name(self, env: Env) -> None:
        app = env.app(["hi"], session="work")
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "hello")
            assert app.session == "work"
            assert app.sub_title == "work"  # named sessions keep their name as title


class TestPanes:
    async def test_memory_search_and_inspect(self, env: Env) -> None:
        env.memory.add(
            MemoryRecord(
                kind=MemoryKind.LESSON,
                text="Check units before adding lengths",
                agent="assistant",
                importance=0.9,
            )
        )
        env.memory.add(
            MemoryRecord(kind=MemoryKind.FACT, text="The user's cat is called Miso", agent="x")
        )
        app = env.app([])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("f4")
            pane = app.query_one(MemoryPane)
            results = pane.query_one("#memory-results", OptionList)
            await until(pilot, lambda: results.option_count == 2)  # empty query: newest
            assert app.focused is pane.query_one("#memory-query")
            await pilot.press(*"cat Miso", "enter")
            await until(pilot, lambda: "Miso" in str(results.get_option_at_index(0).prompt))
            detail = str(pane.query_one("#memory-detail").render())
            assert "The user's cat is called Miso" in detail and "fact" in detail
            assert app.focused is pane.query_one("#memory-query")  # ready for the next query
            await pilot.press("f5")  # another pane, even with the focus in this one
            assert app.side.active == "info" and app.focused is app.info_pane
            await pilot.press("f4")
            pane.query_one("#memory-kind").value = "lesson"  # type: ignore[attr-defined]
            await until(
                pilot,
                lambda: (
                    results.option_count == 1
                    and "lesson" in str(results.get_option_at_index(0).prompt)
                ),
            )

    async def test_plan_pane_follows_the_task_graph(self, env: Env) -> None:
        app = env.app(FakeBackend(default=plan_responder), planner="auto")
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "compute 6*7 and then report the result")
            text = str(app.plan_pane.query_one("#plan-text").render())
            assert "compute 6*7" in text and "report the result" in text
            assert "[2/2 done]" in text
            kind, answer = chat_texts(app)[-1]
            assert kind == "AssistantMessage" and "42" in answer
            assert ("ToolPanel", "calculate:ok") in chat_texts(app)
            await pilot.press("f3")
            assert app.side.display and app.side.active == "plan"
            assert app.plan_pane.region.width > 0

    async def test_info_pane_shows_session_numbers(self, env: Env) -> None:
        app = env.app(["hello"])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "hi")
            await pilot.press("f5")
            await until(pilot, lambda: "runs" in str(app.query_one("#info-text").render()))
            text = str(app.query_one(InfoPane).query_one("#info-text").render())
            for key in ("backend", "model", "session", "runs", "memory", "device"):
                assert key in text
            assert "fake" in text

    async def test_panes_cover_the_chat_at_80_columns_and_escape_returns(self, env: Env) -> None:
        app = env.app([])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("f3")
            assert not app.query_one("#conversation").display or (
                app.query_one("#conversation").region.width == 0
            )
            await pilot.press("escape")
            assert not app.query_one("#side").display
            assert app.focused is app.query_one("#prompt")
            await pilot.press("f3", "f3")  # the same key hides it again
            assert not app.query_one("#side").display

    async def test_wide_terminal_shows_pane_beside_chat(self, env: Env) -> None:
        app = env.app([])
        async with app.run_test(size=(140, 40)) as pilot:
            await ready(pilot)
            await pilot.press("f5")
            assert app.query_one("#conversation").region.width > 60
            assert app.query_one("#side").region.width > 30


class TestThemeAndPalette:
    async def test_theme_toggle_persists(self, env: Env) -> None:
        app = env.app([], theme=None)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            assert app.theme == "textual-dark"
            await pilot.press("ctrl+t")
            assert app.theme == "textual-light"
        again = env.app([], theme=None)
        async with again.run_test(size=SIZE) as pilot:
            assert again.theme == "textual-light"
        flag = env.app([], theme="dark")
        async with flag.run_test(size=SIZE) as pilot:
            assert flag.theme == "textual-dark"

    async def test_palette_runs_assistant_commands(self, env: Env) -> None:
        app = env.app([])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            first = app.session
            await pilot.press("ctrl+p")
            await pilot.press(*"New session")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: app.ready and app.session != first)
            assert len(SessionStore(env.config().root).list()) == 2

    async def test_footer_lists_the_keys(self, env: Env) -> None:
        app = env.app([])
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            keys = {b.binding.description for b in app.active_bindings.values() if b.binding.show}
            assert {"New", "Sessions", "Plan", "Memory", "Info", "Theme", "Quit"} <= keys
            assert "Stop" not in {
                b.binding.description for b in app.active_bindings.values() if b.enabled
            }


class TestErrors:
    async def test_missing_model_shows_error_screen(self, env: Env, tmp_path: Path) -> None:
        app = AssistantApp(env.config(model=str(tmp_path / "no-such-model.gguf")))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ErrorScreen), timeout=30)
            screen = app.screen
            assert isinstance(screen, ErrorScreen)
            assert "model" in screen.title_text.lower()
            assert "--model" in screen.hint
            await pilot.press("q")
        assert app.return_code == 1

    async def test_server_down_shows_error_screen(self, env: Env) -> None:
        app = AssistantApp(env.config(base_url="http://127.0.0.1:9"), memory=env.memory)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ErrorScreen), timeout=30)
            screen = app.screen
            assert isinstance(screen, ErrorScreen)
            assert screen.title_text == "The model server is not reachable"
            assert "127.0.0.1:9" in screen.detail
            await pilot.press("r")  # retry: fails again, the screen comes back
            await until(pilot, lambda: isinstance(app.screen, ErrorScreen), timeout=30)

    async def test_backend_failure_mid_run_is_a_notice(self, env: Env) -> None:
        def broken(_: FakeRequest) -> str:
            raise ConnectionError("server went away")

        app = env.app([broken])
        async with app.run_test(size=SIZE) as pilot:
            await ask(pilot, "hello?")
            notes = [t for k, t in chat_texts(app) if k == "Notice"]
            assert any("server went away" in n for n in notes), notes
            assert not any(k == "AssistantMessage" for k, _ in chat_texts(app))
            assert app.status.state == "idle"
