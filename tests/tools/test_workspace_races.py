"""The file tools without an agent (no effect guard): a link or a folder swapped in right after
the tool's own check of a path cannot redirect its read or write, because the workspace opens
what it touches one component at a time from the root with ``O_NOFOLLOW``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.tools import ToolRegistry
from agentcore.tools.builtin import Workspace, file_tools

MARK = "OUTSIDE-RACE-4f1a"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "box").mkdir(parents=True)
    (ws / "box" / "a.txt").write_text("inside")
    (ws / "notes.txt").write_text("notes")
    outside.mkdir()
    (outside / "a.txt").write_text(MARK)
    return ws, outside


def _after_check(monkeypatch: pytest.MonkeyPatch, rel: str, swap: Callable[[], None]) -> None:
    original = Workspace.resolve
    done: list[bool] = []

    def resolve(self: Workspace, user_path: str, *, tool: str = "files") -> Path:
        real = original(self, user_path, tool=tool)
        if (
            not done
            and user_path == rel
            and sys._getframe(1).f_code.co_filename.endswith("_files.py")
        ):
            done.append(True)
            swap()
        return real

    monkeypatch.setattr(Workspace, "resolve", resolve)


def _folder_to_link(ws: Path, outside: Path) -> Callable[[], None]:
    def swap() -> None:
        os.rename(ws / "box", ws / "box.old")
        os.symlink(outside, ws / "box")

    return swap


def _file_to_link(path: Path, target: Path) -> Callable[[], None]:
    def swap() -> None:
        path.unlink()
        os.symlink(target, path)

    return swap


def test_read_of_a_file_swapped_for_a_link(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, outside = world
    tools = ToolRegistry(file_tools(ws))
    _after_check(monkeypatch, "notes.txt", _file_to_link(ws / "notes.txt", outside / "a.txt"))
    result = tools.call_sync("read_file", {"path": "notes.txt"})
    assert not result.ok and MARK not in result.content


def test_read_through_a_folder_swapped_for_a_link(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, outside = world
    tools = ToolRegistry(file_tools(ws))
    _after_check(monkeypatch, "box/a.txt", _folder_to_link(ws, outside))
    result = tools.call_sync("read_file", {"path": "box/a.txt"})
    assert not result.ok and MARK not in result.content


def test_search_skips_a_file_swapped_after_the_walk(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, outside = world
    tools = ToolRegistry(file_tools(ws))
    _after_check(monkeypatch, "notes.txt", _file_to_link(ws / "notes.txt", outside / "a.txt"))
    result = tools.call_sync("search_files", {"query": "OUTSIDE"})
    assert MARK not in result.content


@pytest.mark.parametrize("mode", ["overwrite", "append"])
def test_write_into_a_folder_swapped_for_a_link(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    ws, outside = world
    tools = ToolRegistry(file_tools(ws))
    _after_check(monkeypatch, "box/a.txt", _folder_to_link(ws, outside))
    result = tools.call_sync("write_file", {"path": "box/a.txt", "content": "pwned", "mode": mode})
    assert not result.ok
    assert (outside / "a.txt").read_text() == MARK
    assert sorted(p.name for p in outside.iterdir()) == ["a.txt"]


def test_write_over_a_file_swapped_for_a_link_replaces_the_link(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, outside = world
    tools = ToolRegistry(file_tools(ws))
    _after_check(monkeypatch, "notes.txt", _file_to_link(ws / "notes.txt", outside / "a.txt"))
    tools.call_sync("write_file", {"path": "notes.txt", "content": "pwned"})
    assert (outside / "a.txt").read_text() == MARK
