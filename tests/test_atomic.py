"""The one atomic-write helper: new content or old, never a mix; file and folder fsynced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import agentcore._atomic as atomic
from agentcore._atomic import atomic_open, atomic_path, atomic_write_bytes


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what each fsync call synced: "file" or "dir"."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return seen


def test_bytes_replace_the_file_and_sync_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _synced(monkeypatch)
    target = tmp_path / "new" / "state.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert seen == ["file", "dir", "file", "dir"]
    assert os.listdir(target.parent) == ["state.json"]


def test_an_error_while_writing_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(target) as fh:
        fh.write(b"half")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_a_library_writes_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _synced(monkeypatch)
    target = tmp_path / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"\x89PNG")
    assert target.read_bytes() == b"\x89PNG" and seen == ["file", "dir"]
