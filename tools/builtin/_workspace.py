"""A folder the agent's file tools are confined to.

Owns :class:`Workspace`: the mapping from a path the model wrote to a real path under the
root, refusing absolute paths, ``..`` components, home shortcuts, NUL bytes and any symlink
that leads out of the root; :meth:`Workspace.read_bytes` and :meth:`Workspace.write_text`,
which open what they touch one component at a time from a descriptor of the root with
``O_NOFOLLOW`` (openat-style), so a symlink or a folder swapped for one between the check and
the effect cannot redirect a read or a write; writes are atomic (temporary file, fsync,
rename), so a crash mid-write never leaves a half-written file. Never follows a path outside
the root and never decides which files the agent may touch inside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from agentcore._atomic import atomic_write_at
from agentcore.tools._effects import _quiet, check_path, check_write
from agentcore.tools._errors import ToolExecutionError

__all__ = ["Workspace", "WorkspaceError"]

_MAX_LINKS = 40


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

    # -- descriptor-based access: what is opened is what was checked ----------------------

    def _walk(
        self, real: Path, *, tool: str, create_dirs: bool = False
    ) -> tuple[int, list[str], str]:
        """Open the folder holding ``real`` (a path under the root) one component at a time
        from a descriptor of the root, never following a link out of it: each folder is
        opened with ``O_NOFOLLOW`` relative to its parent, and a link met on the way (the last
        component included) is read and resolved inside the root by hand. Returns the folder's
        descriptor (``O_RDONLY | O_DIRECTORY``; the caller closes it), the resolved components
        of the folder and the last name. A link out of the root, or a folder swapped for a link
        while this runs, is a :class:`WorkspaceError`."""
        root_text, text = str(self.root), os.fspath(real)
        if not text.startswith(root_text + os.sep):
            if text == root_text:
                raise WorkspaceError(tool, "the workspace root is a folder, not a file")
            raise WorkspaceError(tool, f"{text!r} is not inside the workspace")
        rel = text[len(root_text) + 1 :]
        pending = [p for p in rel.split(os.sep) if p not in ("", ".")]
        dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        with _quiet():  # relative opens: the guard checks the resolved path instead
            fds = [os.open(root_text, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
            done: list[str] = []
            hops = 0
            try:
                while pending:
                    name = pending.pop(0)
                    if name in ("", "."):
                        continue
                    if name == "..":
                        if not done:
                            raise WorkspaceError(tool, f"{rel!r} leads outside the workspace")
                        done.pop()
                        os.close(fds.pop())
                        continue
                    try:
                        st: os.stat_result | None = os.stat(
                            name, dir_fd=fds[-1], follow_symlinks=False
                        )
                    except FileNotFoundError:
                        st = None
                    if st is not None and stat.S_ISLNK(st.st_mode):
                        hops += 1
                        if hops > _MAX_LINKS:
                            raise WorkspaceError(tool, f"{rel!r}: too many symbolic links")
                        target = os.readlink(name, dir_fd=fds[-1])
                        if target.startswith("/"):
                            if target != root_text and not target.startswith(root_text + "/"):
                                raise WorkspaceError(
                                    tool,
                                    f"{rel!r} leads outside the workspace (through a "
                                    "symbolic link)",
                                )
                            while len(fds) > 1:
                                os.close(fds.pop())
                            done = []
                            target = target[len(root_text) :]
                        pending = [p for p in target.split("/") if p] + pending
                        continue
                    if not pending:
                        return os.dup(fds[-1]), done, name
                    if st is None:
                        if not create_dirs:
                            raise WorkspaceError(
                                tool, f"folder {'/'.join([*done, name])!r} does not exist"
                            )
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(name, dir_fd=fds[-1])
                    try:
                        fds.append(os.open(name, dir_flags, dir_fd=fds[-1]))
                    except (NotADirectoryError, OSError) as exc:
                        if isinstance(exc, NotADirectoryError) or exc.errno == errno.ELOOP:
                            raise WorkspaceError(
                                tool,
                                f"{'/'.join([*done, name])!r} is not a folder (or was replaced "
                                "by a link while the call ran)",
                            ) from None
                        raise
                    done.append(name)
                raise WorkspaceError(tool, f"{rel!r} names no file")
            finally:
                for fd in fds:
                    os.close(fd)

    def read_bytes(self, real: Path, *, tool: str = "read_file", max_bytes: int) -> bytes:
        """The content of the regular file at ``real`` (resolved), opened through
        :meth:`_walk` with ``O_NOFOLLOW`` and checked by the running call's guard under its
        resolved name. Raises :class:`WorkspaceError` for a missing file, a folder, a device
        or pipe, or a file over ``max_bytes``."""
        dir_fd, done, name = self._walk(real, tool=tool)
        rel = "/".join([*done, name])
        try:
            check_path(os.path.join(self.root, rel), write=False)
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                with _quiet():
                    fd = os.open(name, flags, dir_fd=dir_fd)
            except FileNotFoundError:
                raise WorkspaceError(tool, f"{rel!r} does not exist") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise WorkspaceError(tool, f"{rel!r} was replaced by a link") from None
                raise WorkspaceError(tool, f"{rel!r} cannot be read: {exc.strerror}") from None
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise WorkspaceError(tool, f"{rel!r} is not a file")
            if not stat.S_ISREG(info.st_mode):
                raise WorkspaceError(tool, f"{rel!r} is not a regular file")
            if info.st_size > max_bytes:
                raise WorkspaceError(
                    tool, f"{rel!r} is {info.st_size} bytes; the limit is {max_bytes}"
                )
            # (read what fstat saw, plus a byte: a buffer of max_bytes per read costs more)
            return handle.read(min(info.st_size, max_bytes) + 1)[:max_bytes]

    def write_text(
        self, real: Path, text: str, *, tool: str = "write_file", start: int = 0
    ) -> None:
        """Atomically replace ``real`` (already resolved) with ``text`` (UTF-8).

        The folder is opened through :meth:`_walk` (created as needed, never through a link
        out of the root); a temporary file is written beside the target, fsynced and renamed
        over it, and the folder fsynced (:func:`agentcore._atomic.atomic_write_at`): readers
        see the old or the new content, never a mix, and a link swapped in at the target's
        name is replaced, not followed. Under an effect guard the resolved path and the whole
        new text are checked first (``start``: where the new part of an append begins), so a
        secret assembled over several appends is refused.
        """
        check_write(real, text, start)
        dir_fd, done, name = self._walk(real, tool=tool, create_dirs=True)
        try:
            resolved = self.root.joinpath(*done, name)
            if resolved != real:  # a link inside the workspace: its target is what changes
                check_write(resolved, text, start)
            with _quiet():
                try:
                    existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    existing = None
                if existing is not None and stat.S_ISDIR(existing.st_mode):
                    raise WorkspaceError(tool, f"{self.relative(resolved)!r} is a folder")
                atomic_write_at(dir_fd, name, text.encode("utf-8"))
        finally:
            os.close(dir_fd)
