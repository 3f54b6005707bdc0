"""Crash-safe file replacement shared by everything that saves state.

Owns the one way files are replaced: write a temp file in the same folder, fsync it, rename it
over the target, fsync the folder. Readers see the old file or the new one, never a mix; a
kill at any point leaves the old file intact (at worst a stale ``.tmp`` file beside it).
:func:`atomic_write_bytes` writes bytes, :func:`atomic_open` hands out the temp file to write
to, :func:`atomic_path` its name (for libraries that write by file name);
:func:`atomic_copy_head` copies the first bytes of another file (an append-only file's valid
part); :func:`atomic_write_at` does the same relative to an open folder descriptor without following
any link (the workspace's writes: a link swapped in cannot redirect them); :func:`fsync_dir`
makes a rename in a folder durable. Never decides what is written or where.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_copy_head",
    "atomic_open",
    "atomic_path",
    "atomic_write_at",
    "atomic_write_bytes",
    "fsync_dir",
]


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp file name beside ``path`` to write by name; when the block ends without an
    error the file is fsynced, renamed over ``path`` and the folder fsynced, else removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content to; it replaces ``path`` (see
    :func:`atomic_path`) when the block ends without an error."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_at(dir_fd: int, name: str, data: bytes) -> None:
    """Replace ``name`` in the folder open as ``dir_fd`` with ``data``: a temp file created
    there (``O_EXCL | O_NOFOLLOW``), fsynced, renamed over ``name`` (a rename replaces a link
    at ``name`` instead of following it), then the folder fsynced. ``dir_fd`` must be opened
    for reading (``O_RDONLY | O_DIRECTORY``)."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"name: got {name!r}; expected one path component")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = f".{name[:200]}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name beside {name!r}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    os.fsync(dir_fd)


def atomic_copy_head(src: Path, dest: Path, nbytes: int) -> None:
    """Copy the first ``nbytes`` of ``src`` over ``dest`` atomically (what an append-only file
    holds up to its last save; a tail written after it is left behind)."""
    with open(src, "rb") as fin, atomic_open(dest) as fout:
        left = nbytes
        while left > 0:
            chunk = fin.read(min(left, 1 << 24))
            if not chunk:
                break
            fout.write(chunk)
            left -= len(chunk)
