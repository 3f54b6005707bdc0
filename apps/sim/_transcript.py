"""Simulation transcripts: one JSON line per event, agent events and world events together.

Owns :class:`TickEvent` (the metrics after a tick), :data:`SimEventAdapter` (reads any line's
event back: the agent's events from :mod:`agentcore.agent._events`, :class:`WorldEvent`,
:class:`TickEvent`), :class:`TranscriptWriter` (appends a whole tick at once, fsynced, and
truncates back to a checkpoint's byte offset on resume) and :func:`read_transcript` /
:func:`normalized` (the comparable form: wall-clock fields dropped, random ids numbered in
order of appearance). Never decides what happens in the world.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentcore.agent._events import (
    FinalAnswer,
    LessonEvent,
    ObservationEvent,
    PlanUpdate,
    SafetyVerdict,
    StatusEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agentcore.apps.sim._world import WorldEvent

__all__ = [
    "SimEvent",
    "SimEventAdapter",
    "TickEvent",
    "TranscriptLine",
    "TranscriptWriter",
    "normalized",
    "read_transcript",
]


class TickEvent(BaseModel):
    """A tick finished: its metric values and how many agent steps it took."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["tick"] = "tick"
    tick: int
    clock: str
    metrics: dict[str, Any]
    agent_steps: int  # agent turns taken in this tick
    model_calls: int  # model steps those turns took (tool calls plus final answers)
    duration_s: float = 0.0


SimEvent = Annotated[
    ObservationEvent
    | StatusEvent
    | PlanUpdate
    | TextDelta
    | ToolCallEvent
    | SafetyVerdict
    | ToolResultEvent
    | LessonEvent
    | FinalAnswer
    | WorldEvent
    | TickEvent,
    Field(discriminator="type"),
]


class TranscriptLine(BaseModel):
    """One line of ``transcript.jsonl``."""

    model_config = ConfigDict(frozen=True)

    tick: int
    event: SimEvent


SimEventAdapter: TypeAdapter[TranscriptLine] = TypeAdapter(TranscriptLine)


class TranscriptWriter:
    """Appends ticks to a JSONL file; every tick is one write followed by fsync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the whole run

    @staticmethod
    def truncate(path: Path, size: int) -> None:
        """Cut ``path`` back to ``size`` bytes (what the last checkpoint had written)."""
        if not path.exists():
            if size:
                raise ValueError(f"{path} is missing but the checkpoint says it had {size} bytes")
            return
        actual = path.stat().st_size
        if actual < size:
            raise ValueError(
                f"{path} has {actual} bytes but the checkpoint says {size}; it was truncated "
                "after the checkpoint and cannot be resumed exactly"
            )
        with open(path, "r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())

    def write_tick(self, tick: int, events: Iterable[dict[str, Any]]) -> int:
        """Append ``events`` (JSON-ready dicts) as lines of ``tick``; returns the file size."""
        data = b"".join(
            json.dumps({"tick": tick, "event": e}, ensure_ascii=False, sort_keys=True).encode()
            + b"\n"
            for e in events
        )
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def read_transcript(path: Path) -> list[TranscriptLine]:
    """Every line of a transcript, validated."""
    with open(path, encoding="utf-8") as fh:
        return [SimEventAdapter.validate_json(line) for line in fh if line.strip()]


_VOLATILE = frozenset({"time", "duration_s"})


def normalized(path: Path) -> list[dict[str, Any]]:
    """The transcript in comparable form: wall-clock fields removed; each ``run_id`` (random
    per run) replaced by its order of first appearance, and each ``call_id`` (random, or a
    per-process counter, depending on the backend) by its order within its run. Two runs of
    one scenario with one seed on one model and device give equal lists."""
    runs: dict[str, str] = {}
    calls: dict[tuple[str, str], str] = {}
    per_run: dict[str, int] = {}
    out = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            line = json.loads(raw)
            event = {k: v for k, v in line["event"].items() if k not in _VOLATILE}
            run = event.get("run_id")
            if isinstance(run, str):
                event["run_id"] = runs.setdefault(run, f"run#{len(runs)}")
                call = event.get("call_id")
                if isinstance(call, str):
                    if (run, call) not in calls:
                        calls[(run, call)] = f"call#{per_run.get(run, 0)}"
                        per_run[run] = per_run.get(run, 0) + 1
                    event["call_id"] = calls[(run, call)]
            out.append({"tick": line["tick"], "event": event})
    return out
