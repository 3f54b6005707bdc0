"""A folder the agent's file tools are confined to.

Owns :class:`Workspace`: the mapping from a path the model wrote to a real path under the
root, refusing absolute paths, ``..`` components, home shortcuts, NUL bytes and any symlink
that leads out of the root; and :meth:`Workspace.write_text`, an atomic write (temporary file,
fsync, rename) so a crash mid-write never leaves a half-written file. Never follows a path
outside the root and never decides which files the agent may touch inside it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from agentcore.tools._effects import check_write
from agentcore.tools._errors import ToolExecutionError

__all__ = ["Workspace", "WorkspaceError"]


class WorkspaceError(ToolExecutionError):
    """A path is not allowed (escapes the workspace) or the file operation failed."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(tool, message)


class Workspace:
    """The root folder of the file tools; every path is relative to it.

    ``resolve`` is the single gate: it returns a real path inside the (symlink-resolved) root
    or raises :class:`WorkspaceError` saying why, so every file tool is confined the same way.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        path = Path(root).expanduser()
        if create and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise ValueError(f"workspace root: {str(path)!r} is not a directory")
        self.root = path.resolve(strict=True)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def resolve(self, user_path: str, *, tool: str = "files") -> Path:
        """The real path for ``user_path`` (relative to the root), checked to stay inside."""
        if not isinstance(user_path, str):
            raise WorkspaceError(tool, f"path: got {user_path!r}; expected a relative path string")
        text = user_path.strip()
        if "\x00" in text:
            raise WorkspaceError(tool, f"path {user_path!r} contains a NUL byte")
        if text in ("", "."):
            return self.root
        if text.startswith("~"):
            raise WorkspaceError(
                tool, f"path {user_path!r} uses '~'; paths are relative to the workspace root"
            )
        posix, windows = PurePosixPath(text), PureWindowsPath(text)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or text.startswith("\\"):
            raise WorkspaceError(
                tool, f"path {user_path!r} is absolute; give a path relative to the workspace root"
            )
        parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise WorkspaceError(
                tool, f"path {user_path!r} contains '..'; paths may not leave the workspace root"
            )
        candidate = self.root.joinpath(*parts)
        real = candidate.resolve(strict=False)  # follows every symlink that exists
        if real != self.root and not real.is_relative_to(self.root):
            raise WorkspaceError(
                tool,
                f"path {user_path!r} leads outside the workspace (through a symbolic link); "
                "only files inside the workspace root are reachable",
            )
        return real

    def relative(self, real: Path) -> str:
        """The workspace-relative form of a resolved path (``"."`` for the root)."""
        rel = real.relative_to(self.root).as_posix()
        return rel or "."

    def write_text(
        self, real: Path, text: str, *, tool: str = "write_file", start: int = 0
    ) -> None:
        """Atomically replace ``real`` (already resolved) with ``text`` (UTF-8).

        Writes a temporary file in the same folder, fsyncs it, renames it over the target and
        fsyncs the folder: readers see the old or the new content, never a mix. Under an
        effect guard the whole new text is checked first (``start``: where the new part of an
        append begins), so a secret assembled over several appends is refused.
        """
        check_write(real, text, start)
        real.parent.mkdir(parents=True, exist_ok=True)
        parent = real.parent.resolve()
        if parent != self.root and not parent.is_relative_to(self.root):
            raise WorkspaceError(tool, f"{self.relative(real)!r}: its folder leads outside")
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, real)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
