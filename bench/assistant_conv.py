"""The assistant in a conversation as a user has it: statements, questions, tasks, small talk.

Scripted conversations of 20-40 turns, each run through one :class:`agentcore.Agent` (one model
session, one long-term memory on chromadb with the offline MiniLM embedder, the ``auto``
planner, the built-in tools on a workspace with two small files), as the terminal assistant
runs them. Every turn is scored on:

* **action**: a tool call when the turn asks for one (arithmetic, files, the clock), a text
  reply otherwise (a statement, a question about what the user said, small talk);
* **planning**: a plan only for a request (a statement is never a task; "My sister lives in
  Lyon. Suggest a gift for her." is one unplanned request with the statement as context);
* **answer**: for turns with accepted values, the reply contains one of them as a whole word
  (a question about an earlier statement: "Where does my sister live?" -> "Lyon"; a tool
  result: "391"); a file a task writes has the expected content.

After the conversation the memory records are scored: each fact the user stated is stored as
a ``fact``; no ``skill`` except from a multi-step tool procedure that succeeded; no episode
says "succeeded" without a tool call that succeeded in its run (``unearned``).

Writes ``docs/benchmarks/assistant_conv.md`` + JSON (one section per model, rewritten after
every turn). Usage: ``agentcore bench assistant_conv [--model default|agent] [--threads 1]
[--conversations family work] [--max-turns N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import DOCS, machine, markdown_table, write_report

from agentcore import _compute as compute
from agentcore.agent import Agent, AgentConfig, Result
from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.memory import LongTermMemory, MemoryKind


@dataclasses.dataclass(frozen=True)
class Turn:
    """One user message and what a right handling of it looks like.

    ``kind``: statement, question (about something said earlier), task (needs a tool), chat
    (small talk), mixed (a statement with a request). ``tool``: a tool call is expected (and
    the name, when given, among the calls). ``plan``: a plan is expected. ``accept``: the
    answer contains one of these as a whole word. ``fact``: a ``fact`` record containing this
    is expected afterwards. ``skill``: this turn may leave a skill (a multi-step procedure).
    ``file``: (name, content) the workspace holds afterwards.
    """

    text: str
    kind: str
    tool: str | None = None
    plan: bool = False
    accept: tuple[str, ...] = ()
    fact: str | None = None
    skill: bool = False
    file: tuple[str, str] | None = None

    @property
    def wants_tool(self) -> bool:
        return self.tool is not None


def S(text: str, fact: str) -> Turn:  # a statement
    return Turn(text, "statement", fact=fact)


def Q(text: str, *accept: str) -> Turn:  # a question about what was said
    return Turn(text, "question", accept=accept)


def C(text: str) -> Turn:  # small talk
    return Turn(text, "chat")


def T(  # a tool task
    text: str,
    tool: str,
    *accept: str,
    plan: bool = True,
    skill: bool = False,
    file: tuple[str, str] | None = None,
) -> Turn:
    return Turn(text, "task", tool=tool, plan=plan, accept=accept, skill=skill, file=file)


FILES = {"notes.txt": "The code word is falcon.\n", "todo.md": "- pay the invoice\n- call Ann\n"}

CONVERSATIONS: dict[str, list[Turn]] = {
    "family": [
        C("Hi there!"),
        Turn("My sister lives in Lyon. Suggest a gift for her.", "mixed", fact="Lyon"),
        Q("Where does my sister live?", "Lyon"),
        S("My dog is called Biscuit.", "Biscuit"),
        T("What is 17*23?", "calculate", "391"),
        C("Thanks!"),
        Q("What is my dog called?", "Biscuit"),
        S("I am allergic to peanuts.", "peanuts"),
        T("Read notes.txt", "read_file", "falcon"),
        Q("What am I allergic to?", "peanuts", "peanut"),
        S("My favourite colour is teal.", "teal"),
        T("List the files in the workspace", "list_files", "notes.txt", "todo.md"),
        Q("Which city does my sister live in?", "Lyon"),
        S("My manager's name is Priya.", "Priya"),
        T(
            "Compute 12*12, then save it in square.txt",
            "write_file",
            skill=True,
            file=("square.txt", "144"),
        ),
        C("Good morning!"),
        Q("What is my favourite colour?", "teal"),
        S("Our meeting room is B-17.", "B-17"),
        T("What time is it now?", "current_time", plan=False),
        Q("Who is my manager?", "Priya"),
        Turn(
            "I live in Paris. What is 345+678?",
            "mixed",
            tool="calculate",
            plan=True,
            accept=("1023",),
            fact="Paris",
        ),
        Q("Which meeting room do we use?", "B-17"),
        C("How are you?"),
        Q("Where do I live?", "Paris"),
        S("My sister's birthday is on March 14.", "March 14"),
        Q("When is my sister's birthday?", "March 14", "14"),
        T('Write "buy milk" to shopping.txt', "write_file", file=("shopping.txt", "buy milk")),
        Q("What is my dog called?", "Biscuit"),
        C("Thank you, bye!"),
    ],
    "work": [
        C("Hello!"),
        S("I work as a nurse in Leeds.", "nurse"),
        S("My brother Tom plays the cello.", "cello"),
        Q("What does my brother play?", "cello"),
        T("Calculate 250+250", "calculate", "500"),
        Q("What is my job?", "nurse"),
        S("The wifi password is orange42.", "orange42"),
        T("Read todo.md and tell me what it says", "read_file", "invoice"),
        Q("What is the wifi password?", "orange42"),
        C("Nice, thanks."),
        S("My car is a red Fiat.", "Fiat"),
        T("Search the files for invoice", "search_files", "todo.md"),
        Q("What colour is my car?", "red"),
        S("I have two cats named Mia and Leo.", "Mia"),
        Q("What are my cats called?", "Mia", "Leo"),
        T(
            'Compute 9*9 and then write "done" to status.txt',
            "write_file",
            skill=True,
            file=("status.txt", "done"),
        ),
        Q("Which city do I work in?", "Leeds"),
        C("Good night!"),
        Turn("My niece is called Emma. Suggest a present for her.", "mixed", fact="Emma"),
        Q("What is my niece called?", "Emma"),
        T("What is 1000-357?", "calculate", "643"),
        Q("How many cats do I have?", "two", "2"),
        S("Our office is on the fifth floor.", "fifth"),
        Q("Which floor is our office on?", "fifth", "5th"),
        C("Cheers, see you later."),
    ],
}


def _has(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value.lower())}(?![\w-])", text.lower()) is not None


def score_turn(turn: Turn, result: Result, workspace: Path) -> dict[str, Any]:
    called = [e.tool for e in result.tool_call_events()]
    planned = any(e.type == "plan" and getattr(e, "reason", "") == "created" for e in result.events)
    action_ok = bool(called) if turn.wants_tool else not called
    if turn.wants_tool and turn.tool is not None and called:
        action_ok = turn.tool in called
    row: dict[str, Any] = {
        "text": turn.text,
        "kind": turn.kind,
        "action_ok": action_ok,
        "plan_ok": planned == turn.plan,
        "called": called,
        "planned": planned,
        "stop_reason": result.stop_reason,
        "answer": result.answer[:300],
        "run_id": result.run_id,
        "tool_ok": any(e.ok for e in result.tool_results()),
    }
    if turn.accept:
        answer = result.answer.replace(turn.text, " ")
        row["answer_ok"] = any(_has(answer, v) for v in turn.accept)
    if turn.file is not None:
        name, want = turn.file
        path = workspace / name
        row["file_ok"] = path.is_file() and path.read_text().strip() == want
    return row


def score_memory(store: LongTermMemory, turns: list[Turn], rows: list[dict[str, Any]]) -> dict:
    facts = [r.text for r in store.list_records(kinds=[MemoryKind.FACT])]
    skills = [r.text for r in store.list_records(kinds=[MemoryKind.SKILL])]
    episodes = store.list_records(kinds=[MemoryKind.EPISODIC])
    wanted = [t.fact for t in turns[: len(rows)] if t.fact]
    stored = [f for f in wanted if any(f.lower() in text.lower() for text in facts)]
    allowed = {t.text for t in turns if t.skill}
    tool_ok_runs = {r["run_id"] for r in rows if r["tool_ok"]}
    outcomes = [str(e.attributes.get("outcome", "")) for e in episodes]
    unearned = [
        e.attributes.get("goal")
        for e in episodes
        if (e.attributes.get("outcome") == "succeeded" or "Outcome: succeeded" in e.text)
        and e.attributes.get("run_id") not in tool_ok_runs
    ]
    return {
        "facts_wanted": len(wanted),
        "facts_stored": len(stored),
        "facts_missing": [f for f in wanted if f not in stored],
        "fact_records": facts,
        "question_facts": [f for f in facts if f.rstrip().endswith("?")],
        "skills": skills,
        "bogus_skills": [s for s in skills if s not in allowed],
        "episodes": len(episodes),
        "succeeded": outcomes.count("succeeded"),
        "unverified": outcomes.count("unverified"),
        "failed": outcomes.count("failed"),
        "unearned_succeeded": unearned,
    }


def run_conversation(
    engine: Engine, name: str, turns: list[Turn], root: Path, max_tokens: int, on_turn: Any
) -> dict[str, Any]:
    home = root / f"{name}-{time.monotonic_ns()}"
    workspace = home / "workspace"
    workspace.mkdir(parents=True)
    for file, text in FILES.items():
        (workspace / file).write_text(text)
    store = LongTermMemory(home / "memory")
    agent = Agent(
        LocalBackend(engine, sessions_dir=home / "sessions"),
        memory=store,
        planner="auto",
        home=home,
        workspace=workspace,
        approve=lambda request: "once",
        config=AgentConfig(
            sampling=dataclasses.replace(AgentConfig().sampling, max_tokens=max_tokens)
        ),
        name="assistant",
    )
    out: dict[str, Any] = {"turns": [], "memory": {}}
    try:
        for i, turn in enumerate(turns):
            t0 = time.perf_counter()
            result = agent.run(turn.text)
            row = score_turn(turn, result, workspace)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            out["turns"].append(row)
            out["memory"] = score_memory(store, turns, out["turns"])
            marks = "".join(
                "." if row.get(k, True) else "x" for k in ("action_ok", "plan_ok", "answer_ok")
            )
            print(
                f"{name} {i + 1:2d} {marks} {turn.kind:9s} {turn.text[:44]!r:48s} "
                f"{row['called'] or ''} {row['answer'][:70]!r}",
                flush=True,
            )
            on_turn(out)
    finally:
        agent.close()
    return out


def _echoes(row: dict[str, Any]) -> bool:
    """A reply that copies the tool-record format instead of talking to the user."""
    head = row["answer"].lstrip()
    return not row["called"] and head.startswith(("<tool_response>", "<tool_call>", "{"))


def _pct(rows: Sequence[dict[str, Any]], key: str) -> str:
    vals = [bool(r[key]) for r in rows if key in r]
    return f"{sum(vals)}/{len(vals)}" if vals else "-"


KINDS = ("statement", "question", "task", "mixed", "chat")


def report(raw: dict[str, Any], out: Path | None) -> Path:
    lines = [
        "# Assistant conversations",
        "",
        "Scripted conversations (statements about the user, questions about what was said, "
        "tool tasks, small talk) through one Agent each, as the terminal assistant runs them: "
        "`auto` planner, built-in tools, chromadb + MiniLM long-term memory, greedy decoding. "
        "Generated by `bench/assistant_conv.py`.",
        "",
        f"Machine: {raw['machine']}",
        "",
    ]
    for model, convs in raw["models"].items():
        meta = raw.get("runs", {}).get(model, {})
        lines += [f"## {model}", "", f"{meta}", ""]
        rows = []
        for conv, data in convs.items():
            turns = data["turns"]
            mem = data.get("memory", {})
            rows.append(
                [
                    conv,
                    len(turns),
                    _pct(turns, "action_ok"),
                    _pct(turns, "plan_ok"),
                    _pct(turns, "answer_ok"),
                    _pct(turns, "file_ok"),
                    f"{sum(_echoes(t) for t in turns)}/{len(turns)}",
                    f"{mem.get('facts_stored', 0)}/{mem.get('facts_wanted', 0)}",
                    len(mem.get("question_facts", [])),
                    f"{len(mem.get('skills', []))} ({len(mem.get('bogus_skills', []))} bogus)",
                    f"{mem.get('succeeded', 0)}/{mem.get('unverified', 0)}/{mem.get('failed', 0)}",
                    len(mem.get("unearned_succeeded", [])),
                ]
            )
        lines += [
            markdown_table(
                [
                    "conversation",
                    "turns",
                    "right action",
                    "right planning",
                    "answers with the value",
                    "files right",
                    "replies echoing tool records",
                    "facts stored",
                    "questions stored as facts",
                    "skills",
                    "episodes succeeded/unverified/failed",
                    "unearned succeeded",
                ],
                rows,
            ),
            "",
            "### By kind of turn (all conversations)",
            "",
        ]
        every = [t for data in convs.values() for t in data["turns"]]
        kind_rows = []
        for kind in KINDS:
            sel = [t for t in every if t["kind"] == kind]
            if sel:
                kind_rows.append(
                    [
                        kind,
                        len(sel),
                        _pct(sel, "action_ok"),
                        _pct(sel, "plan_ok"),
                        _pct(sel, "answer_ok"),
                        _pct(
                            [
                                {"ok": t["answer_ok"] and not _echoes(t)}
                                for t in sel
                                if "answer_ok" in t
                            ],
                            "ok",
                        ),
                        f"{sum(t['seconds'] for t in sel) / len(sel):.1f}",
                    ]
                )
        lines += [
            markdown_table(
                [
                    "kind",
                    "turns",
                    "right action",
                    "right planning",
                    "answers with the value",
                    "with the value, not echoed",
                    "s/turn",
                ],
                kind_rows,
            ),
            "",
            "### Turns that went wrong",
            "",
        ]
        bad = [
            [
                conv,
                i + 1,
                t["kind"],
                t["text"],
                ",".join(
                    k
                    for k in ("action_ok", "plan_ok", "answer_ok", "file_ok")
                    if k in t and not t[k]
                ),
                " ".join(t["answer"].split())[:90],
            ]
            for conv, data in convs.items()
            for i, t in enumerate(data["turns"])
            if not all(t.get(k, True) for k in ("action_ok", "plan_ok", "answer_ok", "file_ok"))
        ]
        lines += [
            markdown_table(["conversation", "turn", "kind", "message", "wrong", "answer"], bad)
            if bad
            else "none",
            "",
        ]
    lines += [
        "Right action: a tool call for a task turn (the expected tool among the calls), a text "
        "reply for every other turn. Right planning: a plan only where a request asks for it "
        "(a statement, question or small talk is never planned). Answers: the reply contains "
        "an accepted value as a whole word. Facts stored: the statements found as `fact` "
        "records afterwards. Skills: `skill` records; bogus ones come from a turn that is not "
        "a multi-step tool procedure. Unearned succeeded: episodes recorded as `succeeded` "
        "whose run had no tool call that succeeded. Replies echoing tool records: a text reply "
        "that opens with a `<tool_response>`/`<tool_call>` block or JSON (it may still contain "
        "the accepted value, and then counts as an answer with the value).",
    ]
    return write_report("assistant_conv", "\n".join(lines), raw, out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="default", help="'default' (SmolLM2), 'agent' (0.5B)")
    ap.add_argument("--conversations", nargs="*", default=list(CONVERSATIONS))
    ap.add_argument("--max-turns", type=int, default=0, help="at most N turns per conversation")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="re-render the table from JSON")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.report_only:
        kept = json.loads(((args.out or DOCS) / "assistant_conv.json").read_text())
        print(report(kept, args.out).read_text())
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from agentcore.core.models import AGENT_ALIAS

    alias = {"default": None, "agent": AGENT_ALIAS}.get(args.model, args.model)
    engine = Engine.load(alias)
    model = engine.name
    previous = (args.out or DOCS) / "assistant_conv.json"
    raw: dict[str, Any] = {"machine": machine(), "models": {}, "runs": {}}
    if previous.exists():  # keep the other models' sections
        kept = json.loads(previous.read_text())
        raw["models"] = {k: v for k, v in kept.get("models", {}).items() if k != model}
        raw["runs"] = {k: v for k, v in kept.get("runs", {}).items() if k != model}
    raw["models"][model] = {}
    raw["runs"][model] = {"max_tokens": args.max_tokens, "threads": compute.threads()}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.conversations:
            turns = CONVERSATIONS[name]
            turns = turns[: args.max_turns] if args.max_turns else turns

            def save(data: dict[str, Any], name: str = name) -> None:
                raw["models"][model][name] = data
                raw["runs"][model]["wall_s"] = round(time.perf_counter() - t_start)
                report(raw, args.out)

            save(run_conversation(engine, name, turns, Path(tmp), args.max_tokens, save))
    print(report(raw, args.out).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
