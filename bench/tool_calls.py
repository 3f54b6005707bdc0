"""Tool calling as the leaderboards measure it: per category, both models, ``auto`` and ``required``.

331 cases written for this benchmark (``bench/_tool_call_cases.py``: 30 everyday tools; simple,
multiple, parallel, irrelevance with near misses, multi-turn), each run through
:class:`~agentcore.backends.LocalBackend` in a fresh stateless request, greedy. A call is
scored AST-style: its parsed arguments against the accepted values per parameter (numbers by
value, strings without case), every expected call made and nothing else.

* ``auto``: the backend's call-or-answer decision (:mod:`agentcore.tools._decision`) picks a
  call (decoded among the tools it offers) or a text answer; ``--no-decision`` leaves the
  choice to the model, as before.
* ``required``: a call is forced (irrelevance cases are left out: a forced call is always
  wrong there).

Also reported: the decision's own accuracy per category (call vs answer right; for a call, the
right tool offered first) and its cost as a share of the request's time.

Cases carry a fixed split (``dev`` for tuning, ``test`` only reported). Writes
``docs/benchmarks/tool_calls.md`` + JSON for the test split (``tool_calls-dev`` for dev).
Usage: ``agentcore bench tool_calls [--split test] [--models ...] [--arms auto required]
[--per-category N]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from _common import machine, markdown_table, write_report
from _tool_call_cases import CASES, Case, calls_match

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.core.models import MODELS
from agentcore.core.sampling import SamplingParams

CATEGORIES = ["simple", "multiple", "parallel", "irrelevance", "multi_turn"]

# public single-turn AST scores quoted in issue #22 (simple / multiple / irrelevance)
REFERENCES = [
    ["Qwen2.5-0.5B-Instruct (native FC)", 61.2, 78.0, 46.2],
    ["Hammer2.1-0.5b", 68.0, 83.0, 73.9],
    ["Llama-3.2-1B-Instruct", 29.2, 33.5, 59.7],
]
GOALS = {"smollm2-135m": (65, 65, 75), "qwen2.5-coder-0.5b": (75, 85, 80)}


class _TimedSelector:
    """Wraps the backend's selector to time its decisions and keep the last one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.config = inner.config
        self.seconds = 0.0
        self.last: Any = None

    def decide(self, messages: Any, entries: Any) -> Any:
        return self.inner.decide(messages, entries)

    def narrow(self, messages: Any, entries: Any, tool_choice: Any) -> Any:
        t0 = time.perf_counter()
        out = self.inner.narrow(messages, entries, tool_choice)
        self.seconds += time.perf_counter() - t0
        if out[2] is not None:
            self.last = out[2]
        return out


def run_case(
    backend: LocalBackend,
    case: Case,
    arm: str,
    params: SamplingParams,
    timer: _TimedSelector | None,
) -> dict[str, Any]:
    if timer is not None:
        timer.seconds, timer.last = 0.0, None
    t0 = time.perf_counter()
    r = backend.chat(list(case.messages), tools=case.tool_entries(), tool_choice=arm, params=params)
    wall = time.perf_counter() - t0
    calls = [(c.name, dict(c.arguments)) for c in r.tool_calls]
    ok = not calls if case.category == "irrelevance" else calls_match(calls, case.expected)
    row: dict[str, Any] = {
        "id": case.id,
        "category": case.category,
        "arm": arm,
        "ok": ok,
        "first_ok": bool(calls) and calls_match(calls[:1], case.expected[:1]),
        "calls": calls,
        "text": r.text[:160],
        "wall_s": wall,
    }
    if timer is not None and arm == "auto" and timer.last is not None:
        d = timer.last
        want = case.expected[0][0] if case.expected else None
        row["decision"] = {"call": d.call, "offered": list(d.offered), "score": d.score}
        row["decision_ok"] = (d.call == (want is not None)) and (
            want is None or (bool(d.offered) and d.offered[0] in {e[0] for e in case.expected})
        )
        row["decision_s"] = timer.seconds
    return row


def decision_only(chosen: Sequence[Case], categories: Sequence[str], split: str) -> int:
    """The decision's accuracy per category on every chosen case (it needs no model)."""
    from agentcore.memory import embed_texts
    from agentcore.tools._decision import ToolSelector

    selector = ToolSelector(lambda texts: embed_texts(list(texts), device="cpu"))
    rows = []
    for case in chosen:
        t0 = time.perf_counter()
        d = selector.decide(list(case.messages), case.tool_entries())
        want = case.expected[0][0] if case.expected else None
        ok = (d.call == (want is not None)) and (
            want is None or (bool(d.offered) and d.offered[0] in {e[0] for e in case.expected})
        )
        rows.append({"category": case.category, "decision_ok": ok, "s": time.perf_counter() - t0})
    line = [
        split,
        *[fmt(pct([r for r in rows if r["category"] == c], "decision_ok")) for c in categories],
        fmt(pct(rows, "decision_ok")),
        f"{1000 * sum(r['s'] for r in rows) / len(rows):.0f} ms",
    ]
    table = markdown_table(
        [
            "split",
            *[f"{c} ({sum(1 for x in chosen if x.category == c)})" for c in categories],
            "all",
            "mean time",
        ],
        [line],
    )
    print(table)
    return 0


