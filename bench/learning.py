"""Learning: does what the agent keeps from earlier runs help it on new tasks of the same kinds?

An agent (real model through ``LocalBackend``, real chromadb + MiniLM long-term memory, the
built-in workspace tools plus two weather tools) works through *training* tasks; after each
one the user gives feedback: ``agent.feedback(True)`` when the check passed, otherwise
``agent.feedback(False, correction)`` with the correction a user would give. Then the same
agent gets *held-back* tasks of the same kinds, worded differently, and each is checked the
same way. What the agent has to learn is something no prompt told it:

* ``notes``: the user keeps notes in ``notes/`` ("Make a note that says ..." passes only
  when a file under ``notes/`` holds the text);
* ``numbers``: the user wants large numbers written with thousands separators ("54,000");
* ``weather``: of two weather tools that look alike, one is offline (every call fails).

Each task is a new conversation (its own session) of the same agent: the same home, saved
state and long-term memory, so only what the learning layer keeps can carry over. Arms (the
same tasks in the same order, a fresh home each):

* ``no recall``: training and feedback first, then the held-back tasks with nothing from
  long-term memory in the prompt (``lesson_k=0``, ``memory_k=0``, ``tool_stats=False``):
  the baseline, the agent as if it had never run before;
* ``lessons``: as ``no recall`` plus the lessons (``lesson_k=2``);
* ``tool stats``: as ``no recall`` plus the per-tool success record (``tool_stats=True``:
  the record in the prompt, and a tool whose service failed 3 times in a row rests);
* ``all``: lessons, memories (``memory_k=3``) and tool statistics together (the
  defaults until 2026-12-03, when the runs of this bench turned lessons off by default; the
  reports of that day call this arm ``default``).

The gain of a kind of learning is its arm's held-back success minus ``no recall``'s.
Writes ``docs/benchmarks/learning.md`` + JSON, rewritten after every task.
Usage: ``agentcore bench learning [--model ALIAS] [--arms ...] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import machine, markdown_table, write_report

from agentcore.agent import Agent, AgentConfig, Result
from agentcore.backends import LocalBackend
from agentcore.memory import LongTermMemory
from agentcore.tools import ToolRegistry, tool
from agentcore.tools.builtin import default_tools

Check = Callable[[Result, Path], bool]


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    goal: str
    check: Check


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of task with something to learn: what the user says when a run of it fails."""

    name: str
    correction: str
    train: tuple[Task, ...]
    held: tuple[Task, ...]


def note_saved(text: str) -> Check:
    """A file under ``notes/`` holds ``text`` (case and surrounding words aside)."""

    def check(r: Result, ws: Path) -> bool:
        folder = ws / "notes"
        return folder.is_dir() and any(
            text.lower() in p.read_text(errors="replace").lower()
            for p in folder.rglob("*")
            if p.is_file()
        )

    return check


def says(*needles: str) -> Check:
    """The answer (less any echo of the goal) holds each needle as a whole token."""

    def check(r: Result, ws: Path) -> bool:
        text = r.answer.replace(r.goal, " ").lower()
        return r.success and all(
            re.search(rf"(?<![\w.,]){re.escape(n.lower())}(?![\w]|[.,]\d)", text) for n in needles
        )

    return check


def temperature(city: str) -> int:
    """The weather service's reading for ``city``: fixed per city, 5..29."""
    return 5 + zlib.crc32(city.lower().encode()) % 25


def weather_told(city: str) -> Check:
    """The answer gives what the working service said about ``city``: its temperature or
    its conditions (only that tool knows either)."""
    temp, sky = says(str(temperature(city))), says("partly cloudy")
    return lambda r, ws: temp(r, ws) or sky(r, ws)


def weather_tools() -> list[Any]:
    """Two look-alike tools; the station is offline, every call to it fails."""

    @tool(side_effects=("reads", "network"))
    def weather_station(city: str) -> str:
        """Current weather for a city, read from the weather station network.

        Args:
            city: The city name, e.g. "Paris".
        """
        raise ConnectionError("weather station network unreachable (offline for maintenance)")

    @tool(side_effects=("reads", "network"))
    def weather_service(city: str) -> str:
        """Current weather for a city, from the national weather service.

        Args:
            city: The city name, e.g. "Paris".
        """
        return f"{city}: partly cloudy, {temperature(city)} °C, wind 12 km/h"

    return [weather_station, weather_service]


