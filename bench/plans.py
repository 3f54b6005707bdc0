"""LLM planner sample: plans a model (``--model``, default SmolLM2) writes for a set of goals.

Validity is guaranteed by the grammar (and tested in tests/planners/test_llm_planner_local.py);
quality is not, so this script plans a sample of goals through ``LocalBackend.generate_json``
and writes each plan as a text tree, with the seconds it took, to ``docs/benchmarks/plans.md``.
The verdict per plan is written by a person reading it (see the issue note), not computed.

Usage: ``agentcore bench plans [--model ALIAS] [--goals N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import machine, markdown_table, write_report

from agentcore.backends import LocalBackend
from agentcore.core.engine import Engine
from agentcore.planners import LLMPlanner, PlanContext, PlannerLimits

GOALS = [
    "Compute the total cost of three invoices and save it to a file",
    "Plan a birthday party for ten people",
    "Find out what time it is and remind me to call Anna",
    "Count the words in every text file and report the largest",
    "Draft an email asking for a deadline extension",
    "Convert 72 degrees Fahrenheit to Celsius and explain the steps",
    "Research the history of the printing press",
    "Create a packing list for a three-day hiking trip",
]
TOOLS = ("calculator", "read_file", "write_file", "http_get", "current_time", "remember")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--goals", type=int, default=len(GOALS))
    ap.add_argument(
        "--model", default="default", help="model alias (see `agentcore models`) or GGUF path"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine.load(args.model)
    backend = LocalBackend(engine)
    limits = PlannerLimits(min_steps=2, max_steps=4, max_depth=1, max_tasks=8, max_tokens=200)
    planner = LLMPlanner(backend, limits)
    ctx = PlanContext(tools=TOOLS)
    rows: list[list[Any]] = []
    sections = []
    raw = []
    for goal in GOALS[: args.goals]:
        start = time.perf_counter()
        graph = planner.plan(goal, ctx)
        seconds = time.perf_counter() - start
        text = graph.render_text()
        rows.append([goal, len(graph), len(list(graph.edges())), f"{seconds:.1f}"])
        sections.append(f"### {goal}\n\n```\n{text}\n```\n")
        raw.append({"goal": goal, "seconds": seconds, "json": json.loads(graph.to_json())})
        print(f"{goal}\n{text}\n({seconds:.1f} s)\n", flush=True)
    table = markdown_table(["goal", "tasks", "edges", "seconds"], rows)
    md = (
        "# LLM planner sample\n\n"
        f"{engine.name} through `LocalBackend.generate_json` (plan JSON Schema, greedy), "
        f"tools offered: {', '.join(TOOLS)}. Machine: {machine()['cores']} cores.\n\n"
        f"{table}\n\n" + "\n".join(sections)
    )
    write_report("plans", md, {"machine": machine(), "plans": raw}, args.out)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