def pct(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    vals = [bool(r[key]) for r in rows if key in r]
    return 100 * sum(vals) / len(vals) if vals else None


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--split", choices=["dev", "test", "all"], default="test")
    ap.add_argument("--models", nargs="*", default=[c.alias for c in MODELS])
    ap.add_argument("--arms", nargs="*", default=["auto", "required"])
    ap.add_argument("--categories", nargs="*", default=CATEGORIES)
    ap.add_argument("--per-category", type=int, default=0, help="at most N cases per category")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--no-decision", action="store_true", help="the model decides alone")
    ap.add_argument(
        "--decision-only", action="store_true", help="only the decision (embedder), no model"
    )
    ap.add_argument("--out", default=None, help="report name (default tool_calls[-dev])")
    args = ap.parse_args(argv)

    chosen: list[Case] = []
    for cat in args.categories:
        pool = [c for c in CASES if c.category == cat and args.split in ("all", c.split)]
        chosen += pool[: args.per_category] if args.per_category else pool
    if args.decision_only:
        return decision_only(chosen, args.categories, args.split)
    params = SamplingParams(max_tokens=args.max_tokens)
    raw: dict[str, Any] = {"machine": machine(), "split": args.split, "models": {}}
    table, decision_rows = [], []
    t_start = time.perf_counter()
    for alias in args.models:
        backend = LocalBackend(Engine.load(alias))
        timer: _TimedSelector | None = None
        if args.no_decision:
            backend.tool_selector = None
        else:
            assert backend.tool_selector is not None
            timer = _TimedSelector(backend.tool_selector)
            backend.tool_selector = timer  # type: ignore[assignment]
            from agentcore.memory import embed_texts

            embed_texts(["warm-up"], device="cpu")  # loaded once per process, as a server does
        rows: list[dict[str, Any]] = []
        for arm in args.arms:
            for case in chosen:
                if arm == "required" and case.category == "irrelevance":
                    continue
                rows.append(run_case(backend, case, arm, params, timer))
                r = rows[-1]
                print(
                    f"{alias} {arm:8s} {case.id:24s} {'ok ' if r['ok'] else 'BAD'} "
                    f"{r['calls'] or r['text'][:60]!r}",
                    flush=True,
                )
        raw["models"][alias] = rows
        for arm in args.arms:
            arm_rows = [r for r in rows if r["arm"] == arm]
            per = [
                fmt(pct([r for r in arm_rows if r["category"] == c], "ok")) for c in args.categories
            ]
            table.append([alias, arm, *per, fmt(pct(arm_rows, "ok"))])
        auto = [r for r in rows if r["arm"] == "auto" and "decision_ok" in r]
        if auto:
            share = sum(r["decision_s"] for r in auto) / max(1e-9, sum(r["wall_s"] for r in auto))
            per_ms = 1000 * sum(r["decision_s"] for r in auto) / len(auto)
            median_ms = 1000 * statistics.median(r["decision_s"] for r in auto)
            decision_rows.append(
                [
                    alias,
                    *[
                        fmt(pct([r for r in auto if r["category"] == c], "decision_ok"))
                        for c in args.categories
                    ],
                    fmt(pct(auto, "decision_ok")),
                    f"{median_ms:.0f} ms median, {per_ms:.0f} ms mean ({100 * share:.1f}%)",
                ]
            )
        del backend
        gc.collect()
    wall = time.perf_counter() - t_start
    counts = {c: sum(1 for x in chosen if x.category == c) for c in args.categories}
    headers = ["model", "tool_choice", *[f"{c} ({counts[c]})" for c in args.categories], "all"]
    out = [markdown_table(headers, table)]
    if decision_rows:
        out += [
            "",
            "The decision alone (auto): call vs answer right and, for a call, the right tool "
            "offered first; its cost per request (the embedder loaded before the first) and, "
            "in brackets, its share of the requests' time:",
            "",
            markdown_table(["model", *args.categories, "all", "decision cost"], decision_rows),
        ]
    print("\n".join(out))
    name = args.out or ("tool_calls" if args.split == "test" else f"tool_calls-{args.split}")
    md = [
        "# Tool calls by category (issue #22)",
        "",
        f"`agentcore bench tool_calls --split {args.split}"
        + (" --no-decision" if args.no_decision else "")
        + (f" --per-category {args.per_category}" if args.per_category else "")
        + f"`; {raw['machine']}; {wall / 60:.0f} min.",
        "",
        f"{len(chosen)} cases of the {args.split} split (`bench/_tool_call_cases.py`, written "
        "for this benchmark), each a fresh stateless request through `LocalBackend`, greedy, "
        f"at most {args.max_tokens} new tokens. Percent of cases right, AST-style: the "
        "parsed arguments against the accepted values per parameter; parallel needs every "
        "call, in any order, and no other (the backend decodes one call per clause of the "
        "request since 2026-12-03; before, one call per answer); irrelevance needs a text "
        "answer; "
        "`required` leaves irrelevance out.",
        "",
        *out,
        "",
        "Goals with `auto` (simple / multiple / irrelevance): "
        + "; ".join(f"{m} {g[0]} / {g[1]} / {g[2]}" for m, g in GOALS.items())
        + ". Public single-turn AST references (other models, other cases: for scale only):",
        "",
        markdown_table(["model", "simple", "multiple", "irrelevance"], REFERENCES),
    ]
    path = write_report(name, "\n".join(md), raw)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
