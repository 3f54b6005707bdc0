"""Checkpoints: the whole run state after a tick, written so a kill never corrupts it.

Owns the run folder layout and :class:`Checkpoint`. After every tick the runner snapshots
``live/`` (agent homes and model sessions) into ``snapshots/tick-NNNNNN`` (copied into a
temporary folder, fsynced, renamed), then atomically replaces ``checkpoint.json`` (world,
metric state, transcript size, which snapshot), then drops older snapshots. Resuming restores
``live/`` from the snapshot the checkpoint names and cuts the transcript back to its size, so
whatever a killed tick had half-written is discarded and the tick runs again exactly.
Never runs agents.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentcore._atomic import atomic_write_bytes, fsync_dir
from agentcore.apps.sim._metrics import MetricTracker
from agentcore.apps.sim._world import World

__all__ = ["Checkpoint", "RunPaths", "scenario_digest"]


def scenario_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class RunPaths:
    """Where a run keeps its files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.live = root / "live"
        self.agents = self.live / "agents"
        self.sessions = self.live / "sessions"
        self.snapshots = root / "snapshots"
        self.checkpoint = root / "checkpoint.json"
        self.transcript = root / "transcript.jsonl"
        self.scenario = root / "scenario.yaml"
        self.summary = root / "summary.md"
        self.plot = root / "metrics.png"

    def agent_home(self, name: str) -> Path:
        return self.agents / name


class Checkpoint(BaseModel):
    """What a resumed run needs besides the ``live/`` snapshot."""

    version: int = 1
    scenario_digest: str
    seed: int
    next_tick: int
    world: World
    metrics: MetricTracker
    history: list[dict[str, Any]] = Field(default_factory=list)  # metric values per tick
    transcript_bytes: int
    snapshot: str | None
    agent_steps: int = 0
    elapsed_s: float = 0.0

    # ------------------------------------------------------------------ writing
    def save(self, paths: RunPaths) -> None:
        """Snapshot ``live/``, then atomically replace ``checkpoint.json``."""
        name = f"tick-{self.next_tick:06d}"
        paths.snapshots.mkdir(parents=True, exist_ok=True)
        target = paths.snapshots / name
        if paths.live.exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=paths.snapshots))
            _copy_tree(paths.live, tmp)
            fsync_dir(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)  # a folder: atomic_path is for files
            fsync_dir(paths.snapshots)
            self.snapshot = name
        else:
            self.snapshot = None
        atomic_write_bytes(paths.checkpoint, self.model_dump_json(indent=1).encode("utf-8"))
        for old in paths.snapshots.iterdir():
            if old.name != self.snapshot:
                shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, paths: RunPaths) -> Checkpoint:
        return cls.model_validate_json(paths.checkpoint.read_bytes())

    def restore_live(self, paths: RunPaths) -> None:
        """Replace ``live/`` by the snapshot this checkpoint names."""
        if paths.live.exists():
            shutil.rmtree(paths.live)
        if self.snapshot is not None:
            shutil.copytree(paths.snapshots / self.snapshot, paths.live)


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` into the existing folder ``dst``, fsyncing every file.

    Model session files (``*.session``) are hard-linked instead of copied: the backend only
    ever replaces them by rename (temp file, fsync, rename), so the linked inode never changes.
    """
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        out = dst / rel
        for d in dirs:
            (out / d).mkdir(exist_ok=True)
        for f in files:
            s, d_path = Path(root) / f, out / f
            if f.endswith(".session"):
                try:
                    os.link(s, d_path)
                    continue
                except OSError:
                    pass
            shutil.copyfile(s, d_path)
            with open(d_path, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(out)
