"""File tools confined to a workspace: '..', absolute paths and symlinks out are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentcore.tools import SideEffect, ToolRegistry
from agentcore.tools.builtin import Workspace, WorkspaceError, file_tools


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("top secret\n")
    return secret


@pytest.fixture
def workspace(tmp_path: Path, outside: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "todo.txt").write_text("buy milk\ncall Bob\nbuy bread\n")
    (root / "readme.md").write_text("# Project\n")
    (root / "image.bin").write_bytes(b"\x89PNG\x00\x00data")
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "link_in.txt").symlink_to(root / "readme.md")
    (root / "dangling").symlink_to(outside / "does-not-exist.txt")
    return Workspace(root)


@pytest.fixture
def files(workspace: Workspace) -> ToolRegistry:
    return ToolRegistry(file_tools(workspace))


class TestConfinement:
    @pytest.mark.parametrize(
        ("path", "reason"),
        [
            ("../outside/secret.txt", "contains '..'"),
            ("notes/../../outside/secret.txt", "contains '..'"),
            ("notes/..", "contains '..'"),
            ("..\\outside\\secret.txt", "contains '..'"),
            ("/etc/passwd", "is absolute"),
            ("\\\\server\\share", "is absolute"),
            ("C:\\Windows\\win.ini", "is absolute"),
            ("~/secret.txt", "uses '~'"),
            ("notes/\x00todo.txt", "NUL byte"),
            ("link_out.txt", "leads outside the workspace"),
            ("dir_out/secret.txt", "leads outside the workspace"),
            ("dir_out", "leads outside the workspace"),
            ("dangling", "leads outside the workspace"),
        ],
    )
    def test_escapes_are_refused(self, workspace: Workspace, path: str, reason: str) -> None:
        with pytest.raises(WorkspaceError, match=reason):
            workspace.resolve(path)

    def test_paths_inside_resolve(self, workspace: Workspace) -> None:
        assert workspace.resolve(".") == workspace.root
        assert workspace.resolve("") == workspace.root
        assert workspace.resolve("./notes//todo.txt") == workspace.root / "notes" / "todo.txt"
        assert workspace.resolve("link_in.txt") == workspace.root / "readme.md"
        assert workspace.resolve("new/file.txt") == workspace.root / "new" / "file.txt"

    @pytest.mark.parametrize(
        ("tool", "arguments"),
        [
            ("read_file", {"path": "../outside/secret.txt"}),
            ("read_file", {"path": "link_out.txt"}),
            ("read_file", {"path": "/etc/hostname"}),
            ("write_file", {"path": "dir_out/planted.txt", "content": "x"}),
            ("write_file", {"path": "../planted.txt", "content": "x"}),
            ("list_files", {"path": "dir_out"}),
            ("search_files", {"query": "secret", "path": "dir_out"}),
        ],
    )
    def test_every_tool_is_confined(
        self, files: ToolRegistry, outside: Path, tool: str, arguments: dict[str, str]
    ) -> None:
        result = files.call_sync(tool, arguments)
        assert not result.ok and result.error_kind == "execution"
        assert "top secret" not in result.content
        assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]

    def test_write_through_a_symlinked_parent_created_later(
        self, workspace: Workspace, files: ToolRegistry, outside: Path
    ) -> None:
        (workspace.root / "later").symlink_to(outside, target_is_directory=True)
        result = files.call_sync("write_file", {"path": "later/x.txt", "content": "x"})
        assert not result.ok and "leads outside" in result.content
        assert not (outside / "x.txt").exists()


class TestTools:
    def test_side_effects(self, workspace: Workspace) -> None:
        effects = {t.name: t.side_effects for t in file_tools(workspace)}
        assert effects == {
            "list_files": {SideEffect.READS},
            "read_file": {SideEffect.READS},
            "search_files": {SideEffect.READS},
            "write_file": {SideEffect.WRITES},
        }
        assert [t.name for t in file_tools(workspace, allow_write=False)] == [
            "list_files",
            "read_file",
            "search_files",
        ]

    def test_list_hides_links_out(self, files: ToolRegistry) -> None:
        listing = files.call_sync("list_files", {}).content.splitlines()
        assert listing == [
            "notes/",
            "image.bin (10 bytes)",
            "link_in.txt (10 bytes)",
            "readme.md (10 bytes)",
        ]
        nested = files.call_sync("list_files", {"recursive": True}).content.splitlines()
        assert "notes/todo.txt (28 bytes)" in nested
        assert not any("secret" in line or "dir_out" in line for line in nested)

    def test_read_with_line_ranges(self, files: ToolRegistry) -> None:
        assert files.call_sync("read_file", {"path": "notes/todo.txt"}).content == (
            "buy milk\ncall Bob\nbuy bread\n"
        )
        page = files.call_sync("read_file", {"path": "notes/todo.txt", "max_lines": 1})
        assert page.content == "buy milk\n\n[2 more lines; read again with start_line=2]"
        tail = files.call_sync("read_file", {"path": "notes/todo.txt", "start_line": 3})
        assert tail.content == "buy bread\n"

    def test_read_refuses_binary_missing_and_folders(self, files: ToolRegistry) -> None:
        assert "binary file" in files.call_sync("read_file", {"path": "image.bin"}).content
        assert "does not exist" in files.call_sync("read_file", {"path": "nope.txt"}).content
        assert "is not a file" in files.call_sync("read_file", {"path": "notes"}).content

    def test_write_modes(self, workspace: Workspace, files: ToolRegistry) -> None:
        made = files.call_sync("write_file", {"path": "out/a.txt", "content": "one\n"})
        assert made.content == "wrote 4 characters to out/a.txt (overwrite)"
        files.call_sync("write_file", {"path": "out/a.txt", "content": "two\n", "mode": "append"})
        assert (workspace.root / "out" / "a.txt").read_text() == "one\ntwo\n"
        again = files.call_sync(
            "write_file", {"path": "out/a.txt", "content": "x", "mode": "create"}
        )
        assert not again.ok and "already exists" in again.content
        assert not files.call_sync("write_file", {"path": "notes", "content": "x"}).ok
        bad_mode = files.call_sync("write_file", {"path": "b.txt", "content": "x", "mode": "rm"})
        assert bad_mode.error_kind == "arguments"

    def test_write_is_atomic_and_leaves_no_temp_files(
        self, workspace: Workspace, files: ToolRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        target = workspace.root / "notes" / "todo.txt"

        def crash(src: str, dst: str, **dir_fds: int) -> None:
            raise OSError("disk unplugged")

        monkeypatch.setattr(os, "replace", crash)
        result = files.call_sync("write_file", {"path": "notes/todo.txt", "content": "NEW"})
        assert not result.ok and "disk unplugged" in result.content
        assert target.read_text() == "buy milk\ncall Bob\nbuy bread\n"  # old content intact
        monkeypatch.undo()
        files.call_sync("write_file", {"path": "notes/todo.txt", "content": "NEW"})
        assert target.read_text() == "NEW"
        assert sorted(p.name for p in target.parent.iterdir()) == ["todo.txt"]

    def test_write_through_an_inside_link_updates_the_target(
        self, workspace: Workspace, files: ToolRegistry
    ) -> None:
        files.call_sync("write_file", {"path": "link_in.txt", "content": "# New\n"})
        assert (workspace.root / "readme.md").read_text() == "# New\n"

    def test_search(self, files: ToolRegistry) -> None:
        assert files.call_sync("search_files", {"query": "buy"}).content == (
            "notes/todo.txt:1: buy milk\nnotes/todo.txt:3: buy bread"
        )
        regex = files.call_sync("search_files", {"query": "^call \\w+$", "regex": True})
        assert regex.content == "notes/todo.txt:2: call Bob"
        assert files.call_sync("search_files", {"query": "buy", "glob": "*.md"}).content == (
            "no match for 'buy'"
        )
        one = files.call_sync("search_files", {"query": "buy", "max_matches": 1})
        assert one.content == "notes/todo.txt:1: buy milk\n[stopped after 1 matches]"
        bad = files.call_sync("search_files", {"query": "(", "regex": True})
        assert not bad.ok and "not a valid regex" in bad.content

    def test_workspace_root_must_be_a_folder(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("x")
        with pytest.raises(ValueError, match="not a directory"):
            Workspace(tmp_path / "file")
        created = Workspace(tmp_path / "fresh" / "root")
        assert created.root.is_dir()
