"""File tools confined to a workspace: list, read, write, search.

Owns :func:`file_tools`, which builds the four tools over one :class:`Workspace`. Every path
goes through :meth:`Workspace.resolve`, so ``..``, absolute paths and symlinks out of the root
are refused the same way everywhere; files are read and written through descriptors opened
one component at a time without following links out (a link swapped in during the call cannot
redirect them), and writes are atomic. Under the agent's effect guard,
listings and searches skip what the policy hides (``.git``, ``.env``...), and a search's
regular expression must be free of catastrophic backtracking and stops after
``MAX_SEARCH_SECONDS``. Never touches anything outside the
workspace root and never reads binary files into the model's context.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from agentcore.tools._effects import path_visible
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._regex import regex_risk
from agentcore.tools._tool import Tool
from agentcore.tools.builtin._workspace import Workspace, WorkspaceError

__all__ = ["file_tools"]

MAX_READ_BYTES = 1_000_000
MAX_WRITE_CHARS = 1_000_000
MAX_LIST_ENTRIES = 500
MAX_SEARCH_LINE = 2_000
MAX_SEARCH_SECONDS = 2.0
MAX_REGEX_REPEATS = 2

RelPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        description="Path relative to the workspace root, e.g. notes/todo.txt ('.' is the root).",
    ),
]


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head


def _read_text(ws: Workspace, real: Path, rel: str, tool: str) -> str:
    if not os.path.lexists(real):
        raise WorkspaceError(tool, f"{rel!r} does not exist")
    if real.is_dir():
        raise WorkspaceError(tool, f"{rel!r} is not a file")
    data = ws.read_bytes(real, tool=tool, max_bytes=MAX_READ_BYTES)  # no link is followed out
    if _is_binary(data[:8192]):
        raise WorkspaceError(tool, f"{rel!r} is a binary file; only text files can be read")
    return data.decode("utf-8", errors="replace")


def file_tools(
    workspace: Workspace | str | os.PathLike[str],
    *,
    allow_write: bool = True,
    limits: ToolLimits = ToolLimits.DEFAULT,
) -> list[Tool]:
    """``list_files``, ``read_file``, ``search_files`` (side effects ``reads``) and, unless
    ``allow_write=False``, ``write_file`` (``writes``), all confined to ``workspace``."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)

    def list_files(
        path: RelPath = ".",
        recursive: Annotated[bool, Field(description="Also list sub-folders.")] = False,
    ) -> str:
        """List the files and folders at a path in the workspace (folders end with '/')."""
        real = ws.resolve(path, tool="list_files")
        if not path_visible(real):
            raise WorkspaceError("list_files", f"{path!r} is not visible to the agent")
        if not real.is_dir():
            raise WorkspaceError("list_files", f"{path!r} is not a folder")
        lines: list[str] = []
        walker: Iterable[tuple[str, list[str], list[str]]] = (
            os.walk(real, followlinks=False) if recursive else [next(os.walk(real))]
        )
        for folder, dirs, files in walker:
            dirs[:] = sorted(d for d in dirs if path_visible(Path(folder) / d))
            for name in sorted(dirs) + sorted(files):
                if not path_visible(Path(folder) / name):
                    continue
                rel = (Path(folder) / name).relative_to(ws.root).as_posix()
                try:
                    target = ws.resolve(rel, tool="list_files")
                except WorkspaceError:
                    continue  # a link out of the workspace: not shown
                if target.is_dir():
                    lines.append(rel + "/")
                elif target.is_file():
                    lines.append(f"{rel} ({target.stat().st_size} bytes)")
                if len(lines) >= MAX_LIST_ENTRIES:
                    lines.append(f"[stopped after {MAX_LIST_ENTRIES} entries]")
                    return "\n".join(lines)
        return "\n".join(lines) if lines else "(empty folder)"

    def read_file(
        path: RelPath,
        start_line: Annotated[int, Field(ge=1, description="First line to return (1-based).")] = 1,
        max_lines: Annotated[int, Field(ge=1, le=5_000, description="Lines to return.")] = 400,
    ) -> str:
        """Read a text file from the workspace, optionally a range of its lines."""
        real = ws.resolve(path, tool="read_file")
        lines = _read_text(ws, real, path, "read_file").splitlines(keepends=True)
        chunk = lines[start_line - 1 : start_line - 1 + max_lines]
        text = "".join(chunk)
        rest = len(lines) - (start_line - 1 + len(chunk))
        if rest > 0:
            text += f"\n[{rest} more lines; read again with start_line={start_line + len(chunk)}]"
        return text

    def write_file(
        path: RelPath,
        content: Annotated[str, Field(max_length=MAX_WRITE_CHARS, description="Text to write.")],
        mode: Annotated[
            Literal["overwrite", "append", "create"],
            Field(
                description="overwrite or append to the file, or create it (fails if it exists)."
            ),
        ] = "overwrite",
    ) -> str:
        """Write a text file in the workspace (atomically; folders are created as needed)."""
        real = ws.resolve(path, tool="write_file")
        if real == ws.root or real.is_dir():
            raise WorkspaceError("write_file", f"{path!r} is a folder, not a file")
        if mode == "create" and real.exists():
            raise WorkspaceError("write_file", f"{path!r} already exists (mode='create')")
        text, start = content, 0
        if mode == "append" and real.exists():
            old = _read_text(ws, real, path, "write_file")
            text, start = old + content, len(old)
        ws.write_text(real, text, tool="write_file", start=start)
        return f"wrote {len(content)} characters to {ws.relative(real)} ({mode})"

    def search_files(
        query: Annotated[str, Field(min_length=1, max_length=200, description="Text to find.")],
        path: RelPath = ".",
        glob: Annotated[
            str, Field(min_length=1, max_length=100, description="File name pattern, e.g. *.py")
        ] = "*",
        regex: Annotated[bool, Field(description="Treat query as a regular expression.")] = False,
        max_matches: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> str:
        """Find lines containing a text in the workspace's text files (file:line: text)."""
        real = ws.resolve(path, tool="search_files")
        if not path_visible(real):
            raise WorkspaceError("search_files", f"{path!r} is not visible to the agent")
        try:
            pattern = re.compile(query if regex else re.escape(query))
        except re.error as exc:
            raise WorkspaceError("search_files", f"query is not a valid regex: {exc}") from None
        risk = regex_risk(query, max_unbounded=MAX_REGEX_REPEATS) if regex else None
        if risk is not None:
            raise WorkspaceError(
                "search_files", f"query {risk}; simplify it (it could run for a very long time)"
            )
        candidates = [real] if real.is_file() else []
        if real.is_dir():
            for folder, dirs, files in os.walk(real, followlinks=False):
                dirs[:] = sorted(d for d in dirs if path_visible(Path(folder) / d))
                candidates += [
                    Path(folder) / f
                    for f in sorted(files)
                    if fnmatch.fnmatch(f, glob) and path_visible(Path(folder) / f)
                ]
        hits: list[str] = []
        deadline = time.monotonic() + MAX_SEARCH_SECONDS
        for file in candidates:
            if time.monotonic() > deadline:
                hits.append(f"[stopped after {MAX_SEARCH_SECONDS} seconds]")
                break
            try:
                target = ws.resolve(file.relative_to(ws.root).as_posix(), tool="search_files")
            except WorkspaceError:
                continue
            if not target.is_file() or target.stat().st_size > MAX_READ_BYTES:
                continue
            try:
                data = ws.read_bytes(target, tool="search_files", max_bytes=MAX_READ_BYTES)
            except WorkspaceError:
                continue  # changed or replaced by a link since the walk saw it
            if _is_binary(data[:8192]):
                continue
            for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if number % 64 == 0 and time.monotonic() > deadline:
                    break
                if pattern.search(line[:MAX_SEARCH_LINE]):
                    hits.append(f"{file.relative_to(ws.root).as_posix()}:{number}: {line.strip()}")
                    if len(hits) >= max_matches:
                        return "\n".join([*hits, f"[stopped after {max_matches} matches]"])
        return "\n".join(hits) if hits else f"no match for {query!r}"

    reads = {SideEffect.READS}
    tools = [
        Tool.from_function(list_files, side_effects=reads, limits=limits, tags={"files"}),
        Tool.from_function(read_file, side_effects=reads, limits=limits, tags={"files"}),
        Tool.from_function(search_files, side_effects=reads, limits=limits, tags={"files"}),
    ]
    if allow_write:
        tools.append(
            Tool.from_function(
                write_file, side_effects={SideEffect.WRITES}, limits=limits, tags={"files"}
            )
        )
    return tools
