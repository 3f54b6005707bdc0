"""Snapshot tests of the terminal assistant's main screens at 80x24.

Each screen is reached the way a user would (keys on a real Agent over a FakeBackend) and
compared with the accepted SVG under ``__snapshots__``. Everything on screen is deterministic:
named sessions, scripted replies, a hash-embedded memory, no clocks or paths in view.
Update the images with ``pytest tests/apps --snapshot-update`` after checking the change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agentcore.apps.assistant import AssistantApp, AssistantConfig
from agentcore.apps.assistant._modals import ApprovalScreen
from agentcore.backends import FakeBackend, FakeRequest, Reply
from agentcore.memory import HashEmbeddingFunction, LongTermMemory

SIZE = (80, 24)
PLAN = {
    "steps": [
        {"id": 1, "goal": "compute 6*7", "tool": "calculate", "depends_on": []},
        {"id": 2, "goal": "report the result", "tool": None, "depends_on": [1]},
    ]
}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCORE_HOME", str(tmp_path / "agentcore-home"))


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[LongTermMemory]:
    store = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    yield store
    store.close()


def make_app(
    tmp_path: Path, memory: LongTermMemory, backend: FakeBackend, **overrides: Any
) -> AssistantApp:
    fields: dict[str, Any] = {
        "home": tmp_path / "assistant",
        "theme": "dark",
        "session": "demo",
        "planner": "off",
    }
    fields.update(overrides)
    app = AssistantApp(AssistantConfig(**fields), backend=backend, memory=memory)
    app.prompt.cursor_blink = False  # a blinking cursor would make the image depend on timing
    return app


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def asking(*questions: str, then: tuple[str, ...] = ()) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A ``run_before`` that asks each question, waits for its answer, then presses keys."""

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, AssistantApp)
        await until(pilot, lambda: app.ready)
        for q in questions:
            runs: int = app.runs
            app.prompt.value = q
            await pilot.press("enter")
            await until(pilot, lambda r=runs: app.runs > r and not app.busy)  # type: ignore[misc]
        if then:
            await pilot.press(*then)
        await pilot.pause(0.2)

    return run


def plan_responder(request: FakeRequest) -> Reply | str:
    if request.json_schema is not None:
        return json.dumps(PLAN)
    if isinstance(request.tool_choice, dict):
        return Reply.call(request.tool_choice["function"]["name"], expression="6*7")
    last = str(request.messages[-1].get("content") or "") if request.messages else ""
    return "It is 42." if "All steps are done" in last else "42"


def test_chat_screen(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """A question, a calculator call (collapsed panel) and a Markdown reply."""
    backend = FakeBackend(
        [
            Reply.call("calculate", expression="6*7"),
            "The answer is **42**:\n\n- six\n- times seven",
        ]
    )
    app = make_app(tmp_path, memory, backend)
    assert snap_compare(app, terminal_size=SIZE, run_before=asking("what is 6*7?"))


def test_chat_screen_light(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """The same conversation in the light theme."""
    backend = FakeBackend(["Hello! How can I help?"])
    app = make_app(tmp_path, memory, backend, theme="light")
    assert snap_compare(app, terminal_size=SIZE, run_before=asking("hi"))


def test_approval_modal(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """The agent wants to write a file: approve once / always / deny."""
    backend = FakeBackend([Reply.call("write_file", path="notes.txt", content="hello"), "Saved."])
    app = make_app(tmp_path, memory, backend)

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready)
        app.prompt.value = "save hello to notes.txt"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_plan_pane(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """The plan pane after a two-step plan ran."""
    app = make_app(tmp_path, memory, FakeBackend(default=plan_responder), planner="auto")
    run = asking("compute 6*7 and then report the result", then=("f3",))
    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_info_pane(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """The session pane: backend, model, device, session, runs, memory use, tools."""
    app = make_app(tmp_path, memory, FakeBackend(["Hello."]))

    async def run_before(pilot: Pilot[Any]) -> None:
        await asking("hi", then=("f5",))(pilot)
        await until(pilot, lambda: "runs" in str(app.info_pane.query_one("#info-text").render()))
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sessions_pane(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """Two conversations, the current one marked."""
    app = make_app(tmp_path, memory, FakeBackend(["One.", "Two."]))

    async def run_before(pilot: Pilot[Any]) -> None:
        await asking("first question")(pilot)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.ready and app.session != "demo")
        await asking("second question", then=("f2",))(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_error_screen(snap_compare: Any, tmp_path: Path, memory: LongTermMemory) -> None:
    """The server at --base-url is down: a clear screen, not a traceback."""
    config = AssistantConfig(
        home=tmp_path / "assistant", theme="dark", base_url="http://127.0.0.1:9"
    )
    app = AssistantApp(config, memory=memory)

    async def run_before(pilot: Pilot[Any]) -> None:
        from agentcore.apps.assistant._error_screen import ErrorScreen

        await until(pilot, lambda: isinstance(app.screen, ErrorScreen), timeout=30)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