KINDS = (
    Kind(
        "notes",
        "Notes go in the notes folder: write each note to notes/<topic>.txt, "
        "for example notes/milk.txt.",
        train=(
            Task("note-milk", 'Make a note that says "buy milk"', note_saved("buy milk")),
            Task(
                "note-plumber",
                'Write down "call the plumber" as a note',
                note_saved("call the plumber"),
            ),
            Task("note-train", 'Jot down a note: "book the train"', note_saved("book the train")),
        ),
        held=(
            Task(
                "note-plants",
                'Add a note saying "water the plants"',
                note_saved("water the plants"),
            ),
            Task(
                "note-passport",
                'Keep a note: "renew the passport"',
                note_saved("renew the passport"),
            ),
            Task(
                "note-keys", 'Create a note with "pick up the keys"', note_saved("pick up the keys")
            ),
            Task(
                "note-books",
                'Please write a note: "return the library books"',
                note_saved("return the library books"),
            ),
            Task(
                "note-ann",
                'Save a note saying "ask Ann about Friday"',
                note_saved("ask Ann about Friday"),
            ),
        ),
    ),
    Kind(
        "numbers",
        "Write large numbers with commas between the thousands, like 18,000.",
        train=(
            Task("num-hours", "What is 1200*15?", says("18,000")),
            Task("num-grid", "Calculate 2500*40", says("100,000")),
            Task("num-minutes", "How much is 365*24*60?", says("525,600")),
        ),
        held=(
            Task("num-rent", "What is 4500*12?", says("54,000")),
            Task("num-nines", "Compute 999*1001", says("999,999")),
            Task("num-mega", "How much is 1024*1024?", says("1,048,576")),
            Task("num-kilo", "What is 2048*1000?", says("2,048,000")),
            Task("num-seats", "Multiply 750 by 300", says("225,000")),
        ),
    ),
    Kind(
        "weather",
        "The weather station is offline; use weather_service for the weather.",
        train=(
            Task("wx-paris", "What's the weather in Paris?", weather_told("Paris")),
            Task("wx-oslo", "How is the weather in Oslo today?", weather_told("Oslo")),
            Task("wx-rome", "Tell me the weather in Rome.", weather_told("Rome")),
        ),
        held=(
            Task("wx-madrid", "What's the weather like in Madrid?", weather_told("Madrid")),
            Task("wx-tokyo", "Give me the current weather for Tokyo.", weather_told("Tokyo")),
            Task("wx-cairo", "Weather in Cairo right now, please.", weather_told("Cairo")),
            Task("wx-berlin", "What's the temperature in Berlin?", weather_told("Berlin")),
            Task("wx-lima", "Is it sunny in Lima at the moment?", weather_told("Lima")),
        ),
    ),
)


def snapshot(workspace: Path) -> dict[str, str]:
    """Every file of the workspace and its text."""
    return {
        str(p.relative_to(workspace)): p.read_text(errors="replace")
        for p in workspace.rglob("*")
        if p.is_file()
    }


def changed(before: dict[str, str], workspace: Path) -> list[str]:
    """Files that were there before the task and are changed or gone: no task asks for that
    (a new note written over an older one fails its task)."""
    after = snapshot(workspace)
    return sorted(name for name, text in before.items() if after.get(name) != text)


def interleaved(phase: str) -> list[tuple[Kind, Task]]:
    """The phase's tasks, kinds taking turns (a cut run still covers every kind)."""
    columns = [[(k, t) for t in getattr(k, phase)] for k in KINDS]  # equal lengths
    return [item for row in zip(*columns, strict=True) for item in row]


BASE = AgentConfig()
ARMS: dict[str, dict[str, Any]] = {  # name -> changes to the agent's configuration
    "no recall": {"lesson_k": 0, "memory_k": 0, "tool_stats": False},
    "lessons": {"lesson_k": 2, "memory_k": 0, "tool_stats": False},
    "tool stats": {"lesson_k": 0, "memory_k": 0, "tool_stats": True},
    "all": {"lesson_k": 2, "memory_k": 3, "tool_stats": True},
}


def open_agent(engine: Any, home: Path, planner: str, config: AgentConfig, session: str) -> Agent:
    """The bench's agent for one task: a new conversation (``session``) with the same home,
    long-term memory and saved state (tool statistics) as the tasks before it."""
    workspace = home / "workspace"
    store = LongTermMemory(home / "memory")
    registry: ToolRegistry = default_tools(workspace=workspace, memory=store, agent="learner")
    for extra in weather_tools():
        registry.register(extra)
    options: dict[str, Any] = {
        "tools": registry,
        "memory": store,
        "planner": planner,
        "workspace": workspace,
        "approve": lambda request: "once",
        "config": config,
        "session": session,
    }
    try:
        return Agent.load("learner", model=LocalBackend(engine), home=home, **options)
    except FileNotFoundError:  # the arm's first task
        workspace.mkdir(parents=True, exist_ok=True)
        return Agent(LocalBackend(engine), name="learner", home=home, **options)


