"""The agent: framework overhead per step, and task success on a real model.

Two measurements:

* overhead: the agent loop on a zero-latency scripted backend (``FakeBackend``); the time
  spent inside the backend is measured and subtracted, so what is left is the layers'
  own cost (perception, working memory, safety filter + audit log, execution, events, state).
  Reported per step (a model turn with its tool call) and per run (recall, episode, save).
* task success: a suite of small tool tasks (arithmetic, files, search, time, two-step
  compute-and-write, read-and-copy) on a real model (``--model``, default SmolLM2) through ``LocalBackend``, each in a
  fresh workspace and session, checked by what ended up in the answer or the files. Arms:
  without planning / with planning (``planner="off"`` / ``"auto"``), each first without
  recalled lessons and then again with the lessons the first pass left: lessons the agent
  distilled from failures it noticed, and lessons from the negative feedback the bench gives
  (``agent.feedback(False, ...)``) when a check fails.

Writes ``docs/benchmarks/agent.md`` + JSON (rewritten after every task, so a cut run still
leaves its numbers). Usage: ``agentcore bench agent [--quick] [--arms ...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import DOCS, machine, markdown_table, write_report

from agentcore.agent import Agent, AgentConfig, Budgets, Policy, Result
from agentcore.backends import (
    ChatRequest,
    Completion,
    FakeBackend,
    LocalBackend,
    ModelBackend,
    Reply,
)
from agentcore.core.sampling import SamplingParams
from agentcore.memory import HashEmbeddingFunction, LongTermMemory

# ---------------------------------------------------------------------------------- overhead


class _TimedBackend(ModelBackend):
    """Wraps a backend and adds up the seconds spent inside ``complete``."""

    def __init__(self, inner: FakeBackend) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: ChatRequest, **kwargs: Any) -> Completion:
        t0 = time.perf_counter()
        try:
            return self.inner.complete(request, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1

    def generate_json(self, messages: Any, schema: Any, *, max_tokens: int = 512) -> str:
        return self.inner.generate_json(messages, schema, max_tokens=max_tokens)

    def session_info(self, session: str) -> dict[str, Any] | None:
        return self.inner.session_info(session)

    def delete_session(self, session: str) -> bool:
        return self.inner.delete_session(session)


def overhead(root: Path, runs: int, steps: int, fsync: bool) -> dict[str, float]:
    """Per-step and per-run framework time with a zero-latency backend."""
    store = LongTermMemory(root / f"mem-{fsync}", embedder=HashEmbeddingFunction())
    timed = _TimedBackend(FakeBackend(default=Reply.call("calculate", expression="1+1")))
    policy = Policy(
        budgets=Budgets(steps=steps, tokens=None, time_s=None, tool_calls=None),
        audit_fsync=fsync,
    )
    agent = Agent(
        timed,
        memory=store,
        planner="off",
        policy=policy,
        home=root / f"agent-{fsync}",
        config=AgentConfig(max_steps=steps + 1, learn=False),
        name="bench",
    )
    audit_s = [0.0]
    append = agent.audit.append

    def timed_append(record: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        append(record)
        audit_s[0] += time.perf_counter() - t0

    agent.audit.append = timed_append  # type: ignore[method-assign]
    agent.run("warm up 1+1")
    per_step: list[float] = []
    per_run: list[float] = []
    audit_per_step: list[float] = []
    for _ in range(runs):
        timed.seconds, timed.calls, audit_s[0] = 0.0, 0, 0.0
        t0 = time.perf_counter()
        result = agent.run("keep adding 1+1")
        total = time.perf_counter() - t0 - timed.seconds
        per_step.append(total / max(1, result.steps))
        audit_per_step.append(audit_s[0] / max(1, result.steps))
        timed.seconds = 0.0
        timed.inner.add("ok")
        t0 = time.perf_counter()
        agent.run("say ok")
        per_run.append(time.perf_counter() - t0 - timed.seconds)
    store.close()
    return {
        "step_ms_median": statistics.median(per_step) * 1000,
        "audit_ms_per_step_median": statistics.median(audit_per_step) * 1000,
        "step_ms_without_audit_median": statistics.median(
            a - b for a, b in zip(per_step, audit_per_step, strict=True)
        )
        * 1000,
        "step_ms_max": max(per_step) * 1000,
        "text_run_ms_median": statistics.median(per_run) * 1000,
        "steps_per_run": steps,
    }


# ---------------------------------------------------------------------------------- task suite


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    goal: str
    check: Callable[[Result, Path], bool]
    files: dict[str, str] = dataclasses.field(default_factory=dict)


def _answer_has(*needles: str) -> Callable[[Result, Path], bool]:
    """The answer (minus any echo of the goal) contains each needle as a whole token: "12"
    is not found in "144/12 is 2"."""

    def check(r: Result, ws: Path) -> bool:
        text = r.answer.replace(r.goal, " ").lower()
        return r.success and all(
            re.search(rf"(?<![\w./*+-]){re.escape(n.lower())}(?![\w])", text) for n in needles
        )

    return check


def _file_is(name: str, text: str) -> Callable[[Result, Path], bool]:
    def check(r: Result, ws: Path) -> bool:
        path = ws / name
        return path.is_file() and path.read_text().strip() == text

    return check


def _tool_ok(tool: str) -> Callable[[Result, Path], bool]:
    return lambda r, ws: any(e.tool == tool and e.ok for e in r.tool_results())


NOTES = {"notes.txt": "The code word is falcon.\n", "todo.md": "- pay the invoice\n- call Ann\n"}

SUITE: list[Task] = [  # kinds interleaved, so a time-limited run still covers each kind
    Task("calc-mul", "What is 17*23?", _answer_has("391")),
    Task(
        "calc-write",
        "Compute 17*23 and write the result to result.txt",
        _file_is("result.txt", "391"),
    ),
    Task("read-note", "Read notes.txt", _answer_has("falcon"), NOTES),
    Task(
        "write-hello",
        'Write "hello world" to greeting.txt',
        _file_is("greeting.txt", "hello world"),
    ),
    Task("list", "List the files in the workspace", _answer_has("notes.txt", "todo.md"), NOTES),
    Task("missing", "Read report.txt", lambda r, ws: not r.success and r.stop_reason != "error"),
    Task("search", "Search the files for invoice", _answer_has("todo.md"), NOTES),
    Task("time", "What time is it now?", _tool_ok("current_time")),
    Task(
        "copy",
        "Read notes.txt and write its content to copy.txt",
        _file_is("copy.txt", "The code word is falcon."),
        NOTES,
    ),
    Task("calc-add", "Calculate 345+678", _answer_has("1023")),
    Task("read-todo", "Read todo.md and tell me what it says", _answer_has("invoice"), NOTES),
    Task("calc-save", "Calculate 12*12, then save it in square.txt", _file_is("square.txt", "144")),
    Task("write-note", 'Save "buy milk" in shopping.txt', _file_is("shopping.txt", "buy milk")),
    Task("list-then-read", "List the files, then read todo.md", _answer_has("invoice"), NOTES),
    Task("calc-pow", "Compute 2**10", _answer_has("1024")),
    Task(
        "calc-write-2",
        "Compute 250+250 and write the result to sum.txt",
        _file_is("sum.txt", "500"),
    ),
    Task("calc-sub", "What is 1000-357?", _answer_has("643")),
    Task(
        "calc-then-write-text",
        'Compute 9*9 and then write "done" to status.txt',
        _file_is("status.txt", "done"),
    ),
    Task("calc-paren", "Calculate (4+5)*3", _answer_has("27")),
    Task("calc-div", "What is 144/12?", _answer_has("12")),
    # asked the way people ask: questions, indirect requests, no verb-first steps
    Task("ask-read", "I left a note in notes.txt, what does it say?", _answer_has("falcon"), NOTES),
    Task("ask-mul", "Could you work out 37*12 for me?", _answer_has("444")),
    Task("ask-list", "Which files do I have here?", _answer_has("notes.txt", "todo.md"), NOTES),
    Task("ask-time", "Do you know what time it is right now?", _tool_ok("current_time")),
    Task(
        "ask-write",
        "Please make a file called plan.txt that contains the word ready",
        _file_is("plan.txt", "ready"),
    ),
    Task("ask-search", "Is the word falcon in any of my files?", _answer_has("notes.txt"), NOTES),
    Task("ask-todo", "What's on my list in todo.md?", _answer_has("invoice"), NOTES),
    Task(
        "ask-sum-save",
        "I need 120+80 worked out and the answer put in total.txt",
        _file_is("total.txt", "200"),
    ),
    Task("ask-div", "How much is 81/9?", _answer_has("9")),
    Task(
        "ask-chat",
        "Thanks! What is a text file, in one sentence?",
        lambda r, ws: r.success and not r.tool_results() and bool(r.answer.strip()),
    ),
]
QUICK = ["calc-mul", "calc-write", "read-note", "write-hello", "list", "missing"]


def run_task(
    engine: Any, task: Task, root: Path, store: LongTermMemory, planner: str, lessons: bool
) -> dict[str, Any]:
    home = root / f"{task.id}-{planner}-{lessons}-{time.monotonic_ns()}"
    workspace = home / "workspace"
    workspace.mkdir(parents=True)
    for name, text in task.files.items():
        (workspace / name).write_text(text)
    agent = Agent(
        LocalBackend(engine),
        memory=store,
        planner=planner,  # type: ignore[arg-type]
        home=home,
        workspace=workspace,
        approve=lambda request: "once",
        config=AgentConfig(
            lesson_k=2 if lessons else 0,
            memory_k=0,
            sampling=dataclasses.replace(AgentConfig().sampling, max_tokens=64),
        ),
        name="bench",
    )
    t0 = time.perf_counter()
    result = agent.run(task.goal)
    elapsed = time.perf_counter() - t0
    ok = bool(task.check(result, workspace))
    if not ok:  # the user says so: negative feedback becomes a lesson for the next runs
        agent.feedback(False, "That was wrong; the task was not done.", run_id=result.run_id)
    return {
        "task": task.id,
        "planner": planner,
        "lessons": lessons,
        "ok": ok,
        "stop_reason": result.stop_reason,
        "steps": result.steps,
        "tool_calls": result.tool_calls,
        "seconds": round(elapsed, 2),
        "lessons_recalled": sum(1 for e in result.events if e.type == "lesson" and e.recalled),
        "answer": result.answer[:200],
    }


# ------------------------------------------------------------------ facts across a restart

FACTS = [  # (told in the first run, asked after a restart, expected in the answer)
    ("Remember that my favourite colour is teal.", "What is my favourite colour?", "teal"),
    ("Remember that my dog is called Biscuit.", "What is my dog called?", "biscuit"),
    ("Please remember: I live in Lyon.", "Where do I live?", "lyon"),
    ("Remember that my sister's birthday is on March 14.", "When is my sister's birthday?", "14"),
    ("Remember that the wifi password is orange42.", "What is the wifi password?", "orange42"),
    ("Remember that my manager's name is Priya.", "What is my manager's name?", "priya"),
    ("Remember that I am allergic to peanuts.", "What am I allergic to?", "peanuts"),
    ("Remember that our meeting room is B-17.", "Which meeting room do we use?", "b-17"),
]


def fact_arms() -> dict[str, SamplingParams]:
    default = AgentConfig().sampling
    return {
        "no repetition penalty": dataclasses.replace(default, repetition_penalty=1.0),
        f"agent default ({default.repetition_penalty:g}, {default.repetition_scope})": default,
    }


def run_fact(engine: Any, root: Path, arm: str, sampling: SamplingParams, i: int) -> dict[str, Any]:
    """Tell the agent a fact, close it, load it again (new process state, same home) and ask."""
    tell, ask, want = FACTS[i]
    home = root / f"fact-{i}-{time.monotonic_ns()}"
    config = AgentConfig(sampling=sampling)

    def backend() -> LocalBackend:
        return LocalBackend(engine, sessions_dir=home / "sessions")

    first = Agent(backend(), name="facts", home=home, config=config)
    first.run(tell)
    first.close()
    again = Agent.load("facts", model=backend(), home=home, config=config)
    t0 = time.perf_counter()
    result = again.run(ask)
    again.close()
    return {
        "arm": arm,
        "fact": i,
        "ok": _answer_has(want)(result, home),  # whole token: "14" is not found in "2014"
        "seconds": round(time.perf_counter() - t0, 2),
        "looped": _looped(result.answer),
        "answer": result.answer[:200],
    }


def run_facts(engine: Any, root: Path, raw: dict[str, Any], out: Path | None) -> None:
    raw["facts"] = {arm: [] for arm in fact_arms()}
    t0 = time.perf_counter()
    for i in range(len(FACTS)):  # fact by fact through both arms
        for arm, sampling in fact_arms().items():
            row = run_fact(engine, root, arm, sampling, i)
            raw["facts"][arm].append(row)
            print(f"  {arm:32s} fact {i} {'pass' if row['ok'] else 'FAIL'}", flush=True)
            raw["facts_wall_s"] = round(time.perf_counter() - t0)
            report(raw, out)


def _looped(text: str) -> bool:
    """Whether a line of the answer repeats three times or more (a decoding loop)."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return any(lines.count(x) >= 3 for x in set(lines))


