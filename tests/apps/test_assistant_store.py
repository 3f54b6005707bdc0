"""Unit tests of the assistant's session list, configuration and event-free helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agentcore.apps.assistant import AssistantConfig, SessionStore, StoreCorruptError, parse_args
from agentcore.apps.assistant._adapter import history_turns
from agentcore.apps.assistant._panes import format_info
from agentcore.apps.assistant._store import title_from


class TestSessionStore:
    def test_create_select_rename_delete_persist(self, tmp_path: Path) -> None:
        store = SessionStore(tmp_path)
        a = store.create()
        b = store.create("work")
        assert store.current == "work"
        store.select(a.id)
        store.rename(a.id, "  My   project ")
        again = SessionStore(tmp_path)
        assert again.current == a.id
        assert again.get(a.id) is not None and again.get(a.id).title == "My project"  # type: ignore[union-attr]
        again.delete(a.id)
        assert [s.id for s in SessionStore(tmp_path).list()] == [b.id]
        assert SessionStore(tmp_path).current == b.id

    def test_first_question_titles_a_new_chat_once(self, tmp_path: Path) -> None:
        store = SessionStore(tmp_path)
        meta = store.create()
        store.record_turn(meta.id, "How do   I bake bread?")
        store.record_turn(meta.id, "And cake?")
        got = store.get(meta.id)
        assert got is not None and got.title == "How do I bake bread?" and got.turns == 2

    def test_renamed_chat_keeps_its_title(self, tmp_path: Path) -> None:
        store = SessionStore(tmp_path)
        meta = store.create()
        store.rename(meta.id, "Mine")
        store.record_turn(meta.id, "a question")
        assert store.get(meta.id).title == "Mine"  # type: ignore[union-attr]

    def test_long_titles_are_cut(self) -> None:
        assert len(title_from("word " * 40)) == 60
        assert title_from("word " * 40).endswith("…")

    def test_errors_name_the_problem(self, tmp_path: Path) -> None:
        store = SessionStore(tmp_path)
        meta = store.create("one")
        with pytest.raises(ValueError, match="already exists"):
            store.create("one")
        with pytest.raises(ValueError, match="title"):
            store.rename(meta.id, "   ")
        with pytest.raises(KeyError, match="nope"):
            store.delete("nope")
        with pytest.raises(ValueError, match="session name"):
            store.create("../escape")

    def test_corrupt_file_is_reported_not_overwritten(self, tmp_path: Path) -> None:
        (tmp_path / "sessions.json").write_text("{not json")
        with pytest.raises(StoreCorruptError, match=r"sessions\.json"):
            SessionStore(tmp_path)
        assert (tmp_path / "sessions.json").read_text() == "{not json"

    def test_a_failed_write_leaves_the_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = SessionStore(tmp_path)
        store.create("kept")
        before = (tmp_path / "sessions.json").read_text()

        def crash(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            store.create("lost")
        assert (tmp_path / "sessions.json").read_text() == before
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert json.loads(before)["current"] == "kept"

    def test_theme_is_remembered(self, tmp_path: Path) -> None:
        SessionStore(tmp_path).set_theme("light")
        assert SessionStore(tmp_path).theme == "light"


class TestConfig:
    def test_the_default_model_is_the_agent_model(self) -> None:
        from agentcore.core.models import AGENT_ALIAS, find_card

        assert parse_args([]).model == AssistantConfig().model == AGENT_ALIAS
        card = find_card(AGENT_ALIAS)
        assert card is not None and card.default_window == 4096

    def test_command_line(self, tmp_path: Path) -> None:
        config = parse_args(
            [
                "--model",
                "default",
                "--base-url",
                "http://127.0.0.1:8000",
                "--session",
                "work",
                "--agent",
                "helper",
                "--theme",
                "light",
                "--workspace",
                str(tmp_path),
                "--planner",
                "off",
                "--threads",
                "3",
            ]
        )
        assert config == AssistantConfig(
            model="default",
            base_url="http://127.0.0.1:8000",
            session="work",
            agent="helper",
            theme="light",
            workspace=tmp_path,
            planner="off",
            threads=3,
        )
        assert config.workspace_dir == tmp_path

    def test_bad_values_name_the_field(self) -> None:
        with pytest.raises(ValueError, match="agent name"):
            AssistantConfig(agent="a b")
        with pytest.raises(ValueError, match="base_url"):
            AssistantConfig(base_url="localhost:8000")
        with pytest.raises(ValueError, match="theme"):
            AssistantConfig(theme="blue")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="threads=0: expected an integer >= 1"):
            AssistantConfig(threads=0)
        with pytest.raises(SystemExit):
            parse_args(["--session", "../x"])

    def test_model_threads_default_to_torch_pool(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from agentcore.apps.assistant._backend import model_threads

        monkeypatch.setattr("torch.get_num_threads", lambda: 8)
        assert model_threads() == 8
        assert model_threads(3) == 3
        monkeypatch.setattr("torch.get_num_threads", lambda: 1)
        assert model_threads() == 1

    def test_folders_live_under_the_agent(self, tmp_path: Path) -> None:
        config = AssistantConfig(home=tmp_path, agent="helper")
        assert config.root == tmp_path / "helper"
        assert config.session_home("s1") == tmp_path / "helper" / "sessions" / "s1"
        assert config.memory_dir.parent == config.root


class TestHelpers:
    def test_history_turns_from_agent_history(self) -> None:
        raw: list[dict[str, Any]] = [
            {"role": "user", "content": "2+3?", "run_id": "r1"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "name": "calculate", "arguments": {"expression": "2+3"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "calculate", "content": "5"},
            {"role": "assistant", "content": "Five."},
        ]
        turns = history_turns(raw)
        assert [(t.role, t.text, t.tool) for t in turns] == [
            ("user", "2+3?", None),
            ("tool_call", "", "calculate"),
            ("tool", "5", "calculate"),
            ("assistant", "Five.", None),
        ]
        assert turns[1].arguments == {"expression": "2+3"}

    def test_format_info_puts_the_useful_rows_first(self) -> None:
        text = format_info(
            {
                "plan": "a\nb",
                "tokens": 120,
                "model": "m",
                "device": "cpu",
                "window": 2044,
                "memory": {"episodic": 2, "fact": 0},
                "backend": {"cache_bytes": 2**21},
            },
            {},
            "local",
        )
        lines = [line.split()[0] for line in text.splitlines()]
        assert lines == ["backend", "model", "device", "tokens", "window", "memory", "kv"]
        assert "episodic 2" in text and "fact" not in text and "2.0 MiB" in text
        assert "a\nb" not in text
