"""The built-in tool set: assembled from what the configuration provides, and every built-in
schema compiles into the action grammar (so built-in calls are valid by construction too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.constraint import GrammarConstraint, TokenNotAllowedError
from agentcore.tools import SideEffect, build_action_grammar, format_tool_call, parse_action
from agentcore.tools.builtin import default_tools


@pytest.fixture
def long_term(tmp_path: Path) -> Iterator[Any]:
    from agentcore.memory import HashEmbeddingFunction, LongTermMemory

    store = LongTermMemory(tmp_path / "memory", embedder=HashEmbeddingFunction())
    yield store
    store.close()


def _plan() -> Any:
    from agentcore.planners import TaskGraph

    return TaskGraph("test")


def test_only_pure_tools_without_resources() -> None:
    registry = default_tools()
    assert registry.names() == ["calculate", "current_time"]
    assert all(t.side_effects == {SideEffect.NONE} for t in registry)


def test_resources_enable_their_tools(tmp_path: Path, long_term: Any) -> None:
    registry = default_tools(
        workspace=tmp_path / "ws",
        allow_write=False,
        allowed_hosts=["docs.test"],
        memory=long_term,
        plan=_plan(),
    )
    assert registry.names() == [
        "calculate",
        "current_time",
        "list_files",
        "read_file",
        "search_files",
        "http_get",
        "remember",
        "recall",
        "plan_show",
        "plan_add_task",
        "plan_update_task",
    ]


def test_all_builtins_compile_into_one_action_grammar(
    tiny_tokenizer: Any, tmp_path: Path, long_term: Any
) -> None:
    registry = default_tools(
        workspace=tmp_path / "ws",
        allowed_hosts=["docs.test", "*.wiki.test"],
        memory=long_term,
        plan=_plan(),
    )
    grammar = build_action_grammar(registry)
    constraint = GrammarConstraint.from_grammar(tiny_tokenizer, grammar)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("calculate", {"expression": "2 * (3 + 4)"}),
        ("current_time", {"timezone": "Europe/Paris"}),
        ("read_file", {"path": "notes/todo.txt", "start_line": 2}),
        ("write_file", {"path": "a.txt", "content": "hi\nthere", "mode": "append"}),
        ("http_get", {"url": "https://en.wiki.test/Tea"}),
        ("plan_update_task", {"task_id": "t1", "status": "done"}),
        ("recall", {"query": "tea", "k": 3}),
    ]
    for name, arguments in calls:
        constraint.reset()
        text = format_tool_call(name, arguments)
        for token in tiny_tokenizer.encode(text):
            constraint.advance(token)
        assert constraint.is_finished(), text
        action = parse_action(constraint.text())
        registry.validate(action.name, action.arguments)  # type: ignore[union-attr]
    # A URL on a host outside the allowlist cannot even be written.
    constraint.reset()
    with pytest.raises(TokenNotAllowedError, match="not allowed after"):
        for token in tiny_tokenizer.encode(
            format_tool_call("http_get", {"url": "https://evil.test/"})
        ):
            constraint.advance(token)