ARMS = {
    "off": ("off", False),
    "auto": ("auto", False),
    "off+lessons": ("off", True),
    "auto+lessons": ("auto", True),
}


def report(raw: dict[str, Any], out: Path | None) -> Path:
    lines = ["# Agent benchmark", "", f"Machine: {raw['machine']}", ""]
    ov = raw.get("overhead")
    if ov:
        lines += [
            "## Framework overhead (zero-latency scripted backend, model time subtracted)",
            "",
            markdown_table(
                [
                    "audit fsync",
                    "per step (median ms)",
                    "of which audit write",
                    "per step without audit",
                    "per step (max ms)",
                    "per text run (ms)",
                ],
                [
                    [
                        k,
                        v["step_ms_median"],
                        v.get("audit_ms_per_step_median", float("nan")),
                        v.get("step_ms_without_audit_median", float("nan")),
                        v["step_ms_max"],
                        v["text_run_ms_median"],
                    ]
                    for k, v in ov.items()
                ],
            ),
            "",
            "A step is one model turn plus its tool call (perception, safety filter, audit "
            "record, execution, events). A text run adds the per-run work: recall from "
            "long-term memory (chromadb), the episode record is off here (learn=False), and "
            "the atomic state save. Goal: under 5 ms per step.",
            "",
        ]
    rows = []
    for arm, results in raw["tasks"].items():
        if not results:
            continue
        done = sum(r["ok"] for r in results)
        secs = statistics.median(r["seconds"] for r in results)
        rows.append([arm, f"{done}/{len(results)} ({done / len(results):.0%})", secs])
    if rows:
        lines += [
            f"## Task success on {raw.get('model', 'SmolLM2-135M-Instruct')} (greedy, CPU)",
            "",
            markdown_table(["arm", "tasks passed", "median seconds per task"], rows),
            "",
            "Arms: `off` = planner off (the model picks tools freely); `auto` = clause planner "
            "with each step forced to its tool and arguments grounded in the step; `+lessons` = "
            "the same tasks again with the lessons the first pass distilled in long-term memory.",
            "",
            "### Per task",
            "",
        ]
        arms = [a for a in raw["tasks"] if raw["tasks"][a]]
        by_task: dict[str, dict[str, str]] = {}
        for arm in arms:
            for r in raw["tasks"][arm]:
                by_task.setdefault(r["task"], {})[arm] = "pass" if r["ok"] else r["stop_reason"]
        lines.append(
            markdown_table(
                ["task", *arms], [[t, *(v.get(a, "-") for a in arms)] for t, v in by_task.items()]
            )
        )
    facts = raw.get("facts") or {}
    if facts:
        lines += [
            "",
            f"## Facts across a restart ({raw.get('model', 'SmolLM2-135M-Instruct')}, real chromadb + MiniLM memory)",
            "",
            markdown_table(
                ["sampling", "answers with the fact", "answers that loop", "median seconds"],
                [
                    [
                        arm,
                        f"{sum(r['ok'] for r in rows)}/{len(rows)}",
                        f"{sum(r['looped'] for r in rows)}/{len(rows)}",
                        statistics.median(r["seconds"] for r in rows),
                    ]
                    for arm, rows in facts.items()
                    if rows
                ],
            ),
            "",
            f'{len(FACTS)} facts: the agent is told one ("Remember that my dog is called '
            'Biscuit."), closed, loaded again from its home, and asked ("What is my dog '
            'called?"); an answer passes when it contains the fact as a whole token ("14" is not found in "2014"). The penalty with scope '
            "`reply` counts only the reply's own tokens (the fact in the prompt stays free) and "
            "never applies inside a tool call."
            + (f" Wall time: {raw['facts_wall_s']} s." if "facts_wall_s" in raw else ""),
        ]
    lines += ["", f"Wall time: {raw.get('wall_s', 0):.0f} s. {raw.get('note', '')}"]
    return write_report("agent", "\n".join(lines), raw, out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help=f"only {len(QUICK)} tasks, 2 arms")
    ap.add_argument("--arms", nargs="*", default=None, help=f"subset of {list(ARMS)}")
    ap.add_argument(
        "--no-tasks",
        action="store_true",
        help="overhead only (keeps the task results already in the JSON report)",
    )
    ap.add_argument(
        "--max-minutes", type=float, default=25.0, help="start no task after this (0: no limit)"
    )
    ap.add_argument(
        "--facts-only",
        action="store_true",
        help="only the facts-across-a-restart section (keeps the rest of the JSON report)",
    )
    ap.add_argument(
        "--model", default="default", help="model alias (see `agentcore models`) or GGUF path"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    raw: dict[str, Any] = {"machine": machine(), "tasks": {}, "quick": args.quick}
    previous = (args.out or DOCS) / "agent.json"
    if (args.no_tasks or args.facts_only) and previous.exists():
        kept = json.loads(previous.read_text())
        keep = ["model", "tasks", "wall_s", "note", "skipped", "facts", "facts_wall_s", "overhead"]
        raw.update({k: kept[k] for k in keep if k in kept})
    if args.facts_only:
        from agentcore.core.engine import Engine

        engine = Engine.load(args.model)
        raw["model"] = engine.name
        with tempfile.TemporaryDirectory() as tmp:
            run_facts(engine, Path(tmp), raw, args.out)
        print(report(raw, args.out).read_text())
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw["overhead"] = {
            str(fsync): overhead(root, runs=5 if args.quick else 20, steps=10, fsync=fsync)
            for fsync in (True, False)
        }
        for fsync, v in raw["overhead"].items():
            print(
                f"overhead fsync={fsync}: {v['step_ms_median']:.2f} ms/step, "
                f"{v['text_run_ms_median']:.1f} ms/text run",
                flush=True,
            )
        report(raw, args.out)
        if args.no_tasks:
            return 0
        from agentcore.core.engine import Engine

        engine = Engine.load(args.model)
        raw["model"] = engine.name
        tasks = [t for t in SUITE if t.id in QUICK] if args.quick else SUITE
        arms = args.arms or (["off", "auto"] if args.quick else list(ARMS))
        stores = {planner: LongTermMemory(root / f"tasks-{planner}") for planner in ("off", "auto")}
        skipped: list[str] = []
        deadline = t_start + args.max_minutes * 60 if args.max_minutes else None
        for arm in arms:
            raw["tasks"][arm] = []
        # task by task through every arm, so a time limit cuts whole tasks, and each
        # "+lessons" run comes right after the first-pass runs that may have left a lesson
        for task in tasks:
            for arm in arms:
                planner, lessons = ARMS[arm]
                if deadline is not None and time.perf_counter() > deadline:
                    skipped.append(f"{arm}:{task.id}")
                    continue
                row = run_task(engine, task, root, stores[planner], planner, lessons)
                raw["tasks"][arm].append(row)
                print(
                    f"  {arm:13s} {task.id:22s} {'pass' if row['ok'] else 'FAIL':4s} "
                    f"{row['stop_reason']:12s} {row['seconds']:6.1f}s",
                    flush=True,
                )
                raw["wall_s"] = time.perf_counter() - t_start
                report(raw, args.out)
        for store in stores.values():
            store.close()
        if not args.quick:
            run_facts(engine, root, raw, args.out)
        if skipped:
            raw["skipped"] = skipped
            raw["note"] = (
                f"Stopped starting tasks after {args.max_minutes:g} minutes; "
                f"{len(skipped)} task runs were not made: {', '.join(skipped)}."
            )
    raw["wall_s"] = time.perf_counter() - t_start
    path = report(raw, args.out)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