def run_arm(
    engine: Any,
    arm: str,
    root: Path,
    planner: str,
    rows: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    home = root / re.sub(r"\W+", "-", arm)
    config = dataclasses.replace(
        BASE, sampling=dataclasses.replace(BASE.sampling, max_tokens=96), **ARMS[arm]
    )
    for phase in ("train", "held"):
        for kind, task in interleaved(phase):
            agent = open_agent(engine, home, planner, config, f"{phase}-{task.id}")
            try:
                before = snapshot(agent.workspace)
                t0 = time.perf_counter()
                result = agent.run(task.goal)
                seconds = time.perf_counter() - t0
                lost = changed(before, agent.workspace)
                ok = not lost and bool(task.check(result, agent.workspace))
                if phase == "train":  # the user's feedback: a correction when it went wrong
                    agent.feedback(ok, "" if ok else kind.correction, run_id=result.run_id)
            finally:
                agent.close()
            calls = result.tool_results()
            rows.append(
                {
                    "arm": arm,
                    "phase": phase,
                    "kind": kind.name,
                    "task": task.id,
                    "ok": ok,
                    "stop_reason": result.stop_reason,
                    "tools": [f"{e.tool}:{'ok' if e.ok else 'error'}" for e in calls],
                    "failed_calls": sum(not e.ok for e in calls),
                    "overwrote": lost,
                    "lessons_recalled": sum(
                        1 for e in result.events if e.type == "lesson" and e.recalled
                    ),
                    "seconds": round(seconds, 1),
                    "answer": result.answer[:200],
                }
            )
            r = rows[-1]
            print(
                f"  {arm:10s} {phase:5s} {task.id:14s} {'pass' if ok else 'FAIL'} "
                f"{' '.join(r['tools']) or '-':40s} {r['seconds']:5.1f}s",
                flush=True,
            )
            save()


def _share(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "-"
    n = sum(r["ok"] for r in rows)
    return f"{n}/{len(rows)}"


def report(raw: dict[str, Any], out: Path | None) -> Path:
    rows = raw["rows"]
    arms = [a for a in ARMS if any(r["arm"] == a for r in rows)]
    kinds = [k.name for k in KINDS]

    def held(arm: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in rows
            if r["arm"] == arm and r["phase"] == "held" and kind in (None, r["kind"])
        ]

    base = held("no recall")
    base_rate = sum(r["ok"] for r in base) / len(base) if base else None
    table = []
    for arm in arms:
        h = held(arm)
        rate = sum(r["ok"] for r in h) / len(h) if h else 0.0
        gain = (
            f"{100 * (rate - base_rate):+.0f} pts"
            if base_rate is not None and h and arm != "no recall"
            else "-"
        )
        train = [r for r in rows if r["arm"] == arm and r["phase"] == "train"]
        table.append(
            [
                arm,
                _share(train),
                *(_share(held(arm, k)) for k in kinds),
                f"{_share(h)} ({rate:.0%})",
                gain,
                sum(r["failed_calls"] for r in h),
                sum(r["lessons_recalled"] for r in h),
            ]
        )
    lines = [
        "# Learning from feedback: held-back tasks",
        "",
        f"Model {raw['model']}, planner `{raw['planner']}`, greedy; real chromadb + MiniLM "
        f"long-term memory. Machine: {raw['machine']}.",
        "",
        markdown_table(
            [
                "arm",
                "training passed",
                *(f"held-back {k}" for k in kinds),
                "held-back all",
                "gain vs no recall",
                "failed tool calls (held-back)",
                "lessons recalled (held-back)",
            ],
            table,
        ),
        "",
        "Each kind: 3 training tasks with feedback (the correction below after a failed one), "
        "then 5 held-back tasks worded differently; a task that changes or removes a file "
        "that was there before it fails. Corrections: "
        + "; ".join(f'{k.name}: "{k.correction}"' for k in KINDS)
        + ".",
        "",
        "### Per task",
        "",
        markdown_table(
            ["arm", "phase", "task", "result", "tool calls", "answer"],
            [
                [
                    r["arm"],
                    r["phase"],
                    r["task"],
                    "pass"
                    if r["ok"]
                    else "FAIL"
                    + (f" (changed {', '.join(r['overwrote'])})" if r["overwrote"] else ""),
                    " ".join(r["tools"]) or "-",
                    " ".join(r["answer"].split())[:90].replace("|", "/"),
                ]
                for r in rows
            ],
        ),
        "",
        f"Wall time: {raw.get('wall_s', 0):.0f} s.",
    ]
    return write_report("learning", "\n".join(lines), raw, out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arms", nargs="*", default=None, help=f"subset of {list(ARMS)}")
    ap.add_argument("--planner", choices=("off", "auto"), default="off")
    ap.add_argument(
        "--model", default="default", help="model alias (see `agentcore models`) or GGUF path"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(list(argv) if argv is not None else None)
    unknown = set(args.arms or ()) - set(ARMS)
    if unknown:
        raise SystemExit(f"--arms: unknown {sorted(unknown)}; expected some of {list(ARMS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    from agentcore.core.engine import Engine

    t0 = time.perf_counter()
    engine = Engine.load(args.model)
    raw: dict[str, Any] = {
        "machine": machine(),
        "model": engine.name,
        "planner": args.planner,
        "rows": [],
    }

    def save() -> None:
        raw["wall_s"] = time.perf_counter() - t0
        report(raw, args.out)

    with tempfile.TemporaryDirectory() as tmp:
        for arm in args.arms or list(ARMS):
            run_arm(engine, arm, Path(tmp), args.planner, raw["rows"], save)
    save()
    print(report(raw, args.out).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
